from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from model_bakery import baker

from jobs.models import Cluster, Job, JobCustomer


def make_job(**kwargs) -> Job:
    kwargs.setdefault("action", Job.Action.TRANS_BEGIN)
    kwargs.setdefault("cluster_url", "http://127.0.0.1:9100")
    return baker.make(Job, **kwargs)


def test_same_idempotency_key_twice_for_one_user_is_refused(operator):
    make_job(user=operator, idempotency_key="k-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(user=operator, idempotency_key="k-1")
    assert Job.objects.filter(idempotency_key="k-1").count() == 1


def test_same_idempotency_key_for_two_users_is_allowed(operator):
    other = baker.make("auth.User", username="op2")
    make_job(user=operator, idempotency_key="k-1")
    make_job(user=other, idempotency_key="k-1")
    assert Job.objects.filter(idempotency_key="k-1").count() == 2


def test_jobs_without_idempotency_key_do_not_collide(operator):
    make_job(user=operator, idempotency_key=None)
    make_job(user=operator, idempotency_key=None)
    assert Job.objects.filter(user=operator).count() == 2


def test_a_customer_appears_once_per_job(operator):
    job = make_job(user=operator)
    JobCustomer.objects.create(job=job, cid="C1")
    with pytest.raises(IntegrityError), transaction.atomic():
        JobCustomer.objects.create(job=job, cid="C1")
    assert job.customers.count() == 1
    # The same customer in another job is fine.
    JobCustomer.objects.create(job=make_job(user=operator), cid="C1")
    assert JobCustomer.objects.filter(cid="C1").count() == 2


def test_unknown_action_code_round_trips_and_displays(operator):
    job = make_job(user=operator, action=6)
    job.refresh_from_db()
    assert job.action == 6
    assert job.action_label == "Unknown action (6)"


def test_unknown_action_code_displays_its_legacy_name(operator):
    job = make_job(user=operator, action=9, legacy_action_name="Trans-Rollback")
    job.refresh_from_db()
    assert job.action_label == "Trans-Rollback"


def test_known_action_displays_its_name(operator):
    assert make_job(user=operator, action=4).action_label == "PE-Finalize"


def test_new_job_is_in_progress_with_uuid4_id(operator):
    job = make_job(user=operator)
    assert job.status == Job.Status.IN_PROGRESS
    assert job.id.version == 4


def test_status_outside_the_four_is_refused_by_the_database(operator):
    job = make_job(user=operator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(status="DONE")
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS


def test_user_with_jobs_cannot_be_deleted(operator):
    from django.db.models import ProtectedError

    make_job(user=operator)
    with pytest.raises(ProtectedError):
        operator.delete()


@pytest.mark.parametrize("url", ["ftp://tms.example/", "file:///etc/passwd", "tms.example"])
def test_cluster_url_must_be_http_or_https(db, url):
    with pytest.raises(ValidationError) as excinfo:
        Cluster(name="x", base_url=url).full_clean()
    assert "base_url" in excinfo.value.message_dict


def test_database_refuses_a_cluster_url_that_is_not_http(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.create(name="x", base_url="ftp://tms.example/")
    assert Cluster.objects.count() == 0


def test_cluster_defaults(db):
    cluster = Cluster.objects.create(name="eu1", base_url="https://tms.example")
    assert (cluster.timeout_seconds, cluster.max_cids_per_request) == (30, 500)
    assert cluster.verify_tls and cluster.is_active
