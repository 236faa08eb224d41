"""Notifications: webhook endpoints written through a service that audits them
without their secret, and notices delivered again on request."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster
from notifications import delivery
from notifications.delivery import notice_deliver
from notifications.endpoints import endpoint_delete, endpoint_save
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from notifications.resend import notices_resend
from notifications.tasks import deliver_notice
from notifications.webhooks import Outcome
from tests.helpers import row_counts

SECRET = "whsec-9Lq2x-never-shown-never-stored-in-clear"
State = Notice.State

pytestmark = pytest.mark.django_db


@pytest.fixture
def eu1(db):
    return baker.make(Cluster, name="eu1", base_url="http://127.0.0.1:9100")


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(
        name="ops-hook", url="https://hooks.example.net/tms", secret=SECRET
    )


def entries(event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=event))


def make_notice(*, endpoint=None, user=None, **fields) -> Notice:
    event_id = uuid.uuid4()
    fields.setdefault("event", "job.failed")
    return Notice.objects.create(
        event_id=event_id,
        channel=Notice.Channel.WEBHOOK if endpoint else Notice.Channel.EMAIL,
        endpoint=endpoint,
        user=user,
        payload={"event": fields["event"], "event_id": str(event_id), "error": "HTTP 500"},
        **fields,
    )


def test_endpoint_save_refuses_an_unreadable_secret_and_writes_nothing(endpoint):
    endpoint.secret = None
    before = row_counts()
    with pytest.raises(Exception, match="cannot be read"):
        endpoint_save(endpoint=endpoint)
    assert row_counts() == before


def test_endpoint_save_sets_the_clusters_only_when_given(endpoint, eu1):
    endpoint_save(endpoint=endpoint, clusters=[eu1])
    endpoint.name = "renamed"
    endpoint_save(endpoint=endpoint)

    assert list(endpoint.clusters.all()) == [eu1]
    first, second = AuditEntry.objects.filter(event="webhook.changed").order_by("id")
    assert (first.details["before"], first.details["after"]) == (
        {"clusters": []},
        {"clusters": ["eu1"]},
    )
    assert second.details["after"] == {"name": "renamed"}


def test_endpoint_delete_of_one_with_notices_raises_and_writes_nothing(endpoint):
    make_notice(endpoint=endpoint)
    before = row_counts()
    with pytest.raises(Exception, match="protected"):
        endpoint_delete(endpoint=endpoint)
    assert row_counts() == before


@pytest.fixture
def failed_notice(endpoint):
    notice = make_notice(
        endpoint=endpoint,
        state=State.FAILED,
        attempts=2,
        created_at=dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 3, 5, 5, 6, 8, tzinfo=dt.UTC),
        last_error="HTTP 503 Service Unavailable from the receiver",
    )
    NoticeAttempt.objects.create(
        notice=notice,
        started_at=dt.datetime(2026, 3, 4, 5, 6, 9, tzinfo=dt.UTC),
        duration_ms=10004,
        ok=False,
        error="timed out after 10 s",
    )
    NoticeAttempt.objects.create(
        notice=notice,
        started_at=dt.datetime(2026, 3, 4, 5, 7, 11, tzinfo=dt.UTC),
        duration_ms=87,
        ok=False,
        http_status=503,
        error="HTTP 503 Service Unavailable from the receiver",
    )
    return notice


def tasks_for(notices: list[Notice]) -> list[list[str]]:
    results = DBTaskResult.objects.filter(task_path=deliver_notice.module_path)
    wanted = {str(n.pk) for n in notices}
    return [r.args_kwargs["args"] for r in results if r.args_kwargs["args"][0] in wanted]


def test_deliver_again_twice_queues_nothing_more(endpoint, failed_notice):
    assert notices_resend(notice_ids=[failed_notice.pk]) == 1
    assert notices_resend(notice_ids=[failed_notice.pk]) == 0
    assert len(tasks_for([failed_notice])) == 1


@pytest.mark.parametrize(
    ("age", "state_after"), [(dt.timedelta(days=2), State.FAILED), (dt.timedelta(0), State.PENDING)]
)
def test_a_resent_notice_is_tried_at_once_then_retried_only_within_its_window(
    endpoint, monkeypatch, age, state_after
):
    created = timezone.now() - age
    notice = make_notice(endpoint=endpoint, state=State.FAILED, attempts=9, created_at=created)
    monkeypatch.setattr(
        delivery, "webhook_post", lambda **kw: Outcome(False, http_status=503, error="HTTP 503")
    )

    notices_resend(notice_ids=[notice.pk])
    assert notice_deliver(notice_id=notice.pk)

    notice.refresh_from_db()
    assert notice.state == state_after
    assert notice.attempts == 10
    assert NoticeAttempt.objects.filter(notice=notice, http_status=503).count() == 1
