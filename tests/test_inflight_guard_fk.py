"""The in-flight guard's foreign key, the database's own (migration 0025): (cluster, job)
references the job's (cluster, id), so no guard row outlives its job or names a cluster
other than its job's, whatever writes it (raw SQL here, not the ORM's cascades)."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from model_bakery import baker

from jobs.models import InFlightCustomer, Job

# Deferred foreign keys are checked at the commit: each test commits.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def job(operator, cluster):
    return baker.make(Job, user=operator, cluster=cluster, status=Job.Status.IN_PROGRESS)


def test_a_job_holding_customers_cannot_be_deleted_before_them(job, cluster):
    InFlightCustomer.objects.create(cluster=cluster, cid="C1", job=job)
    job_id = Job._meta.pk.get_db_prep_value(job.pk, connection)

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_job WHERE id = %s", [job_id])

    assert Job.objects.filter(pk=job.pk).exists()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_inflightcustomer WHERE job_id = %s", [job_id])
        cursor.execute("DELETE FROM jobs_job WHERE id = %s", [job_id])
    assert not Job.objects.filter(pk=job.pk).exists()


def test_a_guard_row_names_its_jobs_cluster(job, cluster):
    other = baker.make("jobs.Cluster", name="other", base_url="https://other.example")

    with pytest.raises(IntegrityError), transaction.atomic():
        InFlightCustomer.objects.create(cluster=other, cid="C1", job=job)

    assert not InFlightCustomer.objects.exists()
    InFlightCustomer.objects.create(cluster=cluster, cid="C1", job=job)


def test_a_guard_row_needs_its_job(cluster):
    with pytest.raises(IntegrityError), transaction.atomic():
        InFlightCustomer.objects.create(cluster=cluster, cid="C1", job_id=uuid.uuid4())

    assert not InFlightCustomer.objects.exists()
