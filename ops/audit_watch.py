"""The hourly check of the audit trail's hash chain (audit.verify), run by housekeeping.

Once an hour between all hosts (the due time is taken by compare-and-set on the one ChainCheck
row), it walks the last day's entries, from the first written in that day and its stored link.
An intact chain records the head it reached (seq and hash, logged too). A broken one is told to
the admins (active superusers with an address, by e-mail when it is configured) and logged as
critical, once per break: the break told is kept, and a check that finds the same one again is
silent; a delivery that failed is tried again at the next check.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from audit.models import ChainCheck
from audit.verify import Break, Verdict, seq_since, verify_chain

logger = logging.getLogger(__name__)

CHECK_EVERY = timedelta(hours=1)
WINDOW = timedelta(days=1)


def audit_chain_watch(*, now: datetime) -> Verdict | None:
    """Check the last day's entries if the hourly check is due and this process took it;
    return what it found (None: not due, or another process took it)."""
    state, _ = ChainCheck.objects.get_or_create(pk=1)
    if state.due_at is not None and state.due_at > now:
        return None
    taken = ChainCheck.objects.filter(pk=1, due_at=state.due_at).update(due_at=now + CHECK_EVERY)
    if not taken:
        return None
    verdict = verify_chain(since_seq=seq_since(now - WINDOW) or max(state.head_seq, 1))
    if verdict.ok:
        ChainCheck.objects.filter(pk=1).update(
            checked_at=now,
            head_seq=verdict.head_seq or state.head_seq,
            head_hash=verdict.head_hash if verdict.checked else state.head_hash,
            reported="",
        )
        return verdict
    reported = f"{verdict.broken.seq}:{verdict.broken.problem}"[:300]
    ChainCheck.objects.filter(pk=1).update(checked_at=now)
    if state.reported != reported and _tell_admins(verdict.broken):
        ChainCheck.objects.filter(pk=1).update(reported=reported)
    return verdict


def _tell_admins(broken: Break) -> bool:
    """Log the break as critical and e-mail it to the admins; False if the e-mail failed."""
    logger.critical("the audit trail's hash chain is broken at %s", broken)
    if not settings.TMS_MAIL_ENABLED:
        return True
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    admins = sorted(users.values_list("email", flat=True))
    if not admins:
        return True
    body = (
        f"The hourly check of the audit trail found its hash chain broken at {broken}.\n\n"
        "An entry was changed, removed or moved outside the dashboard. Run "
        "`manage.py verify_audit` to see it, and follow the runbook (docs/runbook.md, "
        '"The audit chain is broken").\n'
    )
    try:
        send_mail(
            "[tmsdash] The audit trail's hash chain is broken",
            body,
            settings.DEFAULT_FROM_EMAIL,
            admins,
        )
    except (smtplib.SMTPException, OSError):
        logger.exception("the e-mail of the audit chain's break could not be sent")
        return False
    return True
