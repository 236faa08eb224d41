"""The operator's token is stored nowhere in clear and logged nowhere, whatever the outcome."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobToken
from jobs.services import (
    INTERRUPTED,
    KEY_CHANGED_MESSAGE,
    NOT_STARTED,
    job_reap_stale,
    job_run,
    job_submit,
)
from tests.helpers import TOKEN, confirm_review, database_text
from tests.test_error_pages import TOKEN_FORMS


def log_text(caplog) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )


@pytest.fixture
def submit(operator, cluster, run_queued_tasks, caplog):
    caplog.set_level(logging.DEBUG)

    def submit(cids: str, run: bool = True) -> Job:
        [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
        if run:
            run_queued_tasks()
        job.refresh_from_db()
        return job

    return submit


@pytest.mark.parametrize(
    ("cids", "status"),
    [("C1", "SUCCESS"), ("E500", "FAILED"), ("REJECT1", "FAILED"), ("SLOW1", "FAILED")],
)
def test_token_is_nowhere_after_the_job_ends(submit, caplog, cids, status):
    job = submit(cids)
    assert job.status == status
    assert not JobToken.objects.filter(job_id=job.pk).exists()
    assert TOKEN not in database_text()
    assert TOKEN not in log_text(caplog)


def test_token_is_nowhere_after_a_reap_of_a_job_never_started(submit, caplog):
    job = submit("C1", run=False)
    assert JobToken.objects.filter(job_id=job.pk).exists()
    assert TOKEN not in database_text()  # encrypted while the job waits
    job_reap_stale(now=timezone.now() + dt.timedelta(hours=1))
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", NOT_STARTED)
    assert not JobToken.objects.filter(job_id=job.pk).exists()
    assert TOKEN not in database_text()
    assert TOKEN not in log_text(caplog)


def test_token_row_is_deleted_when_a_job_whose_worker_died_is_reaped(submit):
    job = submit("C1", run=False)
    # A worker claimed the job and died mid-call, long ago.
    started = timezone.now() - dt.timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(started_at=started)
    job_reap_stale()
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("UNKNOWN", INTERRUPTED)
    assert not JobToken.objects.filter(job_id=job.pk).exists()


def test_token_row_is_deleted_when_the_token_cannot_be_read(submit, fake_cluster):
    job = submit("C1", run=False)
    JobToken.objects.filter(job_id=job.pk).update(ciphertext="not-a-fernet-token")
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", KEY_CHANGED_MESSAGE)
    assert not JobToken.objects.filter(job_id=job.pk).exists()
    assert fake_cluster.count(str(job.pk)) == 0


def test_a_job_whose_token_row_is_gone_fails_without_calling_its_cluster(submit, fake_cluster):
    job = submit("C1", run=False)
    JobToken.objects.filter(job_id=job.pk).delete()
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", KEY_CHANGED_MESSAGE)
    assert fake_cluster.count(str(job.pk)) == 0


def test_token_is_not_in_the_review_page_nor_anywhere_after_the_confirm(
    client, operator, cluster, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(operator)
    data = {"action": "1", "cluster": cluster.pk, "cids": "C1", "token": TOKEN}
    review = client.post(reverse("set_action"), {**data, "idempotency_key": "k-review"})
    html = review.content.decode()
    assert 'name="seal"' in html
    assert {form for form in TOKEN_FORMS if form in html} == set()
    assert TOKEN not in database_text()
    confirm_review(client, review)
    assert Job.objects.count() == 1
    assert TOKEN not in log_text(caplog)
