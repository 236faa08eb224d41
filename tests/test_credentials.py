"""Clusters' stored credentials: set, changed and removed through the service, audited, kept
only encrypted; and who may submit Set Actions and retries with one."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import ClusterCredential, Job, JobToken, RunGrant
from jobs.services import (
    NotGranted,
    batch_retry,
    credential_remove,
    credential_set,
    credential_status,
    job_retry,
    job_run,
    job_submit,
    job_submit_preview,
    stored_credential_granted,
)
from jobs.tokens import token_decrypt, token_fingerprint
from tests.helpers import TOKEN, make_user, row_counts

STORED = "svc-Stored-credential-4b7e-never-in-clear"


@pytest.fixture
def admin_user(db):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def allowed(operator, cluster):
    return baker.make(RunGrant, user=operator, cluster=cluster, may_use_stored_credential=True)


@pytest.fixture
def stored(cluster, admin_user):
    credential_set(cluster=cluster, token=STORED, actor=admin_user, ip_address="192.0.2.7")
    return cluster


def test_a_set_credential_is_kept_only_encrypted_and_audited(cluster, admin_user):
    assert credential_set(cluster=cluster, token=STORED, actor=admin_user, ip_address="192.0.2.7")
    row = ClusterCredential.objects.get(cluster=cluster)
    assert STORED not in row.ciphertext
    assert token_decrypt(row.ciphertext) == STORED
    assert row.fingerprint == token_fingerprint(STORED)
    assert row.changed_by == admin_user
    [entry] = AuditEntry.objects.filter(event="credential.set")
    assert (entry.actor_username, entry.ip_address) == ("root", "192.0.2.7")
    assert entry.details == {"cluster": "eu1", "fingerprint": row.fingerprint}
    assert STORED not in str(entry.details)


def test_replacing_a_credential_is_audited_as_a_change_with_both_fingerprints(stored, admin_user):
    before = ClusterCredential.objects.get(cluster=stored)
    assert not credential_set(cluster=stored, token="svc-second", actor=admin_user)
    after = ClusterCredential.objects.get(cluster=stored)
    assert token_decrypt(after.ciphertext) == "svc-second"
    assert after.changed_at > before.changed_at
    [entry] = AuditEntry.objects.filter(event="credential.changed")
    assert entry.details == {
        "cluster": "eu1",
        "fingerprint": token_fingerprint("svc-second"),
        "previous_fingerprint": before.fingerprint,
    }


@pytest.mark.parametrize(
    "token",
    ["", "x" * 4097, "line\nbreak", "with space", "tab\there", "caf\u00e9", "\x7f"],
)
def test_a_token_a_cluster_could_not_be_sent_is_refused_with_nothing_written(cluster, token):
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        credential_set(cluster=cluster, token=token)
    assert list(refused.value.message_dict) == ["token"]
    assert row_counts() == before


def test_removing_deletes_the_credential_and_is_audited(stored, admin_user):
    assert credential_remove(cluster=stored, actor=admin_user, ip_address="192.0.2.8")
    assert not ClusterCredential.objects.exists()
    [entry] = AuditEntry.objects.filter(event="credential.removed")
    assert (entry.actor_username, entry.ip_address) == ("root", "192.0.2.8")
    assert entry.details == {"cluster": "eu1", "fingerprint": token_fingerprint(STORED)}


def test_removing_what_is_not_there_writes_nothing(cluster):
    before = row_counts()
    assert not credential_remove(cluster=cluster)
    assert row_counts() == before


def test_the_status_says_only_whether_one_is_set_and_when(cluster, admin_user):
    assert not credential_status(cluster=cluster).set
    credential_set(cluster=cluster, token=STORED, actor=admin_user)
    status = credential_status(cluster=cluster)
    row = ClusterCredential.objects.get(cluster=cluster)
    assert (status.set, status.changed_at, status.changed_by) == (True, row.changed_at, "root")


def test_deleting_the_cluster_deletes_its_credential(stored):
    stored.delete()
    assert not ClusterCredential.objects.exists()


def test_a_submit_with_the_stored_credential_records_no_token(operator, stored, allowed):
    [job] = job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    assert job.uses_stored_credential
    assert job.token_fingerprint == token_fingerprint(STORED)
    entry = AuditEntry.objects.get(event="set_action.requested", job_id=job.pk)
    assert entry.details["stored_credential"] is True


def test_the_ordinary_run_grant_does_not_allow_the_stored_credential(operator, stored):
    # Operators' migration grant covers every action on every cluster, but not the credential.
    before = row_counts()
    with pytest.raises(NotGranted, match="stored credential"):
        job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    with pytest.raises(NotGranted):
        job_submit_preview(
            user=operator, action=3, cluster=stored, cids="C1", stored_credential=True
        )
    assert row_counts() == before


def test_a_grant_for_the_credential_covers_its_action_and_cluster_only(operator, stored):
    baker.make(RunGrant, user=operator, cluster=stored, action=1, may_use_stored_credential=True)
    assert stored_credential_granted(user=operator, action=1, cluster=stored)
    assert not stored_credential_granted(user=operator, action=3, cluster=stored)
    with pytest.raises(NotGranted):
        job_submit(user=operator, action=3, cluster=stored, cids="C1", stored_credential=True)
    job_submit(user=operator, action=1, cluster=stored, cids="C1", stored_credential=True)


def test_an_unattended_run_needs_only_the_run_grant(operator, stored):
    [job] = job_submit(
        user=operator, action=3, cluster=stored, cids="C1", stored_credential=True, unattended=True
    )
    assert job.uses_stored_credential


def test_an_unattended_run_still_needs_the_run_grant(stored):
    nobody = make_user("op2", "Operators")
    RunGrant.objects.filter(group__name="Operators").delete()
    with pytest.raises(NotGranted):
        job_submit(
            user=nobody,
            action=3,
            cluster=stored,
            cids="C1",
            stored_credential=True,
            unattended=True,
        )


def test_a_cluster_without_a_credential_is_refused_on_the_token(operator, cluster, allowed):
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        job_submit(user=operator, action=3, cluster=cluster, cids="C1", stored_credential=True)
    assert refused.value.message_dict == {
        "token": ["Cluster eu1 has no stored credential: give a token."]
    }
    with pytest.raises(ValidationError):
        job_submit(
            user=operator,
            action=3,
            cluster=cluster,
            cids="C1",
            stored_credential=True,
            unattended=True,
        )
    assert row_counts() == before


def test_a_token_and_the_stored_credential_together_are_refused(operator, stored, allowed):
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        job_submit(
            user=operator, action=3, cluster=stored, cids="C1", token=TOKEN, stored_credential=True
        )
    assert list(refused.value.message_dict) == ["token"]
    assert row_counts() == before


def test_without_the_stored_credential_a_token_is_still_required(operator, stored, allowed):
    with pytest.raises(ValidationError) as refused:
        job_submit(user=operator, action=3, cluster=stored, cids="C1")
    assert refused.value.message_dict == {"token": ["Give the cluster API token."]}


def failed_job(operator, cluster) -> Job:
    """A job that ran with a token of its own and failed."""
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="E500-1", token=TOKEN)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    return job


def test_a_retry_may_use_the_stored_credential(operator, stored, allowed):
    job = failed_job(operator, stored)
    [again] = job_retry(job=job, user=operator, stored_credential=True)
    assert again.uses_stored_credential and again.retry_of_id == job.pk


def test_a_retry_with_the_stored_credential_needs_the_grant(operator, stored):
    job = failed_job(operator, stored)
    before = row_counts()
    with pytest.raises(NotGranted):
        job_retry(job=job, user=operator, stored_credential=True)
    assert row_counts() == before


def test_a_batch_retry_may_use_the_stored_credential(operator, stored, allowed):
    stored.max_cids_per_request = 1
    stored.save()
    jobs = job_submit(user=operator, action=3, cluster=stored, cids="E500-1 E500-2", token=TOKEN)
    for job in jobs:
        job_run(job_id=job.pk)
    again = batch_retry(batch_id=jobs[0].batch_id, user=operator, stored_credential=True)
    assert len(again) == 2
    assert all(job.uses_stored_credential for job in again)
    assert not JobToken.objects.filter(job__in=again).exists()
