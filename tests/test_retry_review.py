"""Retrying is reviewed before anything is sent: the review says what goes again and where
(with the cluster's environment label), writes nothing, and its confirmation carries the token
sealed and the idempotency key, so that confirming twice, or at once from two tabs, makes one
retry."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from jobs.forms import CLEARED_NOTICE, SEAL_REFUSED
from jobs.models import InFlightCustomer, Job, JobCustomer
from jobs.services import job_submit
from tests.helpers import (
    THREADS,
    TOKEN,
    confirm_retry,
    retry_review_fields,
    row_counts,
    run_concurrently,
)


def failed_job(user, cluster, failed=("C2", "C3"), succeeded=("C1",)) -> Job:
    """A FAILED job whose cluster reported `failed` customers failed."""
    job = baker.make(
        Job,
        user=user,
        cluster=cluster,
        cluster_url=cluster.base_url,
        action=3,
        status=Job.Status.FAILED,
        customer_count=len(failed) + len(succeeded),
        finished_at=timezone.now(),
    )
    JobCustomer.objects.bulk_create(
        [JobCustomer(job=job, cid=cid, outcome="SUCCESS") for cid in succeeded]
        + [JobCustomer(job=job, cid=cid, outcome="FAILED") for cid in failed]
    )
    return job


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def test_a_retry_is_reviewed_first_and_the_review_writes_nothing(as_operator, operator, cluster):
    cluster.environment = "production"
    cluster.save()
    job = failed_job(operator, cluster)
    url = reverse("job_retry", args=[job.pk])
    before = row_counts()
    review = as_operator.post(url, {"retry_token": TOKEN, "idempotency_key": "r1"})
    assert row_counts() == before
    assert review.status_code == 200
    content = review.content.decode()
    assert (
        f'<h1 id="retry-review-heading">Retry 2 failed customers of {Job.Action(3).label} '
        "on eu1</h1>"
    ) in content
    assert 'data-environment="production">production</span>' in content
    assert f'id="review-address" class="mono">{cluster.base_url}</dd>' in content
    assert '<span class="mono">C2, C3</span>' in content
    assert TOKEN not in content
    assert 'id="confirm-retry">Confirm the retry</button>' in content
    assert f'<a href="{reverse("job_detail", args=[job.pk])}" id="back-retry">Back</a>' in content


def test_a_retry_of_an_unknown_job_reviews_all_its_customers(as_operator, operator, cluster):
    job = failed_job(operator, cluster, failed=(), succeeded=("C1", "C2"))
    Job.objects.filter(pk=job.pk).update(status=Job.Status.UNKNOWN)
    url = reverse("job_retry", args=[job.pk])
    review = as_operator.post(
        url, {"retry_token": TOKEN, "idempotency_key": "r1", "confirm_unknown": "on"}
    )
    assert f"Retry 2 customers of {Job.Action(3).label} on eu1</h1>" in review.content.decode()
    assert review.context["confirm"]["confirm_unknown"].value() is True


def test_a_double_confirm_makes_one_retry(as_operator, operator, cluster):
    job = failed_job(operator, cluster)
    url = reverse("job_retry", args=[job.pk])
    data = retry_review_fields(
        as_operator.post(url, {"retry_token": TOKEN, "idempotency_key": "r1"})
    )
    first = as_operator.post(url, data)
    again = as_operator.post(url, data)
    new = Job.objects.get(retry_of=job)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("job_detail", args=[new.pk])
    assert list(new.customers.values_list("cid", flat=True)) == ["C2", "C3"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_confirms_make_one_retry(operator, cluster):
    job = failed_job(operator, cluster)
    url = reverse("job_retry", args=[job.pk])
    client = Client()
    client.force_login(operator)
    data = retry_review_fields(client.post(url, {"retry_token": TOKEN, "idempotency_key": "r1"}))

    def confirm(_n: int) -> str:
        tab = Client()
        tab.force_login(operator)
        response = tab.post(url, data)
        assert response.status_code == 302, response.context["retry_form"].errors
        return response["Location"]

    results, errors = run_concurrently(confirm)
    assert errors == []
    new = Job.objects.get(retry_of=job)
    assert results == [reverse("job_detail", args=[new.pk])] * THREADS


@pytest.mark.parametrize("problem", ["tampered", "missing"])
def test_a_confirm_whose_seal_does_not_open_asks_for_the_token(
    as_operator, operator, cluster, problem
):
    job = failed_job(operator, cluster)
    url = reverse("job_retry", args=[job.pk])
    data = retry_review_fields(
        as_operator.post(url, {"retry_token": TOKEN, "idempotency_key": "r1"})
    )
    data["seal"] = data["seal"][:-4] + "AAAA" if problem == "tampered" else ""
    before = row_counts()
    response = as_operator.post(url, data)
    assert row_counts() == before
    assert response.status_code == 400
    form = response.context["retry_form"]
    assert form.non_field_errors() == [SEAL_REFUSED]
    assert form.errors["retry_token"] == [CLEARED_NOTICE]
    assert form["idempotency_key"].value() == "r1"


def test_a_confirm_refused_by_the_service_shows_the_form_again(as_operator, operator, cluster):
    job = failed_job(operator, cluster)
    url = reverse("job_retry", args=[job.pk])
    data = retry_review_fields(
        as_operator.post(url, {"retry_token": TOKEN, "idempotency_key": "r1"})
    )
    # Retried by another tab since this review: running its customers again needs a confirmation.
    confirm_retry(as_operator, url, {"retry_token": TOKEN, "idempotency_key": "r2"})
    before = row_counts()
    response = as_operator.post(url, data)
    assert row_counts() == before
    assert "already retried" in response.context["retry_form"].errors["confirm_again"][0]


@pytest.fixture
def batch(operator, cluster) -> list[Job]:
    """Three ended parts: SUCCESS, then two FAILED (the second with C failed)."""
    cluster.max_cids_per_request = 2
    cluster.environment = "staging"
    cluster.save()
    parts = job_submit(user=operator, action=1, cluster=cluster, cids="A B C D E F", token=TOKEN)
    for part, status in zip(parts, ["SUCCESS", "FAILED", "FAILED"], strict=True):
        Job.objects.filter(pk=part.pk).update(status=status, finished_at=timezone.now())
    InFlightCustomer.objects.filter(job__in=parts).delete()
    JobCustomer.objects.filter(job=parts[1], cid="C").update(outcome="FAILED")
    return parts


def test_a_batch_retry_is_reviewed_then_confirmed_once(as_operator, batch):
    url = reverse("batch_retry", args=[batch[0].batch_id])
    before = row_counts()
    review = as_operator.post(url, {"retry_token": TOKEN, "idempotency_key": "b1"})
    assert row_counts() == before
    content = review.content.decode()
    assert f"Retry 3 customers of {Job.Action(1).label} on eu1</h1>" in content
    assert f"<dd>2 parts of batch {batch[0].batch_id}</dd>" in content
    assert 'data-environment="staging">staging</span>' in content
    data = retry_review_fields(review)
    first = as_operator.post(url, data)
    again = as_operator.post(url, data)
    new = list(Job.objects.filter(retry_of__batch_id=batch[0].batch_id).order_by("batch_seq"))
    assert [job.retry_of_id for job in new] == [batch[1].pk, batch[2].pk]
    assert first["Location"] == again["Location"] == reverse("batch_detail", args=[new[0].batch_id])
