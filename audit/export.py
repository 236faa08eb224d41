"""The audit trail as JSON Lines, each entry with its place, link and hash, so that a copy kept
elsewhere (or a purge's archive, audit.retention, the same lines gzip-compressed) can be
checked against the chain later (audit.verify walks its rows as it walks the
database's)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
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
    for row in stored_rows(since_seq):
        out.write(export_line(row))
        written, last = written + 1, row[1]
    return written, last


def export_line(row: tuple) -> str:
    """One entry (the columns of audit.verify.SELECT_FROM) as its line of an export."""
    pk, seq, at, username, event, job_id, ip, details, prev_hash, hash_ = row
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
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_open(path: Path) -> IO[str]:
    """An export to read: plain JSON Lines as export_audit writes, or gzip-compressed as
    purge_audit's archives are (told by the gzip magic number)."""
    with path.open("rb") as file:
        magic = file.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def exported_rows(lines: IO[str]) -> Iterator[tuple]:
    """The rows of an export, in its order, as audit.verify.verify_rows takes them."""
    for number, text in enumerate(lines, start=1):
        try:
            entry = json.loads(text)
            yield tuple(entry[field] for field in FIELDS)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"line {number} is not an exported audit entry") from None
