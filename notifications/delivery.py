"""Delivering notices: at least once, never again once acknowledged, and without floods.

A worker takes a due notice by compare-and-set (a lease, so two workers never send it at once),
sends it outside any transaction, and records the attempt: SENT when acknowledged (a 2xx within
10 s, or the mail server's acceptance), else it is tried again with exponential backoff
(TMS_NOTIFY_RETRY_FIRST seconds, doubled each time, at most an hour) until
TMS_NOTIFY_RETRY_FOR seconds after the event, then FAILED. A worker that dies mid-send leaves
the lease, which housekeeping takes back (`notices_recover`).

Noise control: once a user has been sent TMS_NOTIFY_DIGEST_AFTER e-mails on their own within
TMS_NOTIFY_DIGEST_WINDOW seconds, the next ones are HELD and go out together as one digest at
the end of the window. The decision is taken under a lock on the user's preferences, so that
workers deciding at once count each other.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import task

from notifications.formats import webhook_body_for
from notifications.mail import mail_send
from notifications.models import Notice, NoticeAttempt, NotificationPreference
from notifications.webhooks import Outcome, webhook_post

logger = logging.getLogger(__name__)

State = Notice.State
Channel = Notice.Channel
# Longer than a webhook's 10 s and a slow mail server's few exchanges of 10 s each.
LEASE = timedelta(minutes=2)
LONGEST_WAIT = timedelta(hours=1)
# A due notice nobody took for this long lost its task (a worker died before taking it).
FORGOTTEN_AFTER = timedelta(minutes=2)
MAX_ERROR_LENGTH = 1000


def notice_deliver(*, notice_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Deliver one notice if it is due and nobody holds it; True when this call tried."""
    return _deliver(notice_id, now or timezone.now(), once=False) is not None


def notice_deliver_once(*, notice_id: uuid.UUID) -> Outcome | str | None:
    """Deliver one notice now, like `notice_deliver`, but FAILED at once if this attempt
    fails (an admin's test of an endpoint). Returns the attempt's outcome, the reason it
    could not be sent, or None when it was not due or another worker held it."""
    return _deliver(notice_id, timezone.now(), once=True)


def _deliver(notice_id: uuid.UUID, now: datetime, *, once: bool) -> Outcome | str | None:
    notice = _take(notice_id, now)
    if notice is None:
        return None
    held = list(notice.held.order_by("created_at")) if notice.event == Notice.DIGEST else []
    started = time.monotonic()
    outcome = _send(notice, held)
    _record(notice, held, outcome, started=now, duration=time.monotonic() - started, once=once)
    return outcome


# Declared beside its body: a failed attempt queues the notice's next one, so the task and
# its body would otherwise be two modules importing each other.
@task()
def deliver_notice(notice_id: str) -> None:
    """Try to deliver one notice when it is due."""
    notice_deliver(notice_id=uuid.UUID(notice_id))


def _due(notice_id: uuid.UUID, now: datetime):
    return Notice.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=notice_id,
        state=State.PENDING,
        next_attempt_at__lte=now,
    )


def _take(notice_id: uuid.UUID, now: datetime) -> Notice | None:
    """Lease the notice to this worker; or hold it for a digest; or None when it is not due,
    is held by another worker, or has ended."""
    with transaction.atomic():
        notice = _due(notice_id, now).select_related("user", "endpoint").first()
        if notice is None:
            return None
        if notice.channel == Channel.EMAIL:
            _lock_mailbox(notice.user_id)
            first = notice.event != Notice.DIGEST and notice.claimed_at is None
            if first and _too_many(notice.user_id, now):
                _hold(notice, now)
                return None
        lease = now + LEASE
        if not _due(notice_id, now).update(
            lease_until=lease,
            attempts=F("attempts") + 1,
            claimed_at=notice.claimed_at or now,
        ):
            return None
        notice.lease_until = lease
        notice.attempts += 1
        return notice


def _lock_mailbox(user_id: int) -> None:
    """Lock the user's preferences until the transaction ends: deciding whether a notice goes
    alone or in a digest, and taking a digest to send, take turns per user."""
    NotificationPreference.objects.get_or_create(user_id=user_id)
    list(NotificationPreference.objects.select_for_update().filter(user_id=user_id).values("pk"))


def _too_many(user_id: int, now: datetime) -> bool:
    """Whether the user was sent TMS_NOTIFY_DIGEST_AFTER e-mails on their own within the
    window."""
    window = timedelta(seconds=settings.TMS_NOTIFY_DIGEST_WINDOW)
    sent_alone = Notice.objects.filter(
        user_id=user_id, channel=Channel.EMAIL, claimed_at__gte=now - window
    ).exclude(event=Notice.DIGEST)
    return sent_alone.count() >= settings.TMS_NOTIFY_DIGEST_AFTER


