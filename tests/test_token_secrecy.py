"""The operator's token is stored nowhere in clear and logged nowhere, whatever the outcome."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_reap_stale, job_submit
from tests.helpers import TOKEN, database_text


def log_text(caplog) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )


@pytest.fixture
def submit(operator, cluster, immediate_tasks, django_capture_on_commit_callbacks, caplog):
    caplog.set_level(logging.DEBUG)

    def submit(cids: str, run: bool = True) -> Job:
        with django_capture_on_commit_callbacks(execute=run):
            [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
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
    assert TOKEN not in database_text()
    assert TOKEN not in log_text(caplog)


def test_token_is_nowhere_after_a_reap(submit, caplog):
    job = submit("C1", run=False)
    assert TOKEN not in database_text()  # encrypted while the job waits
    job_reap_stale(now=timezone.now() + dt.timedelta(hours=1))
    job.refresh_from_db()
    assert job.status == "FAILED"
    assert TOKEN not in database_text()
    assert TOKEN not in log_text(caplog)
