"""Sign-ins through the provider that were refused before anyone was known, in the audit
trail, bounded as failed password sign-ins are: anyone can send a made-up answer to the
callback, and the trail must not fill with them."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record

logger = logging.getLogger(__name__)

REFUSALS_RECORDED_PER_ADDRESS = 50


def signin_refusal_record(reason: str, ip_address: str | None) -> None:
    recent = AuditEntry.objects.filter(
        event=AuditEntry.Event.AUTH_SIGNIN_REFUSED,
        ip_address=ip_address,
        created_at__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
    )
    if recent[:REFUSALS_RECORDED_PER_ADDRESS].count() >= REFUSALS_RECORDED_PER_ADDRESS:
        logger.warning("refused sign-in from %s not recorded: too many from there", ip_address)
        return
    audit_record(
        event=AuditEntry.Event.AUTH_SIGNIN_REFUSED,
        ip_address=ip_address,
        details={"reason": reason, "through": "identity provider"},
    )
