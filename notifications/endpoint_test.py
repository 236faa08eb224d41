"""An admin's test of a webhook endpoint: a test message through the outbox, delivered at once.

The message is a `Notice` of the event `test`, posted like any notice (in the endpoint's
format, signed with its secret), tried once: it is SENT or FAILED when the admin's request
returns, and its attempt stays in the outbox. Audited as `webhook.tested`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from notifications.delivery import notice_deliver_once
from notifications.models import Notice, WebhookEndpoint


@dataclass(frozen=True)
class TestAnswer:
    """What the endpoint answered: `error` is empty when it acknowledged the message."""

    ok: bool
    http_status: int | None
    answer: str
    error: str


def endpoint_send_test(
    *, endpoint: WebhookEndpoint, actor=None, ip_address: str | None = None
) -> TestAnswer:
    """Write a test notice for `endpoint`, audited, then deliver it at once and say what the
    endpoint answered (never raises for what the endpoint or the network does)."""
    now = timezone.now()
    event_id = uuid.uuid4()
    with transaction.atomic():
        notice = Notice.objects.create(
            id=event_id,
            event_id=event_id,
            event=Notice.TEST,
            channel=Notice.Channel.WEBHOOK,
            endpoint=endpoint,
            created_at=now,
            next_attempt_at=now,
            payload={
                "event": Notice.TEST,
                "event_id": str(event_id),
                "endpoint": str(endpoint),
                "url": settings.TMS_PUBLIC_URL
                + reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]),
                "occurred_at": now.isoformat(),
            },
        )
        audit_record(
            event=AuditEntry.Event.WEBHOOK_TESTED,
            actor=actor,
            ip_address=ip_address,
            details={
                "endpoint_id": endpoint.pk,
                "endpoint": str(endpoint),
                "notice": str(notice.pk),
            },
        )
    outcome = notice_deliver_once(notice_id=notice.pk)
    if outcome is None:
        return TestAnswer(False, None, "", "Another worker is sending the test message.")
    if isinstance(outcome, str):
        return TestAnswer(False, None, "", f"Not sent: {outcome}")
    return TestAnswer(outcome.ok, outcome.http_status, outcome.answer, outcome.error)
