"""The notices of a scheduled run that failed (schedules.services.scheduler records the
occurrence FAILED: a cluster deleted or inactive, no stored credential, the owner without a
grant, a submit refused, a rule that no longer parses), written in the transaction that
records it: `schedule.failed` to the schedule's owner by e-mail (unless they turned off the
failures of their own jobs), and to each active webhook endpoint subscribed to it (on the
saved Set Action's cluster, when narrowed). The event's id is derived from the occurrence's,
so that it is told once per recipient."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from jobs.models import JobAction
from notifications.event_names import EventName
from notifications.events import endpoints_subscribed, event_id_for, notices_write
from notifications.models import Notice, NotificationPreference
from schedules.models import Occurrence


def notices_record_schedule_failure(*, occurrence: Occurrence, at: datetime) -> list[Notice]:
    """Write the notices of a FAILED occurrence; call it inside the transaction that records
    it."""
    schedule = occurrence.schedule
    saved = schedule.saved_set_action
    owner = schedule.owner
    event = EventName.SCHEDULE_FAILED
    event_id = event_id_for(event, uuid.UUID(int=occurrence.pk))
    payload = {
        "event": event,
        "event_id": str(event_id),
        "schedule_id": schedule.pk,
        "name": saved.name,
        "occurs_at": occurrence.occurs_at.isoformat(),
        "status": occurrence.state,
        "error": occurrence.reason,
        "action": JobAction(saved.action).label,
        "cluster": saved.cluster.name if saved.cluster_id else "",
        "operator": owner.get_username(),
        "url": settings.TMS_PUBLIC_URL + reverse("api_schedule_occurrences", args=[schedule.pk]),
        "occurred_at": at.isoformat(),
    }
    users = []
    if settings.TMS_MAIL_ENABLED:
        preference = NotificationPreference.objects.filter(user=owner).first()
        wants = preference is None or preference.own_jobs
        active = get_user_model().objects.filter(pk=owner.pk, is_active=True).exclude(email="")
        if wants and active.exists():
            users = [owner.pk]
    return notices_write(
        event=event,
        event_id=event_id,
        job_id=None,
        batch_id=None,
        payload=payload,
        endpoints=endpoints_subscribed(
            cluster_id=saved.cluster_id, wants=lambda events: event in events
        ),
        user_ids=users,
    )
