"""Walking the audit trail's hash chain (audit.chain) and finding the first entry that was
changed, removed or moved.

The walk reads the entries in chain order, a window of CHUNK places of `seq` at a time (one
short query each, whatever the table's size), and checks each entry: its place follows the previous
entry's (a missing place is a removed entry), its hash is that of its stored link and content
(else its content, or its place, was changed), and its link is the previous entry's hash (else
the entry before it was changed and its hash made again, or entries were swapped). The same
walk checks an export (audit.export): rows are rows.

The content is first hashed with the details as stored: SQLite stores them as the canonical
text the hash covers (audit.chain.CanonicalJSONEncoder). A match proves the entry intact (the
stored text is then the text hashed when it was written, whose canonical form is itself); only
otherwise are the details parsed and written canonically, as before, which PostgreSQL's jsonb
text and entries stored before the encoder always need. A long chain can be walked in parts at
once (audit.verify_parts), each part checked here and their seams there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection
from django.db.models import Min

from audit.anchor import chain_start
from audit.chain import GENESIS, canonical, content, entry_hash
from audit.models import AuditEntry

logger = logging.getLogger(__name__)

CHUNK = 50_000
# The columns as the walk reads them, the moment as text (the hash covers it as text): SQLite
# stores it so, PostgreSQL writes it in UTC, so that no row is parsed into a datetime. The job
# id as text too (PostgreSQL's is the UUID's lowercase text, the hash covers its hex digits).
SELECT_FROM = (
    "SELECT id, seq, {moment}, actor_username, event, {job}, ip_address, details, "
    "prev_hash, hash FROM audit_auditentry WHERE seq > %s AND seq <= %s ORDER BY seq"
)
NEXT_PLACE = "SELECT MIN(seq) FROM audit_auditentry WHERE seq > %s AND seq <= %s"
COLUMNS = {
    "sqlite": {"moment": "created_at || ''", "job": "job_id"},
    "postgresql": {
        "moment": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        "job": "job_id::text",
    },
}
# Above any place: the walk's upper bound when it has none.
LAST_SEQ = 2**63 - 1
CONTENT_CHANGED = "its content does not match its hash (changed, or moved in the chain)"


def place_problem(expected_seq: int, seq: int) -> str:
    if seq > expected_seq:
        return (
            f"entries {expected_seq} to {seq - 1} of the chain are missing before it "
            "(removed, or renumbered)"
        )
    return f"its place repeats or goes back (expected seq {expected_seq})"


def link_problem(seq: int) -> str:
    return (
        f"its link does not match the hash of entry seq {seq - 1} (that entry was "
        "changed and its hash made again, or entries were swapped or replaced)"
    )


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
    be at `start` (seq 1 linked to GENESIS, or after a purge's anchor: audit.anchor's
    chain_start); otherwise the first row's stored link and place are taken as given."""
    return walk(rows, start if from_start else None)


def walk(rows: Iterable[tuple], start: tuple[int, str] | None) -> Verdict:
    """verify_rows, the first row expected at `start` (its place and link), or taken as
    given when None."""
    expected_seq, expected_prev = start or (None, None)
    checked, first_seq, head_seq, head_hash = 0, 0, 0, GENESIS
    for row in rows:
        seq, prev_hash, hash_ = row[1], row[8], row[9]
        if expected_seq is None:
            expected_seq, expected_prev = seq, prev_hash
        first_seq = first_seq or seq
        problem = None
        if seq != expected_seq:
            problem = place_problem(expected_seq, seq)
        elif not content_matches(row):
            problem = CONTENT_CHANGED
        elif prev_hash != expected_prev:
            problem = link_problem(seq)
        if problem:
            return Verdict(checked, first_seq, head_seq, head_hash, Break(seq, row[0], problem))
        checked += 1
        expected_seq, expected_prev = seq + 1, hash_
        head_seq, head_hash = seq, hash_
    return Verdict(checked, first_seq, head_seq, head_hash)


def content_matches(row: tuple) -> bool:
    """Whether the row's hash is that of its link and content. Tried in turn, cheapest first:
    the details as stored, when they may be canonical text already (no `": `, which canonical
    JSON has only inside a string); the details parsed and written again by orjson, keys
    sorted (PostgreSQL's jsonb text); then by the json module, the canonical form itself.

    Only the last can say no. A match of either shortcut proves the entry intact all the
    same: the text hashed is then, but for a SHA-256 collision, the text hashed when the entry
    was written, which is the canonical form of the details then; and a text that reads back
    as JSON stands for one value only, so the details now are the details then. Where orjson
    writes a value otherwise than the json module (a float's exponent, an integer beyond 64
    bits), its text just does not match and the entry takes the long way."""
    _, seq, created_at, username, event, job_id, ip, details, prev_hash, hash_ = row
    if isinstance(details, str):
        if '": ' not in details and hash_ == entry_hash(
            prev_hash, content(seq, created_at, username, event, job_id, ip, details)
        ):
            return True
        try:
            rewritten = orjson.dumps(orjson.loads(details), option=orjson.OPT_SORT_KEYS)
        except (TypeError, ValueError):
            rewritten = None
        if rewritten is not None and hash_ == entry_hash(
            prev_hash, content(seq, created_at, username, event, job_id, ip, rewritten.decode())
        ):
            return True
    return hash_ == entry_hash(
        prev_hash, canonical(seq, created_at, username, event, job_id, ip, details)
    )


def verify_chain(*, since_seq: int | None = None) -> Verdict:
    """Walk the chain in the database, from its first entry or from `since_seq` (starting
    from that entry's stored link). Logs the head it reached."""
    from_start = since_seq is None or since_seq <= 1
    start = chain_start() if from_start else (1, GENESIS)
    verdict = verify_rows(stored_rows(since_seq or 1), from_start=from_start, start=start)
    return finish(verdict, from_start)


def finish(verdict: Verdict, from_start: bool) -> Verdict:
    """A walk's verdict once the entries outside the chain were looked for; logged."""
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


def stored_rows(since_seq: int = 1, until_seq: int = LAST_SEQ) -> Iterator[tuple]:
    """The entries from seq `since_seq` to `until_seq`, in chain order, read a window of
    CHUNK places at a time (a window has as many rows at most; an empty one jumps to the
    next place there is). A narrow range keeps PostgreSQL on the seq index whatever its
    statistics: an open range with a LIMIT made it sort the rest of the table for each chunk
    when the table had not been analyzed since it grew."""
    after = since_seq - 1
    select = SELECT_FROM.format(**COLUMNS[connection.vendor])
    with connection.cursor() as cursor:
        while after < until_seq:
            window = min(until_seq, after + CHUNK)
            cursor.execute(select, [after, window])
            rows = cursor.fetchall()
            yield from rows
            after = window
            if not rows:
                cursor.execute(NEXT_PLACE, [after, until_seq])
                (place,) = cursor.fetchone()
                if place is None:
                    return
                after = place - 1


def seq_since(at: datetime) -> int | None:
    """The first place in the chain of an entry written at or after `at`; None if none was."""
    return AuditEntry.objects.filter(created_at__gte=at).aggregate(first=Min("seq"))["first"]
