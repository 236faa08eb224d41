"""Notices every admin gets, whatever their preferences: by e-mail to every active superuser
with an address (when e-mail is configured), and to each active webhook endpoint subscribed to
the event and narrowed to no cluster. The events that are told so (a break-glass sign-in, a
break in the audit chain) are about the whole dashboard, not a job."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model

from notifications.events import endpoints_subscribed, notices_write
from notifications.models import Notice


def notices_to_admins(*, event: str, event_id: uuid.UUID, payload: dict) -> list[Notice]:
    """Write the event's notices to the admins and the endpoints that asked for it; call it
    in the transaction of what it tells."""
    admins = []
    if settings.TMS_MAIL_ENABLED:
        users = get_user_model().objects.filter(is_active=True, is_superuser=True)
        admins = sorted(users.exclude(email="").values_list("pk", flat=True))
    return notices_write(
        event=event,
        event_id=event_id,
        job_id=None,
        batch_id=None,
        payload=payload,
        endpoints=endpoints_subscribed(cluster_id=None, wants=lambda events: event in events),
        user_ids=admins,
    )
