"""The audit trail's hash chain: what an entry's hash covers, and the lock that keeps the chain
one line.

Each entry has a place in the chain (`seq`, 1, 2, 3, ... with no gap), the hash of the entry
before it (`prev_hash`; the first entry's is GENESIS) and its own `hash`: SHA-256 of the
previous hash and the entry's canonical content (`canonical`). Changing an entry's content,
removing one, or moving one changes a hash that a later entry, or the stored hash itself, no
longer matches (audit.verify finds where).

Writers serialize on the chain's head: `chain_head_locked` takes a lock held to the end of the
transaction (on PostgreSQL a transaction-level advisory lock; on SQLite the write lock that
every transaction takes when it begins, IMMEDIATE mode, tmsdash/settings.py) and only then
reads the head, so that two writers never give the same place to two entries (a fork) and an
entry rolled back leaves no hole (nothing after it was placed while its lock was held).
Held to the commit, the lock is best taken last: a transaction that waited for a row lock while
holding it could deadlock with one holding that row and waiting for the chain, so a change
writes its audit entry after its other writes (jobs.services.ending does; PostgreSQL would
abort one of the two, and a worker ride it out a second later).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from json.encoder import encode_basestring

from django.db import connection

GENESIS = "0" * 64
CANONICAL_JSON = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}
_ENCODE = json.JSONEncoder(**CANONICAL_JSON).encode
_DECODE = json.JSONDecoder().decode
# Any constant: the one key every writer of the chain locks on PostgreSQL.
ADVISORY_KEY = 0x7A0D17C4A1


class CanonicalJSONEncoder(json.JSONEncoder):
    """The details field's encoder: the canonical JSON of canonical_details, so that SQLite
    stores the very text an entry's hash covers and the walk can hash it as stored
    (audit.verify). PostgreSQL's jsonb keeps the meaning only, whatever the text sent."""

    def __init__(self, **options):
        super().__init__(**{**options, **CANONICAL_JSON})


def canonical_details(details: dict | str | None) -> str:
    """Details as canonical JSON: keys sorted, no spaces, UTF-8 (not escaped). Accepts the
    dict, or the JSON text a raw query returns."""
    if isinstance(details, str):
        if details == "{}":
            return details
        details = _DECODE(details)
    return _ENCODE(details or {})


def canonical_time(at: datetime | str) -> str:
    """The moment in UTC to the microsecond, e.g. 2026-12-07T04:30:00.000000Z. Accepts the
    datetime, or the text SQLite stores (UTC, "2026-12-07 04:30:00[.000000]") or a query
    gives already in this form."""
    if isinstance(at, str):
        if len(at) == 26 and at[10] == " ":
            return f"{at[:10]}T{at[11:]}Z"
        if len(at) == 19 and at[10] == " ":
            return f"{at[:10]}T{at[11:]}.000000Z"
        if len(at) == 27 and at[26] == "Z":
            return at
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.utcoffset():
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")[:26] + "Z"


def canonical(
    seq: int,
    created_at: datetime | str,
    actor_username: str,
    event: str,
    job_id: uuid.UUID | str | None,
    ip_address: str | None,
    details: dict | str | None,
) -> str:
    """The content an entry's hash covers, one unambiguous text: strings quoted and escaped
    as in JSON, the details last. The database id and the actor's foreign key are not in it
    (the id is given by the database after the hash is made; the username keeps the actor)."""
    return content(
        seq, created_at, actor_username, event, job_id, ip_address, canonical_details(details)
    )


def content(
    seq: int,
    created_at: datetime | str,
    actor_username: str,
    event: str,
    job_id: uuid.UUID | str | None,
    ip_address: str | None,
    details_text: str,
) -> str:
    """canonical() with the details given as their canonical JSON text already."""
    if isinstance(job_id, str):
        job = job_id.replace("-", "").lower()
    else:
        job = job_id.hex if job_id else ""
    return "|".join(
        [
            str(seq),
            canonical_time(created_at),
            encode_basestring(actor_username or ""),
            encode_basestring(event),
            job,
            str(ip_address) if ip_address else "",
            details_text,
        ]
    )


def entry_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{content}".encode()).hexdigest()


def chain_head_locked() -> tuple[int, str]:
    """Lock the chain to the end of the current transaction and return its head: the last
    entry's place and hash, (0, GENESIS) for an empty chain. Call it in a transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_KEY])
        return chain_head(cursor)


def chain_head(cursor) -> tuple[int, str]:
    """The last entry's place and hash; with no entry left, the last purged entry's (the
    newest ChainAnchor, audit.retention), else (0, GENESIS)."""
    cursor.execute("SELECT seq, hash FROM audit_auditentry ORDER BY seq DESC LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        cursor.execute(
            "SELECT last_seq, last_hash FROM audit_chainanchor ORDER BY last_seq DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)
