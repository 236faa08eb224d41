"""The admin's list pages make as many queries for 50 rows as for 5 (no query per row).

Speed on large tables is measured by bench/admin_lists.py, not asserted here.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from audit.services import audit_record
from jobs.models import Cluster, Job, JobCustomer
from lib.admin import LargeTableAdmin
from tests.admin_helpers import make_job, make_superuser

LISTS = [
    reverse("admin:jobs_job_changelist"),
    reverse("admin:jobs_failedjob_changelist"),
    reverse("admin:jobs_jobcustomer_changelist"),
    reverse("admin:audit_auditentry_changelist"),
]


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


def add_rows(first: int, last: int) -> None:
    """Failed jobs numbered first..last-1, each with its own operator, cluster, customer and
    audit entry, so that a query per row for any of them would show."""
    for n in range(first, last):
        user = baker.make("auth.User", username=f"user{n}")
        cluster = baker.make(Cluster, name=f"c{n}", base_url=f"http://127.0.0.1:{9100 + n}")
        job = make_job(user=user, cluster=cluster, status=Job.Status.FAILED, error_message="x")
        JobCustomer.objects.create(job=job, cid=f"C{n}", message="refused")
        audit_record(event="job.failed", actor=user, job_id=job.pk, details={"n": n})


def queries_and_rows(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.parametrize("url", LISTS)
def test_list_queries_do_not_grow_with_rows(admin_client, url):
    add_rows(0, 5)
    few = queries_and_rows(admin_client, url)
    # Still one page of 50: a second page adds the capped count, one query whatever the rows.
    add_rows(5, 40)
    many = queries_and_rows(admin_client, url)

    assert few[1] >= 5
    assert many[1] >= 40
    assert few[0] == many[0]


@pytest.mark.parametrize("url", LISTS)
def test_paged_list_queries_do_not_grow_with_rows_per_page(admin_client, monkeypatch, url):
    add_rows(0, 60)
    monkeypatch.setattr(LargeTableAdmin, "list_per_page", 5)
    few = queries_and_rows(admin_client, url)
    monkeypatch.setattr(LargeTableAdmin, "list_per_page", 50)
    many = queries_and_rows(admin_client, url)

    assert (few[1], many[1]) == (5, 50)
    assert few[0] == many[0]


def test_job_page_queries_do_not_grow_with_customers(admin_client, operator):
    job = make_job(user=operator)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    JobCustomer.objects.bulk_create(JobCustomer(job=job, cid=f"C{n}") for n in range(5))
    # The first page of a session also fills caches (content types); measure afterwards.
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    JobCustomer.objects.bulk_create(JobCustomer(job=job, cid=f"C{n}") for n in range(5, 150))
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert len(few) == len(many)
