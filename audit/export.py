"""The audit trail as JSON Lines, each entry with its place, link and hash, so that a copy kept
elsewhere can be checked against the chain later (audit.verify walks its rows as it walks the
database's)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from audit.chain import canonical_details, canonical_time
from audit.verify import stored_rows

FIELDS = (
    "id",
    "seq",
    "created_at",
    "actor_username",
    "event",
    "job_id",
    "ip_address",
    "details",
    "prev_hash",
    "hash",
)


def export_lines(out: IO[str], *, since_seq: int = 1) -> tuple[int, int]:
    """Write the entries from `since_seq` on, one JSON object a line; return how many were
    written and the last one's seq (0 if none)."""
    written, last = 0, 0
    for pk, seq, at, username, event, job_id, ip, details, prev_hash, hash_ in stored_rows(
        since_seq
    ):
        line = {
            "id": pk,
            "seq": seq,
            "created_at": canonical_time(at),
            "actor_username": username,
            "event": event,
            "job_id": str(job_id) if job_id else None,
            "ip_address": str(ip) if ip else None,
            "details": json.loads(canonical_details(details)),
            "prev_hash": prev_hash,
            "hash": hash_,
        }
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        written, last = written + 1, seq
    return written, last


def exported_rows(lines: IO[str]) -> Iterator[tuple]:
    """The rows of an export, in its order, as audit.verify.verify_rows takes them."""
    for number, text in enumerate(lines, start=1):
        try:
            entry = json.loads(text)
            yield tuple(entry[field] for field in FIELDS)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"line {number} is not an exported audit entry") from None
