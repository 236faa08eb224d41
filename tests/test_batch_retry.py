"""Retrying a batch's failed parts as one new batch: the service and the batch page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import ChangeFreeze, InFlightCustomer, Job, JobCustomer
from jobs.services import Frozen, batch_retry, freeze_create, job_retry, job_submit
from tests.helpers import TOKEN, confirm_retry, make_user, row_counts


@pytest.fixture
def batch(operator, cluster) -> list[Job]:
    """Three ended parts: SUCCESS; FAILED with C failed and D succeeded; FAILED, no outcomes."""
    cluster.max_cids_per_request = 2
    cluster.save()
    parts = job_submit(user=operator, action=1, cluster=cluster, cids="A B C D E F", token=TOKEN)
    for part, status in zip(parts, ["SUCCESS", "FAILED", "FAILED"], strict=True):
        Job.objects.filter(pk=part.pk).update(status=status, finished_at=timezone.now())
    # As the end of a job does: its customers are free again.
    InFlightCustomer.objects.filter(job__in=parts).delete()
    JobCustomer.objects.filter(job=parts[1], cid="C").update(outcome="FAILED")
    JobCustomer.objects.filter(job=parts[1], cid="D").update(outcome="SUCCESS")
    return [Job.objects.get(pk=part.pk) for part in parts]


def test_the_failed_parts_run_again_as_one_new_batch_each_job_retrying_its_part(operator, batch):
    new = batch_retry(batch_id=batch[0].batch_id, user=operator, token=TOKEN, idempotency_key="k")

    assert [job.retry_of_id for job in new] == [batch[1].pk, batch[2].pk]
    assert [list(job.customers.values_list("cid", flat=True)) for job in new] == [
        ["C"],
        ["E", "F"],
    ]
    assert len({job.batch_id for job in new}) == 1 and new[0].batch_id != batch[0].batch_id
    for part, job in zip(batch[1:], new, strict=True):
        entry = AuditEntry.objects.get(job_id=part.pk, event="job.retried")
        assert entry.details["new_jobs"] == [str(job.pk)]
    # The same form again is a replay.
    again = batch_retry(batch_id=batch[0].batch_id, user=operator, token=TOKEN, idempotency_key="k")
    assert again == new


def test_an_unknown_part_needs_a_confirmation_and_an_earlier_retry_another(operator, batch):
    Job.objects.filter(pk=batch[2].pk).update(status="UNKNOWN")
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        batch_retry(batch_id=batch[0].batch_id, user=operator, token=TOKEN, idempotency_key="1")
    assert "confirm_unknown" in excinfo.value.message_dict
    assert row_counts() == before

    batch_retry(
        batch_id=batch[0].batch_id,
        user=operator,
        token=TOKEN,
        confirm_unknown=True,
        idempotency_key="1",
    )
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        batch_retry(
            batch_id=batch[0].batch_id,
            user=operator,
            token=TOKEN,
            confirm_unknown=True,
            idempotency_key="2",
        )
    assert excinfo.value.message_dict["confirm_again"][0].startswith(
        f"Job {batch[1].pk} was already retried as "
    )
    assert row_counts() == before


def test_nothing_to_retry_and_another_operators_batch_are_refused(operator, batch):
    other = make_user("op2", "Operators")
    before = row_counts()
    with pytest.raises(ValidationError, match="nothing to retry"):
        batch_retry(batch_id=batch[0].batch_id, user=other, token=TOKEN)
    Job.objects.filter(batch_id=batch[0].batch_id).update(status="SUCCESS")
    with pytest.raises(ValidationError, match="nothing to retry"):
        batch_retry(batch_id=batch[0].batch_id, user=operator, token=TOKEN)
    assert row_counts() == before


def test_the_batch_page_offers_the_retry_once_every_part_ended(client, operator, batch):
    client.force_login(operator)
    page = reverse("batch_detail", args=[batch[0].batch_id])
    assert 'id="batch-retry-form"' in client.get(page).content.decode()

    Job.objects.filter(pk=batch[0].pk).update(status="IN_PROGRESS", finished_at=None)
    content = client.get(page).content.decode()
    assert 'id="batch-retry-form"' not in content
    assert 'hx-trigger="batch-ended from:body"' in content


def test_retrying_from_the_batch_page_lands_on_the_new_batch(client, operator, batch):
    client.force_login(operator)
    url = reverse("batch_retry", args=[batch[0].batch_id])
    before = row_counts()
    refused = client.post(url, {"retry_token": "", "idempotency_key": "k1"})
    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    assert row_counts() == before

    response = confirm_retry(client, url, {"retry_token": TOKEN, "idempotency_key": "k1"})
    new = Job.objects.filter(retry_of__batch_id=batch[0].batch_id).first()
    assert response.status_code == 302
    assert response.url == reverse("batch_detail", args=[new.batch_id])
    assert TOKEN not in client.get(response.url).content.decode()


def test_an_auditor_cannot_retry_a_batch(client, operator, batch):
    client.force_login(make_user("aud", "Auditors", is_staff=True))
    url = reverse("batch_retry", args=[batch[0].batch_id])
    before = row_counts()
    assert client.post(url, {"retry_token": TOKEN, "idempotency_key": "k"}).status_code == 403
    assert row_counts() == before


def test_the_batch_page_names_the_parts_already_retried(client, operator, batch):
    client.force_login(operator)
    page = reverse("batch_detail", args=[batch[0].batch_id])
    assert 'id="batch-already-retried"' not in client.get(page).content.decode()
    job_retry(job=batch[2], user=operator, token=TOKEN)
    content = client.get(page).content.decode()
    assert 'id="batch-already-retried"' in content
    assert f'<a href="/jobs/{batch[2].pk}/">3</a>' in content
    assert f'<a href="/jobs/{batch[1].pk}/">2</a>' not in content


def test_a_batch_retry_during_a_change_freeze_is_refused_and_writes_nothing(operator, batch):
    now = timezone.now()
    freeze_create(
        freeze=ChangeFreeze(
            cluster=batch[0].cluster,
            starts_at=now - dt.timedelta(minutes=1),
            ends_at=now + dt.timedelta(hours=1),
            reason="Year-end freeze",
        )
    )
    before = row_counts()
    with pytest.raises(Frozen, match="Year-end freeze"):
        batch_retry(batch_id=batch[0].batch_id, user=operator, token=TOKEN, idempotency_key="f")
    assert row_counts() == before
