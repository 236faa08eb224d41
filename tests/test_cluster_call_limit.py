"""A cluster's `max_concurrent_calls`: never more calls in flight to it, whichever workers ask
at once; the jobs beyond it wait their turn and are not failed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from devtools.fake_cluster import FakeCluster
from jobs.models import InFlightCall, Job
from jobs.services import WAIT_RECHECK, job_reap_stale, job_run, job_submit
from tests.helpers import THREADS, TOKEN, run_concurrently

LIMIT = 2
# Long enough that the racing claims all happen while the first calls are still out.
ANSWER_SECONDS = 1.0


@pytest.fixture(scope="module")
def busy_server():
    with FakeCluster(answer_seconds=ANSWER_SECONDS) as server:
        yield server


@pytest.fixture
def limited(db, busy_server):
    return baker.make(
        "jobs.Cluster",
        name="limited",
        base_url=busy_server.url,
        timeout_seconds=30,
        max_concurrent_calls=LIMIT,
    )


def submit(operator, cluster, cid: str) -> Job:
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cid, token=TOKEN)
    return job


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_racing_workers_never_exceed_the_limit_and_the_rest_wait_their_turn(
    operator, limited, busy_server
):
    jobs = [submit(operator, limited, f"CAP{n}") for n in range(THREADS)]
    busy_server.reset_concurrency()

    results, errors = run_concurrently(lambda n: job_run(job_id=jobs[n].pk))

    assert errors == []
    assert busy_server.concurrency()["max_in_flight"] == LIMIT
    assert results.count(True) == LIMIT
    waiting = Job.objects.filter(pk__in=[job.pk for job in jobs], status="IN_PROGRESS")
    assert waiting.count() == THREADS - LIMIT
    woken = []
    for job in waiting.order_by("created_at"):
        # Not started, not failed: back in the queue, with a task of its own to look again.
        assert job.started_at is None and job.waiting_since is not None
        # (Its first task is READY too: these workers were called directly, not by a worker.)
        [task] = DBTaskResult.objects.filter(
            status="READY",
            args_kwargs__args=[str(job.pk)],
            run_after__gt=job.waiting_since,
            run_after__lte=job.waiting_since + WAIT_RECHECK,
        )
        if job.waiting_task_id is None:
            # Woken: its task runs now.
            assert task.run_after <= timezone.now()
            woken.append(job.pk)
        else:
            assert task.pk == job.waiting_task_id
    # Each of the two calls that ended woke the oldest waiting job not yet woken.
    oldest = list(waiting.order_by("created_at").values_list("pk", flat=True)[:LIMIT])
    assert woken == oldest

    # The workers come back for the waiting jobs, all at once again, until each has run.
    for _ in range(THREADS):
        pending = list(waiting.values_list("pk", flat=True))
        if not pending:
            break
        _, errors = run_concurrently(
            lambda n, pending=pending: job_run(job_id=pending[n % len(pending)])
        )
        assert errors == []
    assert not waiting.all().exists()
    assert busy_server.concurrency()["max_in_flight"] == LIMIT
    for job in jobs:
        job.refresh_from_db()
        assert (job.status, busy_server.count(str(job.pk))) == ("SUCCESS", 1)
    assert not InFlightCall.objects.exists()


def test_a_call_slot_is_taken_with_the_start_and_given_back_with_the_end(
    operator, limited, run_queued_tasks
):
    job = submit(operator, limited, "SLOT1")
    # A call in flight on the cluster, from a job a worker started and then lost.
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    InFlightCall.objects.create(cluster=limited, slot=0, job=job, started_at=timezone.now())
    assert job_reap_stale().unknown == [job.pk]
    assert not InFlightCall.objects.exists()


def test_a_waiting_job_expires_only_when_no_worker_has_looked_at_it(operator, limited, settings):
    settings.TMS_QUEUE_EXPIRY = 600
    job = submit(operator, limited, "WAIT1")
    long_ago = timezone.now() - dt.timedelta(hours=2)
    Job.objects.filter(pk=job.pk).update(created_at=long_ago, waiting_since=timezone.now())
    assert job_reap_stale().expired == []
    Job.objects.filter(pk=job.pk).update(waiting_since=long_ago)
    assert job_reap_stale().expired == [job.pk]


def test_the_jobs_list_says_a_job_waits_for_its_cluster(client, operator, limited):
    waiting = submit(operator, limited, "WAIT2")
    Job.objects.filter(pk=waiting.pk).update(waiting_since=timezone.now())
    queued = submit(operator, limited, "QUEUED1")
    client.force_login(operator)
    content = client.get(reverse("job_list")).content.decode()
    assert content.count("waiting for the cluster") == 1
    row = content[content.index(str(waiting.pk)[:8]) :]
    assert row.index("waiting for the cluster") < row.index("</tr>")
    assert str(queued.pk)[:8] in content


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_never_waits_while_a_slot_is_free(operator, cluster, fake_cluster):
    """As many slots as workers: whatever the others take and give back meanwhile, each claim
    finds a slot, so no job waits."""
    cluster.max_concurrent_calls = THREADS
    cluster.save()
    rounds = 6
    jobs = [submit(operator, cluster, f"FREE{n}") for n in range(THREADS * rounds)]

    results, errors = run_concurrently(
        lambda n: [job_run(job_id=job.pk) for job in jobs[n::THREADS]]
    )

    assert errors == []
    assert [started for result in results for started in result] == [True] * len(jobs)
    assert not Job.objects.filter(waiting_since__isnull=False).exists()
