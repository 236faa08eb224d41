"""The capped count of lists of millions (lib.pagination)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job, JobCustomer
from lib.pagination import CappedCountPaginator
from tests.admin_helpers import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def cap_of_three(monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)


def with_customers(job: Job, cids: tuple[str, ...]) -> Job:
    JobCustomer.objects.bulk_create(JobCustomer(job=job, cid=cid) for cid in cids)
    return job


def test_count_stops_past_the_cap(cap_of_three, operator):
    for _ in range(5):
        make_job(user=operator)
    paginator = CappedCountPaginator(Job.objects.all(), 2)
    assert (paginator.count, paginator.capped, paginator.num_pages) == (3, True, 2)


def test_count_is_exact_up_to_the_cap(cap_of_three, operator):
    for _ in range(3):
        make_job(user=operator)
    paginator = CappedCountPaginator(Job.objects.all(), 2)
    assert (paginator.count, paginator.capped) == (3, False)
    assert CappedCountPaginator(Job.objects.none(), 2).count == 0


def test_count_of_a_distinct_list_counts_each_row_once(operator):
    jobs_and_customers = [("A-1", "A-2"), ("A-1",), ("B-1",)]
    both, _, _ = (with_customers(make_job(user=operator), cids) for cids in jobs_and_customers)
    jobs = Job.objects.filter(customers__cid__in=["A-1", "A-2"]).distinct()
    paginator = CappedCountPaginator(jobs, 10)
    assert paginator.count == 2
    assert both in paginator.page(1).object_list


def test_count_reads_no_column_of_the_rows(operator):
    # Selecting the id would read each matching row on SQLite, where an index covering the
    # filtered columns can answer alone.
    make_job(user=operator, status=Job.Status.FAILED)
    jobs = Job.objects.filter(status=Job.Status.FAILED, action=Job.Action.TRANS_BEGIN)
    with CaptureQueriesContext(connection) as queries:
        assert CappedCountPaginator(jobs, 10).count == 1
    [count] = queries.captured_queries
    assert '"jobs_job"."id"' not in count["sql"]
