"""Jobs sent with their cluster's stored credential, by real `manage.py run_worker` processes
against the fake cluster: the worker decrypts it at call time, sends it, and audits its use;
a credential removed or unreadable by then fails the job without a call."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.fernet import Fernet
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import ClusterCredential, JobToken, RunGrant
from jobs.services import (
    CREDENTIAL_UNREADABLE_MESSAGE,
    NO_CREDENTIAL_MESSAGE,
    credential_remove,
    credential_set,
    job_submit,
)
from tests.helpers import TOKEN, worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

STORED = "svc-Stored-credential-4b7e-never-in-clear"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def run_batch() -> str:
    process = worker("--batch")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


@pytest.fixture
def stored(operator, cluster):
    """The cluster with a stored credential, and the operator allowed to use it."""
    baker.make(RunGrant, user=operator, cluster=cluster, may_use_stored_credential=True)
    credential_set(cluster=cluster, token=STORED)
    return cluster


def test_the_worker_sends_the_stored_credential_and_audits_its_use(operator, stored, fake_cluster):
    [job] = job_submit(
        user=operator, action=3, cluster=stored, cids="C1 C2", stored_credential=True
    )
    assert job.uses_stored_credential
    assert not JobToken.objects.filter(job=job).exists()
    output = run_batch()
    job.refresh_from_db()
    assert (job.status, job.http_status) == ("SUCCESS", 200)
    assert fake_cluster.count(str(job.pk)) == 1
    assert fake_cluster.token_digest(str(job.pk)) == digest(STORED)
    [used] = AuditEntry.objects.filter(event="credential.used")
    assert used.job_id == job.pk
    fingerprint = ClusterCredential.objects.get(cluster=stored).fingerprint
    assert used.details == {"cluster": stored.name, "fingerprint": fingerprint}
    assert STORED not in output


def test_a_job_with_its_own_token_sends_that_token_and_uses_no_credential(
    operator, stored, fake_cluster
):
    [job] = job_submit(user=operator, action=3, cluster=stored, cids="C1", token=TOKEN)
    run_batch()
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.token_digest(str(job.pk)) == digest(TOKEN)
    assert not AuditEntry.objects.filter(event="credential.used").exists()


def test_the_credential_changed_after_the_submit_is_the_one_sent(operator, stored, fake_cluster):
    [job] = job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    credential_set(cluster=stored, token="svc-the-new-one")
    run_batch()
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.token_digest(str(job.pk)) == digest("svc-the-new-one")


def test_a_credential_removed_after_the_submit_fails_the_job_without_a_call(
    operator, stored, fake_cluster
):
    [job] = job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    assert credential_remove(cluster=stored)
    run_batch()
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", NO_CREDENTIAL_MESSAGE)
    assert fake_cluster.count(str(job.pk)) == 0
    assert not AuditEntry.objects.filter(event="credential.used").exists()
    failed = AuditEntry.objects.get(event="job.failed", job_id=job.pk)
    assert failed.details["reason"] == "credential_missing"


def test_a_credential_no_key_decrypts_fails_the_job_without_a_call(
    operator, stored, fake_cluster, settings, monkeypatch
):
    [job] = job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    # The worker process starts with another key: the credential's ciphertext is unreadable.
    monkeypatch.setenv("TMS_TOKEN_KEY", Fernet.generate_key().decode())
    run_batch()
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", CREDENTIAL_UNREADABLE_MESSAGE)
    assert fake_cluster.count(str(job.pk)) == 0
    failed = AuditEntry.objects.get(event="job.failed", job_id=job.pk)
    assert failed.details["reason"] == "credential_unreadable"
