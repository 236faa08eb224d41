"""The notice of a break in the audit trail's hash chain (ops.audit_watch finds it):
`audit.chain_broken` by e-mail to every admin (active superusers with an address; nobody can
turn it off), and to each active webhook endpoint subscribed to it and narrowed to no cluster.
It names the entry where the chain breaks and what is wrong there. The event's id is derived
from the break, so that the same break is told once per recipient."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from notifications.admin_notices import notices_to_admins
from notifications.event_names import EventName
from notifications.events import event_id_for
from notifications.models import Notice

BREAK_NAMESPACE = uuid.UUID("2f6c1f0e-7d0a-4c55-9a55-3b1c5e2f0a11")


def notices_record_chain_break(
    *, seq: int, entry_id: int | None, problem: str, at: datetime
) -> list[Notice]:
    """Write the notices of a break found at chain place `seq` (the entry `entry_id`, None
    when it is missing); call it in a transaction."""
    event = EventName.AUDIT_CHAIN_BROKEN
    event_id = event_id_for(event, uuid.uuid5(BREAK_NAMESPACE, f"{seq}:{problem}"))
    payload = {
        "event": event,
        "event_id": str(event_id),
        "seq": seq,
        "entry_id": entry_id,
        "problem": problem,
        "url": f"{settings.TMS_PUBLIC_URL}{reverse('audit_log')}",
        "occurred_at": at.isoformat(),
    }
    return notices_to_admins(event=event, event_id=event_id, payload=payload)
