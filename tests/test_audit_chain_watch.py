"""Housekeeping checks the last day's chain once an hour between all its processes and tells
the admins of a break once; /metrics publishes the chain's head."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry, ChainCheck
from audit.services import audit_record
from ops.audit_watch import audit_chain_watch
from ops.housekeeping import housekeeping_pass
from ops.metrics import metrics_text
from tests.helpers import make_user, run_concurrently
from tests.test_audit_chain import tamper

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def chain(db) -> list[AuditEntry]:
    for n in range(4):
        audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username=f"user{n}")
    return list(AuditEntry.objects.order_by("seq"))


@pytest.fixture
def admin(db):
    make_user("root", email="root@example.com", is_superuser=True)
    make_user("gone", email="gone@example.com", is_superuser=True, is_active=False)
    make_user("op", email="op@example.com")


def test_a_break_is_told_to_the_admins_once_and_checks_run_hourly(chain, admin, mail, caplog):
    now = timezone.now()
    verdict = audit_chain_watch(now=now)
    assert verdict.ok
    state = ChainCheck.objects.get()
    assert (state.head_seq, state.head_hash) == (4, chain[-1].hash)
    assert audit_chain_watch(now=now + HOUR / 2) is None

    tamper("UPDATE audit_auditentry SET event = 'auth.logout' WHERE id = %s", [chain[1].pk])
    verdict = audit_chain_watch(now=now + HOUR)
    assert verdict.broken.entry_id == chain[1].pk
    [message] = mail.messages
    assert message["To"] == "root@example.com"
    assert "hash chain is broken" in message["Subject"]
    assert f"entry id {chain[1].pk} (seq 2)" in message.get_content()
    assert "hash chain is broken" in caplog.text

    assert not audit_chain_watch(now=now + 2 * HOUR).ok
    assert audit_chain_watch(now=now + 2 * HOUR) is None
    assert len(mail.messages) == 1


def test_a_break_whose_mail_failed_is_told_at_the_next_check(chain, admin, mail):
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [chain[2].pk])
    mail.refuse("root@example.com")
    now = timezone.now()
    assert not audit_chain_watch(now=now).ok
    assert ChainCheck.objects.get().reported == ""
    mail.clear()
    assert not audit_chain_watch(now=now + HOUR).ok
    assert len(mail.messages) == 1
    assert ChainCheck.objects.get().reported.startswith("4:")


def test_the_check_walks_only_the_last_day(chain, admin, mail):
    """A break older than a day is not in the hourly window (verify_audit walks it all)."""
    tamper("UPDATE audit_auditentry SET event = 'x' WHERE id = %s", [chain[0].pk])
    assert audit_chain_watch(now=chain[1].created_at + dt.timedelta(days=1)).ok
    assert not mail.messages


def test_housekeeping_runs_the_check(chain):
    housekeeping_pass(now=timezone.now())
    assert ChainCheck.objects.get().head_seq == 4


def test_metrics_publish_the_chain_head(chain):
    text = metrics_text()
    assert "tmsdash_audit_chain_head_seq 4" in text
    assert f'tmsdash_audit_chain_head_info{{seq="4",hash="{chain[-1].hash}"}} 1' in text


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_processes_checking_at_once_check_once_an_hour_between_them():
    audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username="someone")
    start = timezone.now()
    for hour in range(6):
        results, errors = run_concurrently(
            lambda n, hour=hour: audit_chain_watch(now=start + hour * HOUR)
        )
        assert errors == []
        assert len([verdict for verdict in results if verdict is not None]) == 1
