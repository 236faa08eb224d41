"""Rotating TMS_TOKEN_KEY: with the new key first and the old after it, rotate_token_key
re-encrypts every stored secret (clusters' credentials, queued jobs' tokens, webhook secrets)
with the new key, says how many of each, changes nothing on a dry run or a second run; then
the old key dropped, everything still reads back."""

from __future__ import annotations

import hashlib
import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import ClusterCredential, Job, JobToken, RunGrant
from jobs.services import credential_set, job_run, job_submit
from jobs.tokens import token_decrypt, token_encrypt
from notifications.models import WebhookEndpoint
from ops.token_keys import token_key_rotate
from tests.helpers import TOKEN

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
STORED = "svc-Stored-credential-4b7e-never-in-clear"
HOOK_SECRET = "whsec-" + "h" * 26
HOOK_URL = "https://hooks.example.net/services/T0/B0/url-is-a-credential"
ROUTING_KEY = "pd-routing-" + "r" * 21


def stored_text(model, column: str) -> list[str]:
    """The column as the database holds it (the webhook secret's field decrypts on reading)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(model._meta.db_table)}")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def secrets(settings, operator, cluster):
    """A database with one secret of each kind, all encrypted with OLD."""
    settings.TMS_TOKEN_KEY = OLD
    credential_set(cluster=cluster, token=STORED)
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    WebhookEndpoint.objects.create(
        name="hook",
        url=HOOK_URL,
        format=WebhookEndpoint.Format.PAGERDUTY,
        secret=HOOK_SECRET,
        routing_key=ROUTING_KEY,
    )
    return job


def everything_stored() -> list[str]:
    return [
        *stored_text(ClusterCredential, "ciphertext"),
        *stored_text(JobToken, "ciphertext"),
        *stored_text(WebhookEndpoint, "secret"),
        *stored_text(WebhookEndpoint, "url"),
        *stored_text(WebhookEndpoint, "routing_key"),
    ]


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_token_key", *args, stdout=out)
    return out.getvalue()


def test_rotation_then_the_old_key_dropped_reads_everything_back(
    settings, secrets, operator, cluster, fake_cluster
):
    settings.TMS_TOKEN_KEY = f"{NEW}, {OLD}"
    before = everything_stored()
    output = rotate("--dry-run")
    assert "cluster credentials: 1 would be re-encrypted, 0 already current, 0 unreadable" in output
    assert "job tokens: 1 would be re-encrypted" in output
    assert "webhook secrets: 1 would be re-encrypted" in output
    assert "webhook URLs: 1 would be re-encrypted" in output
    assert "webhook routing keys: 1 would be re-encrypted" in output
    assert output.splitlines()[-1] == "Dry run: 5 secret(s) would be re-encrypted."
    assert everything_stored() == before

    output = rotate()
    assert output.splitlines()[-1] == "5 secret(s) re-encrypted."
    assert "cluster credentials: 1 re-encrypted, 0 already current, 0 unreadable" in output
    after = everything_stored()
    assert all(new != old for new, old in zip(after, before, strict=True))
    entry = AuditEntry.objects.get(event="token_key.rotated")
    assert entry.details["job tokens"] == {"rotated": 1, "current": 0, "unreadable": 0}

    # Idempotent: a second run finds everything current and writes nothing.
    output = rotate()
    assert "job tokens: 0 re-encrypted, 1 already current, 0 unreadable" in output
    assert output.splitlines()[-1] == "0 secret(s) re-encrypted."
    assert everything_stored() == after
    assert AuditEntry.objects.filter(event="token_key.rotated").count() == 1

    settings.TMS_TOKEN_KEY = NEW
    assert token_decrypt(ClusterCredential.objects.get().ciphertext) == STORED
    hook = WebhookEndpoint.objects.get()
    assert (hook.url, hook.secret, hook.routing_key) == (HOOK_URL, HOOK_SECRET, ROUTING_KEY)
    job_run(job_id=secrets.pk)
    secrets.refresh_from_db()
    assert secrets.status == Job.Status.SUCCESS
    assert fake_cluster.token_digest(str(secrets.pk)) == hashlib.sha256(TOKEN.encode()).hexdigest()
    baker.make(RunGrant, user=operator, cluster=cluster, may_use_stored_credential=True)
    [stored_job] = job_submit(
        user=operator, action=3, cluster=cluster, cids="C2", stored_credential=True
    )
    job_run(job_id=stored_job.pk)
    assert (
        fake_cluster.token_digest(str(stored_job.pk)) == hashlib.sha256(STORED.encode()).hexdigest()
    )


def test_without_the_rotation_dropping_the_old_key_loses_the_secrets(settings, secrets):
    """The guard the rotation is for: what it did not re-encrypt, the new key alone cannot read."""
    settings.TMS_TOKEN_KEY = NEW
    assert WebhookEndpoint.objects.get().secret is None
    job_run(job_id=secrets.pk)
    secrets.refresh_from_db()
    assert secrets.status == Job.Status.FAILED


def test_a_secret_no_key_reads_is_counted_and_left_alone(settings, secrets, cluster):
    stranger = Fernet.generate_key().decode()
    settings.TMS_TOKEN_KEY = stranger
    unreadable = token_encrypt("svc-of-another-key")
    ClusterCredential.objects.filter(cluster=cluster).update(ciphertext=unreadable)
    settings.TMS_TOKEN_KEY = f"{NEW},{OLD}"
    report = {counts.name: counts for counts in token_key_rotate()}
    assert (report["cluster credentials"].rotated, report["cluster credentials"].unreadable) == (
        0,
        1,
    )
    assert report["job tokens"].rotated == 1
    assert ClusterCredential.objects.get().ciphertext == unreadable
    assert "1 unreadable by every key" in rotate()


def test_a_malformed_key_list_stops_start_up(monkeypatch):
    from tmsdash.env_parsers import _fernet_key

    assert _fernet_key(f"{NEW},{OLD}") == f"{NEW},{OLD}"
    for bad in (f"{NEW},", f"{NEW},not-a-key", "", ","):
        with pytest.raises(ValueError, match="Fernet key"):
            _fernet_key(bad)
