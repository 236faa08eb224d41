"""Housekeeping checks the last day's chain once an hour between all its processes and tells
the admins of a break once; /metrics publishes the chain's head."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from audit.models import AuditEntry, ChainCheck
from audit.services import audit_record
from notifications.delivery import notice_deliver
from notifications.endpoints import endpoint_save
from notifications.models import Notice, WebhookEndpoint
from ops.audit_watch import audit_chain_watch
from ops.housekeeping import housekeeping_pass
from ops.metrics import metrics_text
from tests.helpers import make_user, run_concurrently
from tests.servers import LoopbackServer, answer
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


def deliver_all() -> None:
    for notice_id in Notice.objects.values_list("pk", flat=True):
        notice_deliver(notice_id=notice_id)


def test_a_break_is_told_to_the_admins_once_and_checks_run_hourly(chain, admin, mail, caplog):
    now = timezone.now()
    verdict = audit_chain_watch(now=now)
    assert verdict.ok
    state = ChainCheck.objects.get()
    assert (state.head_seq, state.head_hash) == (4, chain[-1].hash)
    assert audit_chain_watch(now=now + HOUR / 2) is None
    assert not Notice.objects.exists()

    tamper("UPDATE audit_auditentry SET event = 'auth.logout' WHERE id = %s", [chain[1].pk])
    verdict = audit_chain_watch(now=now + HOUR)
    assert verdict.broken.entry_id == chain[1].pk
    assert "hash chain is broken" in caplog.text
    deliver_all()
    [message] = mail.messages
    assert message["To"] == "root@example.com"
    assert message["Subject"] == "[tmsdash] The audit trail's hash chain is broken at seq 2"
    assert f"seq 2 (entry id {chain[1].pk})" in message.get_body(("plain",)).get_content()

    assert not audit_chain_watch(now=now + 2 * HOUR).ok
    assert audit_chain_watch(now=now + 2 * HOUR) is None
    assert Notice.objects.count() == 1


def test_a_break_goes_to_the_webhooks_that_asked_for_it(chain, settings):
    settings.TMS_ALLOWED_WEBHOOK_HOSTS = []
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [chain[2].pk])
    with LoopbackServer(answer(204, "")) as server:
        for name, events in (("security", ["audit.chain_broken"]), ("jobs", ["job.failed"])):
            endpoint_save(
                endpoint=WebhookEndpoint(
                    name=name, url=f"{server.url}/{name}", secret="s" * 32, events=events
                )
            )
        assert not audit_chain_watch(now=timezone.now()).ok
        deliver_all()
        [received] = server.received

    assert received.path == "/security"
    body = json.loads(received.body)
    # The entry after the one removed is where the chain breaks.
    assert (body["event"], body["seq"], body["entry_id"]) == ("audit.chain_broken", 4, chain[3].pk)
    assert body["url"].endswith("/audit/")


def test_the_check_walks_only_the_last_day(chain, admin, mail):
    """A break older than a day is not in the hourly window (verify_audit walks it all)."""
    tamper("UPDATE audit_auditentry SET event = 'x' WHERE id = %s", [chain[0].pk])
    assert audit_chain_watch(now=chain[1].created_at + dt.timedelta(days=1)).ok
    assert not Notice.objects.exists()


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
