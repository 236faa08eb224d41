"""The notice of a break-glass sign-in (accounts.services.local audits it and signals it),
written in the transaction that audits it: `signin.break_glass` by e-mail to every admin
(active superusers with an address; nobody can turn it off), and to each active webhook
endpoint subscribed to it and narrowed to no cluster. It names the user, the time and the
address the sign-in came from; never anything of the password. The event's id is derived
from the audit entry's, so that it is told once per recipient."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from audit.models import AuditEntry
from notifications.admin_notices import notices_to_admins
from notifications.event_names import EventName
from notifications.events import event_id_for
from notifications.models import Notice


def notices_record_break_glass(
    *, user: AbstractBaseUser, at: datetime, ip_address: str | None, audit_entry_id: int
) -> list[Notice]:
    """Write the notices of a break-glass sign-in; call it inside the transaction that audits
    it."""
    event = EventName.SIGNIN_BREAK_GLASS
    event_id = event_id_for(event, uuid.UUID(int=audit_entry_id))
    trail = reverse("admin:audit_auditentry_changelist")
    payload = {
        "event": event,
        "event_id": str(event_id),
        "username": user.get_username(),
        "ip_address": ip_address or "",
        "local_signin": settings.TMS_LOCAL_SIGNIN,
        "url": f"{settings.TMS_PUBLIC_URL}{trail}?event__exact={AuditEntry.Event.AUTH_BREAK_GLASS}",
        "occurred_at": at.isoformat(),
    }
    return notices_to_admins(event=event, event_id=event_id, payload=payload)
