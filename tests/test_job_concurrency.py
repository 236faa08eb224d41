"""The conflict guard, idempotency and the claim hold under concurrency, on both engines."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from jobs.models import InFlightCustomer, Job, JobCustomer
from jobs.services import (
    NOT_STARTED,
    CustomerConflict,
    ReapReport,
    job_reap_stale,
    job_run,
    job_submit,
)
from tests.helpers import THREADS, TOKEN, run_concurrently


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_submits_touching_one_customer_make_exactly_one_job(operator, cluster):
    results, errors = run_concurrently(
        lambda n: job_submit(
            user=operator, action=1, cluster=cluster, cids=f"SHARED OWN{n}", token=TOKEN
        )
    )
    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, CustomerConflict) for error in errors), errors
    [winner] = results[0]
    assert all(error.job_ids == [winner.pk] for error in errors)
    assert Job.objects.count() == 1
    assert JobCustomer.objects.count() == 2
    assert InFlightCustomer.objects.filter(cid="SHARED").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_submits_with_one_key_make_one_set_of_jobs(operator, cluster):
    cluster.max_cids_per_request = 2
    cluster.save()
    results, errors = run_concurrently(
        lambda n: job_submit(
            user=operator,
            action=1,
            cluster=cluster,
            cids="A B C",
            token=TOKEN,
            idempotency_key="double-click",
        )
    )
    assert errors == []
    assert len(results) == THREADS
    first = [job.pk for job in results[0]]
    assert all([job.pk for job in jobs] == first for jobs in results)
    # Exactly one submit recorded them; every other one says it replayed them.
    assert sorted(jobs.replayed for jobs in results) == [False] + [True] * (THREADS - 1)
    assert Job.objects.count() == 2
    assert JobCustomer.objects.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_submits_on_distinct_customers_all_succeed(operator, cluster):
    results, errors = run_concurrently(
        lambda n: job_submit(user=operator, action=1, cluster=cluster, cids=f"X{n}", token=TOKEN)
    )
    assert errors == []
    assert len(results) == THREADS
    assert Job.objects.count() == THREADS


RACED_JOBS = 60


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reaper_and_workers_racing_for_queued_jobs_end_each_job_one_way(
    operator, cluster, fake_cluster, settings
):
    """Queue expiry against late claims: the reaper failing never-started jobs while workers
    claim them. Each job ends either FAILED "Not started" with the cluster never called, or
    run by its worker with the cluster called once; never both."""
    # Room for every worker's call at once: jobs waiting for the cluster are another test's.
    cluster.max_concurrent_calls = THREADS
    cluster.save()
    jobs = [
        job_submit(user=operator, action=1, cluster=cluster, cids=f"RACE{n}", token=TOKEN)[0]
        for n in range(RACED_JOBS)
    ]
    # Every queued job is past its expiry at once, while a started one is far from its
    # cluster's timeout (so the reaper's other rule, UNKNOWN, stays out of this).
    settings.TMS_QUEUE_EXPIRY = 0
    # The reaper ends the newest first; the workers start from the oldest, so that they meet
    # in the middle: some jobs are claimed before the reaper reaches them, others after.
    oldest_first = [job.pk for job in jobs]
    workers = THREADS - 1

    def work(n: int) -> object:
        if n == workers:
            return job_reap_stale()
        return [job_run(job_id=pk) for pk in oldest_first[n::workers]]

    results, errors = run_concurrently(work)
    assert errors == []
    [report] = [result for result in results if isinstance(result, ReapReport)]
    for job in Job.objects.filter(pk__in=oldest_first):
        calls = fake_cluster.count(str(job.pk))
        reaped = job.pk in report.expired
        if job.started_at is None:
            assert (job.status, job.error_message, calls, reaped) == (
                "FAILED",
                NOT_STARTED,
                0,
                True,
            )
        else:
            assert (job.status, calls, reaped) == ("SUCCESS", 1, False)
        events = set(AuditEntry.objects.filter(job_id=job.pk).values_list("event", flat=True))
        assert len(events & {"job.failed", "job.succeeded", "job.late_result"}) == 1
