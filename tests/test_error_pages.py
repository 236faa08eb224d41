"""Error pages: the dashboard's own, and never showing the operator's token, even with DEBUG on."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest
from django.urls import reverse
from django.views.debug import ExceptionReporter
from model_bakery import baker

from jobs.models import Job
from jobs.services import job_run, job_submit
from tests.helpers import TOKEN, row_counts

# What a page could show of the token: as typed, URL-encoded, or base64-encoded.
TOKEN_FORMS = {
    TOKEN,
    quote(TOKEN, safe=""),
    quote_plus(TOKEN),
    base64.b64encode(TOKEN.encode()).decode().rstrip("="),
}


@pytest.fixture
def broken_encryption(settings, client):
    """A real misconfiguration: a token key that is not a Fernet key, so that every submit
    fails inside the encryption of the token, with the token in hand."""
    settings.TMS_TOKEN_KEY = "not-a-fernet-key"
    client.raise_request_exception = False
    return client


def shown(content: bytes) -> set[str]:
    text = content.decode()
    return {form for form in TOKEN_FORMS if form in text}


@pytest.mark.parametrize("debug", [True, False])
def test_an_error_during_set_action_shows_no_token(
    broken_encryption, settings, operator, cluster, debug
):
    settings.DEBUG = debug
    client = broken_encryption
    client.force_login(operator)
    before = row_counts()
    data = {"action": "1", "cluster": str(cluster.pk), "cids": "C1", "token": TOKEN}
    response = client.post(reverse("set_action"), {**data, "idempotency_key": "k1"})
    assert response.status_code == 500
    assert shown(response.content) == set()
    assert row_counts() == before
    if debug:
        # The technical page, with the frames that held the token: their values are hidden.
        # The review fails first, sealing the token for its confirmation.
        assert b"token_seal" in response.content
    else:
        assert b"Something went wrong" in response.content


def test_an_error_during_a_retry_shows_no_token(broken_encryption, settings, operator, cluster):
    settings.DEBUG = True
    client = broken_encryption
    client.force_login(operator)
    job = baker.make(
        Job, user=operator, cluster=cluster, action=1, status=Job.Status.FAILED, customer_count=1
    )
    baker.make("jobs.JobCustomer", job=job, cid="C1")
    response = client.post(
        reverse("job_retry", args=[job.pk]),
        {"retry_token": TOKEN, "idempotency_key": "k2", "confirm_unknown": ""},
    )
    assert response.status_code == 500
    assert b"job_retry" in response.content
    assert shown(response.content) == set()


def test_an_error_report_from_a_running_job_shows_no_token(operator, cluster):
    """What an error report (an e-mail to the admins, a page) would show of a job that broke
    while its worker held the decrypted token."""
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    # A job without a timeout breaks inside the client, where the token is in every frame.
    Job.objects.filter(pk=job.pk).update(timeout_seconds=None)
    with pytest.raises(TypeError) as broke:
        job_run(job_id=job.pk)
    report = ExceptionReporter(None, broke.type, broke.value, broke.tb).get_traceback_html()
    assert "job_run" in report
    assert "call_set_action" in report
    assert shown(report.encode()) == set()
