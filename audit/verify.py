"""Walking the audit trail's hash chain (audit.chain) and finding the first entry that was
changed, removed or moved.

The walk reads the entries in chain order, CHUNK at a time by keyset on `seq` (one short query
each, whatever the table's size), and checks each entry: its place follows the previous
entry's (a missing place is a removed entry), its hash is that of its stored link and content
(else its content, or its place, was changed), and its link is the previous entry's hash (else
the entry before it was changed and its hash made again, or entries were swapped). The same
walk checks an export (audit.export): rows are rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Min

from audit.anchor import chain_start
from audit.chain import GENESIS, canonical, entry_hash
from audit.models import AuditEntry

logger = logging.getLogger(__name__)

CHUNK = 50_000
# The columns as the walk reads them, the moment as text (the hash covers it as text): SQLite
# stores it so, PostgreSQL writes it in UTC, so that no row is parsed into a datetime.
SELECT_FROM = (
    "SELECT id, seq, {moment}, actor_username, event, job_id, ip_address, details, "
    "prev_hash, hash FROM audit_auditentry WHERE seq > %s ORDER BY seq LIMIT %s"
)
MOMENT = {
    "sqlite": "created_at || ''",
    "postgresql": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
}


@dataclass(frozen=True)
class Break:
    seq: int
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        return f"entry id {self.entry_id} (seq {self.seq}): {self.problem}"


@dataclass(frozen=True)
class Verdict:
    checked: int
    first_seq: int
    head_seq: int
    head_hash: str
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_rows(
    rows: Iterable[tuple], *, from_start: bool = True, start: tuple[int, str] = (1, GENESIS)
) -> Verdict:
    """Check rows (the columns of SELECT_FROM, in seq order). From the start, the first must
    be at `start` (seq 1 linked to GENESIS, or after a purge's anchor); otherwise the first
    row's stored link and place are taken as given."""
    expected_seq, expected_prev = start if from_start else (None, None)
    checked, first_seq, head_seq, head_hash = 0, 0, 0, GENESIS
    for pk, seq, created_at, username, event, job_id, ip, details, prev_hash, hash_ in rows:
        if expected_seq is None:
            expected_seq, expected_prev = seq, prev_hash
        first_seq = first_seq or seq
        problem = None
        if seq != expected_seq:
            problem = (
                f"entries {expected_seq} to {seq - 1} of the chain are missing before it "
                "(removed, or renumbered)"
                if seq > expected_seq
                else f"its place repeats or goes back (expected seq {expected_seq})"
            )
        elif hash_ != entry_hash(
            prev_hash, canonical(seq, created_at, username, event, job_id, ip, details)
        ):
            problem = "its content does not match its hash (changed, or moved in the chain)"
        elif prev_hash != expected_prev:
            problem = (
                f"its link does not match the hash of entry seq {seq - 1} (that entry was "
                "changed and its hash made again, or entries were swapped or replaced)"
            )
        if problem:
            return Verdict(checked, first_seq, head_seq, head_hash, Break(seq, pk, problem))
        checked += 1
        expected_seq, expected_prev = seq + 1, hash_
        head_seq, head_hash = seq, hash_
    return Verdict(checked, first_seq, head_seq, head_hash)


def verify_chain(*, since_seq: int | None = None) -> Verdict:
    """Walk the chain in the database, from its first entry or from `since_seq` (starting
    from that entry's stored link). Logs the head it reached."""
    from_start = since_seq is None or since_seq <= 1
    start = chain_start() if from_start else (1, GENESIS)
    verdict = verify_rows(stored_rows(since_seq or 1), from_start=from_start, start=start)
    if verdict.ok and from_start:
        verdict = _outside(verdict)
    if verdict.ok:
        logger.info(
            "audit chain verified: %s entries to head seq %s hash %s",
            verdict.checked,
            verdict.head_seq,
            verdict.head_hash,
        )
    else:
        logger.error("audit chain broken at %s", verdict.broken)
    return verdict


def _outside(verdict: Verdict) -> Verdict:
    """The walk reads places 1 and on: an entry whose place was set below 1 is outside it."""
    outside = AuditEntry.objects.filter(seq__lt=1).order_by("seq").values_list("pk", "seq")
    for pk, seq in outside[:1]:
        problem = "its place is before the chain's first (moved out of the chain)"
        return Verdict(verdict.checked, verdict.first_seq, 0, GENESIS, Break(seq, pk, problem))
    return verdict


def stored_rows(since_seq: int = 1) -> Iterator[tuple]:
    """The entries from seq `since_seq` on, in chain order, read CHUNK at a time."""
    after = since_seq - 1
    select = SELECT_FROM.format(moment=MOMENT[connection.vendor])
    with connection.cursor() as cursor:
        while True:
            cursor.execute(select, [after, CHUNK])
            rows = cursor.fetchall()
            yield from rows
            if len(rows) < CHUNK:
                return
            after = rows[-1][1]


def seq_since(at: datetime) -> int | None:
    """The first place in the chain of an entry written at or after `at`; None if none was."""
    return AuditEntry.objects.filter(created_at__gte=at).aggregate(first=Min("seq"))["first"]
