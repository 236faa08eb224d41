"""Housekeeping removes API tokens revoked or expired more than TMS_API_TOKENS_KEEP_DAYS ago,
in batches, each audited once, from several hosts at once and through a database outage."""

from __future__ import annotations

import datetime as dt
import io
import tempfile

import pytest
from django.core.management import call_command
from django.utils import timezone

import api.tokens
from api.models import ApiRateWindow, ApiToken
from api.throttles import rate_take
from api.tokens import token_create, tokens_remove_ended
from audit.models import AuditEntry
from ops.housekeeping import housekeeping_pass
from tests.db_faults import database_down
from tests.helpers import THREADS, make_user, run_concurrently, wait_until
from tests.test_riding_out import lines, start, stop

REMOVED = AuditEntry.Event.API_TOKENS_REMOVED


def ended(user, name: str, *, days_ago: float, how: str) -> ApiToken:
    """A token of `user` revoked, or expired, `days_ago` days ago."""
    token = token_create(user=user, name=name).token
    when = timezone.now() - dt.timedelta(days=days_ago)
    field = {"revoked": "revoked_at", "expired": "expires_at"}[how]
    ApiToken.objects.filter(pk=token.pk).update(**{field: when})
    return token


@pytest.fixture
def keep_days(settings) -> int:
    settings.TMS_API_TOKENS_KEEP_DAYS = 30
    settings.TMS_API_TOKENS_PER_USER = 100
    return 30


def test_tokens_ended_longer_ago_than_kept_are_removed_and_audited(operator, keep_days):
    old_revoked = ended(operator, "old revoked", days_ago=keep_days + 1, how="revoked")
    old_expired = ended(make_user("op2"), "old expired", days_ago=keep_days + 1, how="expired")
    kept = [
        ended(operator, "recently revoked", days_ago=keep_days - 1, how="revoked"),
        ended(operator, "recently expired", days_ago=keep_days - 1, how="expired"),
        token_create(user=operator, name="live").token,
    ]
    rate_take(old_revoked.pk, "read", 10)

    report = housekeeping_pass()

    assert report.tokens_removed == 2
    assert "2 ended API token(s) removed" in str(report)
    assert set(ApiToken.objects.values_list("pk", flat=True)) == {t.pk for t in kept}
    assert not ApiRateWindow.objects.exists()
    [entry] = AuditEntry.objects.filter(event=REMOVED)
    assert entry.actor is None
    assert entry.details["count"] == 2
    assert entry.details["tokens"] == sorted([old_revoked.prefix, old_expired.prefix])
    # Their names and owners stay in the trail, in the entries of their creation.
    created = AuditEntry.objects.filter(event="api_token.created")
    assert created.filter(details__token=old_expired.prefix, details__owner="op2").exists()

    assert housekeeping_pass().tokens_removed == 0
    assert AuditEntry.objects.filter(event=REMOVED).count() == 1


def test_removal_goes_in_batches_each_with_its_entry(operator, keep_days, monkeypatch):
    monkeypatch.setattr(api.tokens, "REMOVE_BATCH", 2)
    tokens = [ended(operator, f"t{n}", days_ago=keep_days + 2, how="expired") for n in range(5)]
    assert tokens_remove_ended() == 5
    entries = AuditEntry.objects.filter(event=REMOVED).order_by("id")
    assert [e.details["count"] for e in entries] == [2, 2, 1]
    assert sorted(p for e in entries for p in e.details["tokens"]) == sorted(
        t.prefix for t in tokens
    )


def test_the_command_says_how_many_it_removed(operator, keep_days):
    ended(operator, "old", days_ago=keep_days + 1, how="revoked")
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out)
    assert "1 ended API token(s) removed" in out.getvalue()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_passes_at_once_remove_and_audit_each_token_once(operator, keep_days, monkeypatch):
    monkeypatch.setattr(api.tokens, "REMOVE_BATCH", 3)
    tokens = [ended(operator, f"t{n}", days_ago=keep_days + 1, how="revoked") for n in range(20)]
    results, errors = run_concurrently(lambda n: tokens_remove_ended())
    assert errors == []
    assert len(results) == THREADS and sum(results) == 20
    audited = [p for e in AuditEntry.objects.filter(event=REMOVED) for p in e.details["tokens"]]
    assert sorted(audited) == sorted(t.prefix for t in tokens)
    assert not ApiToken.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_housekeeping_removes_them_once_the_database_is_back(operator, keep_days):
    token = ended(operator, "old", days_ago=keep_days + 1, how="revoked")
    with tempfile.TemporaryFile("w+") as log:
        with database_down():
            process = start("housekeeping", "--interval", "0.2", log=log)
            try:
                wait_until(lambda: lines(log, "database unavailable") == 1, timeout=60)
            except AssertionError:
                stop(process)
                raise
        try:
            wait_until(lambda: not ApiToken.objects.filter(pk=token.pk).exists(), timeout=60)
            assert process.poll() is None
        finally:
            assert stop(process) == 0
        assert lines(log, "database back") == 1
        assert lines(log, "1 ended API token(s) removed") == 1
    [entry] = AuditEntry.objects.filter(event=REMOVED)
    assert entry.details["tokens"] == [token.prefix]