def _hold(notice: Notice, now: datetime) -> None:
    """Put the notice in the user's open digest, opening one due at the end of the window."""
    digest = (
        Notice.objects.filter(
            user_id=notice.user_id, event=Notice.DIGEST, state=State.PENDING, attempts=0
        )
        .order_by("created_at")
        .first()
    )
    if digest is None:
        digest_id = uuid.uuid4()
        digest = Notice.objects.create(
            id=digest_id,
            event_id=digest_id,
            event=Notice.DIGEST,
            channel=Channel.EMAIL,
            user_id=notice.user_id,
            created_at=now,
            next_attempt_at=now + timedelta(seconds=settings.TMS_NOTIFY_DIGEST_WINDOW),
        )
        deliver_notice.using(run_after=digest.next_attempt_at).enqueue(str(digest.pk))
    Notice.objects.filter(pk=notice.pk, state=State.PENDING).update(state=State.HELD, digest=digest)


def _unsendable(notice: Notice) -> str:
    """Why the notice can no longer go to its recipient, or ""."""
    if notice.channel == Channel.WEBHOOK:
        if not notice.endpoint.is_active:
            return "The webhook endpoint was deactivated."
        endpoint = notice.endpoint
        unreadable = [
            name
            for name, value in (
                ("URL", endpoint.url),
                ("secret", endpoint.secret),
                ("PagerDuty routing key", endpoint.routing_key),
            )
            if value is None
        ]
        if unreadable:
            names = " and ".join(
                [", ".join(unreadable[:-1]), unreadable[-1]] if unreadable[1:] else unreadable
            )
            return (
                f"The endpoint's {names} cannot be read (TMS_TOKEN_KEY or SECRET_KEY changed): "
                f"set {'them' if unreadable[1:] else 'it'} again in the admin."
            )
        return ""
    if not settings.TMS_MAIL_ENABLED:
        return "E-mail is not configured (EMAIL_URL)."
    if not notice.user.is_active or not notice.user.email:
        return "The user is inactive or has no e-mail address."
    return ""


def _send(notice: Notice, held: list[Notice]) -> Outcome | str:
    """The attempt's outcome; or, for a notice that can no longer be sent, why."""
    if reason := _unsendable(notice):
        return reason
    if notice.channel == Channel.WEBHOOK:
        return webhook_post(
            url=notice.endpoint.url,
            secret=notice.endpoint.secret,
            event_id=str(notice.event_id),
            payload=webhook_body_for(notice),
        )
    return mail_send(notice, held)


def _record(
    notice: Notice,
    held: list[Notice],
    outcome: Outcome | str,
    *,
    started: datetime,
    duration: float,
    once: bool,
) -> None:
    now = started + timedelta(seconds=duration)
    mine = Notice.objects.filter(pk=notice.pk, state=State.PENDING, lease_until=notice.lease_until)
    if isinstance(outcome, str):
        mine.update(state=State.DROPPED, finished_at=now, lease_until=None, last_error=outcome)
        Notice.objects.filter(digest=notice, state=State.HELD).update(
            state=State.DROPPED, finished_at=now, last_error=outcome
        )
        logger.warning("notice %s dropped: %s", notice.pk, outcome)
        return
    error = outcome.error[:MAX_ERROR_LENGTH]
    with transaction.atomic():
        NoticeAttempt.objects.create(
            notice=notice,
            started_at=started,
            duration_ms=round(duration * 1000),
            ok=outcome.ok,
            http_status=outcome.http_status,
            error=error,
        )
        if outcome.ok:
            mine.update(state=State.SENT, finished_at=now, lease_until=None, last_error="")
            Notice.objects.filter(pk__in=[n.pk for n in held], state=State.HELD).update(
                state=State.DIGESTED, finished_at=now
            )
            return
        give_up = notice.created_at + timedelta(seconds=settings.TMS_NOTIFY_RETRY_FOR)
        if outcome.permanent or once or now >= give_up:
            mine.update(state=State.FAILED, finished_at=now, lease_until=None, last_error=error)
            Notice.objects.filter(digest=notice, state=State.HELD).update(
                state=State.FAILED, finished_at=now, last_error=error
            )
            logger.warning(
                "notice %s failed for good after %d attempt(s)", notice.pk, notice.attempts
            )
            return
        wait = timedelta(seconds=settings.TMS_NOTIFY_RETRY_FIRST) * 2 ** (notice.attempts - 1)
        retry_at = min(now + min(wait, LONGEST_WAIT), give_up)
        if mine.update(next_attempt_at=retry_at, lease_until=None, last_error=error):
            deliver_notice.using(run_after=retry_at).enqueue(str(notice.pk))
    logger.info("notice %s not delivered (%s); next try at %s", notice.pk, error, retry_at)


def notices_recover(*, now: datetime, lost: list[uuid.UUID] = ()) -> int:
    """Queue again the notices whose task was lost: those of `lost` (the notices a dead
    worker's tasks were delivering, their lease given up at once) and any notice due for
    FORGOTTEN_AFTER that nobody holds. Returns how many were queued."""
    with transaction.atomic():
        if lost:
            Notice.objects.filter(pk__in=lost, state=State.PENDING).update(
                lease_until=None, next_attempt_at=now
            )
        stale = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        forgotten = Notice.objects.filter(
            stale, state=State.PENDING, next_attempt_at__lt=now - FORGOTTEN_AFTER
        )
        ids = list(lost) + list(forgotten.values_list("pk", flat=True))
        ids = list(dict.fromkeys(ids))
        Notice.objects.filter(pk__in=ids, state=State.PENDING).update(next_attempt_at=now)
        for notice_id in ids:
            deliver_notice.enqueue(str(notice_id))
    return len(ids)
