"""The conflict guard and idempotency hold under concurrent submits, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from jobs.models import InFlightCustomer, Job, JobCustomer
from jobs.services import CustomerConflict, job_submit
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
