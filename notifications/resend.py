"""Delivering again notices that failed or were dropped, at an admin's request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from notifications.delivery import deliver_notice
from notifications.models import Notice

logger = logging.getLogger(__name__)

State = Notice.State
ENDED = (State.FAILED, State.DROPPED)


def notices_resend(
    *,
    notice_ids: Iterable[uuid.UUID | str],
    actor=None,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> int:
    """Queue the FAILED or DROPPED notices among `notice_ids` to be delivered again, each with
    its task in the same transaction; returns how many were queued. Notices in any other
    state are left as they are, so asking twice queues nothing more.

    A notice keeps its history: its creation time, its attempts and their outcomes. It is
    tried again at once; if that fails it follows the usual backoff (notifications.delivery)
    until TMS_NOTIFY_RETRY_FOR after its creation, as before, so that one resent after that
    window gets exactly one more attempt. A notice held for a digest goes again only in its
    digest: asking for it (or for the digest) queues the digest, and the notices it holds
    are held in it again. Audited (`notices.resent`, with who asked and the notices queued)
    in the same transaction, and logged.
    """
    now = now or timezone.now()
    ids = list(notice_ids)
    with transaction.atomic():
        chosen = Notice.objects.filter(pk__in=ids, state__in=ENDED)
        digests = chosen.filter(digest__isnull=False).values("digest_id")
        queued = list(
            Notice.objects.select_for_update()
            .filter(Q(pk__in=chosen.filter(digest__isnull=True).values("pk")) | Q(pk__in=digests))
            .filter(state__in=ENDED)
            .order_by("created_at")
            .values_list("pk", flat=True)
        )
        if not queued:
            return 0
        Notice.objects.filter(pk__in=queued, state__in=ENDED).update(
            state=State.PENDING, next_attempt_at=now, lease_until=None, finished_at=None
        )
        # Held again, each is DIGESTED, FAILED or DROPPED with its digest's next outcome.
        Notice.objects.filter(digest_id__in=queued, state__in=ENDED).update(
            state=State.HELD, finished_at=None
        )
        for notice_id in queued:
            deliver_notice.enqueue(str(notice_id))
        audit_record(
            event=AuditEntry.Event.NOTICES_RESENT,
            actor=actor,
            ip_address=ip_address,
            details={"notices": [str(notice_id) for notice_id in queued]},
        )
    username = actor.get_username() if actor is not None else "-"
    logger.info(
        "%d notice(s) queued to be delivered again by %s: %s",
        len(queued),
        username,
        ", ".join(str(notice_id) for notice_id in queued),
    )
    return len(queued)
