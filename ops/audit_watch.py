"""The hourly check of the audit trail's hash chain (audit.verify), run by housekeeping.

Once an hour between all hosts (the due time is taken by compare-and-set on the one ChainCheck
row), it walks the last day's entries, from the first written in that day and its stored link.
An intact chain records the head it reached (seq and hash, logged too). A broken one is logged
as critical and told, through the outbox, to the admins (active superusers with an address, by
e-mail when it is configured) and to the webhook endpoints that asked for `audit.chain_broken`,
once per break: the break told is kept, and a check that finds the same one again is silent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction

from audit.models import ChainCheck
from audit.verify import Verdict, seq_since, verify_chain
from notifications.audit_events import notices_record_chain_break

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
    if state.reported != reported:
        logger.critical("the audit trail's hash chain is broken at %s", verdict.broken)
        # Its notices (e-mail to the admins, and the webhook endpoints that asked for
        # audit.chain_broken) and the mark that it was told, at once; the outbox delivers them.
        with transaction.atomic():
            notices_record_chain_break(
                seq=verdict.broken.seq,
                entry_id=verdict.broken.entry_id,
                problem=verdict.broken.problem,
                at=now,
            )
            ChainCheck.objects.filter(pk=1).update(reported=reported)
    return verdict
