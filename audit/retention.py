"""Purging old audit entries into a verified archive, the chain left verifiable.

The rule: a beginning of the chain goes, oldest first by seq, up to the first entry written at
or after the cutoff (only a beginning can go: an entry imported later with an older time stays
until everything before it goes). The newest entries, and the purge's own entry, never go.

Three steps, as the jobs' purge (jobs.services.retention): write the archive (the lines of
an export, audit.export, gzip-compressed: `verify_audit --file` checks it alone), read it back
and check it (the chain inside it linked from the chain's current start, the count, the first
and last seq, the file's SHA-256 as written), and only then delete, one short transaction per
BATCH entries, oldest first. Each batch takes the chain's lock (audit.chain: a writer waits
for one batch at most), checks its entries are still the archived ones, inserts the permit the
DELETE guard lets through (PurgePermit, migration 0019), deletes, removes the permit and moves
the purge's anchor (ChainAnchor) to its last entry, all before its commit: a purge stopped
half-way leaves a chain that verifies from its anchor. The purge is one `audit.purged` entry,
its last write: the counts, the first and last purged seq, the archive's name and SHA-256.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.db import connection, transaction
from django.db.models import Max, Min

from audit.anchor import chain_start
from audit.chain import chain_head_locked
from audit.export import export_line, exported_rows
from audit.models import AuditEntry, ChainAnchor
from audit.services import audit_record
from audit.verify import stored_rows, verify_rows

BATCH = 1000

Progress = Callable[[str, int], None]


class AuditArchiveError(Exception):
    """The archive cannot be written or read, or fails its check: nothing more is deleted."""


@dataclass
class AuditPurgeReport:
    cutoff: dt.datetime
    dry_run: bool
    archive: Path | None = None
    archive_sha256: str = ""
    archived: int = 0
    purged: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str = ""
    # The last entry deleted: where the chain now starts (its anchor).
    anchor_seq: int = 0
    anchor_hash: str = ""
    # Stopped at its limit: older entries are left for the next run.
    more: bool = False

    def __str__(self) -> str:
        cutoff = self.cutoff.isoformat(timespec="seconds")
        span = f"seq {self.first_seq} to {self.last_seq}" if self.archived else "none"
        if self.dry_run:
            return f"would purge {self.archived} audit entries ({span}) written before {cutoff}"
        return (
            f"purged {self.purged} of {self.archived} archived audit entries ({span}) written "
            f"before {cutoff}" + (f" into {self.archive}" if self.archived else "")
        )


class _Digesting:
    """The archive file as gzip writes it, hashed on the way: the SHA-256 of what was
    written, for the read-back to compare with what is on disk."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def purge_range(cutoff: dt.datetime, limit: int | None = None) -> tuple[int, int, bool]:
    """The places that go, first and last (last < first: none), and whether the limit cut
    the range short."""
    first = chain_start()[0]
    newer = AuditEntry.objects.filter(created_at__gte=cutoff).aggregate(seq=Min("seq"))["seq"]
    if newer is None:
        newer = (AuditEntry.objects.aggregate(seq=Max("seq"))["seq"] or first - 1) + 1
    last = newer - 1
    if limit is not None and last - first + 1 > limit:
        return first, first + limit - 1, True
    return first, last, False


def audit_purge(
    *,
    cutoff: dt.datetime,
    archive: Path | None,
    dry_run: bool = False,
    actor_username: str = "",
    progress: Progress | None = None,
    limit: int | None = None,
) -> AuditPurgeReport:
    """Archive, check and delete the audit entries written before `cutoff` (see the module
    docstring).

    `archive` must not exist yet. With `dry_run` nothing is written or deleted. `progress(stage,
    count)` is called as the work goes: "archived" (entries written so far), "written" (the
    archive is complete and closed, before its check), "checked" and "purged" (entries
    deleted so far). A failed write or check raises AuditArchiveError and deletes nothing.
    With a `limit`, at most that many (the oldest) go and the report says `more`."""
    report = AuditPurgeReport(cutoff=cutoff, dry_run=dry_run, archive=archive)
    tell = progress or (lambda stage, count: None)
    start = chain_start()
    first, last, report.more = purge_range(cutoff, limit)
    if last < first:
        return report
    report.first_seq, report.last_seq = first, last
    if dry_run:
        report.archived = AuditEntry.objects.filter(seq__gte=first, seq__lte=last).count()
        return report
    if archive is None:
        raise AuditArchiveError("an archive path is needed")
    report.archived, written_sha256 = _write(archive, first, last, tell)
    tell("written", report.archived)
    report.last_hash = _check(archive, report, start, written_sha256)
    report.archive_sha256 = written_sha256
    tell("checked", report.archived)
    try:
        anchor = None
        with gzip.open(archive, "rt", encoding="utf-8") as lines:
            batch = []
            for row in exported_rows(lines):
                batch.append(row)
                if len(batch) == BATCH:
                    anchor = _delete_batch(batch, report, anchor)
                    tell("purged", report.purged)
                    batch = []
            if batch:
                anchor = _delete_batch(batch, report, anchor)
                tell("purged", report.purged)
    finally:
        if report.purged:
            _audit(report, actor_username)
    return report


def _write(archive: Path, first: int, last: int, tell: Progress) -> tuple[int, str]:
    """Write the entries `first` to `last` to a new archive; return their count and the
    SHA-256 of the file's bytes as written."""
    try:
        raw = archive.open("xb")
    except FileExistsError:
        raise AuditArchiveError(
            f"{archive} exists already: an archive is never overwritten"
        ) from None
    except OSError as exc:
        raise AuditArchiveError(f"{archive}: cannot be written ({exc})") from None
    digesting = _Digesting(raw)
    file = gzip.GzipFile(fileobj=digesting, mode="wb")
    count = 0
    try:
        for row in stored_rows(first):
            if row[1] > last:
                break
            file.write(export_line(row).encode())
            count += 1
            if count % BATCH == 0:
                tell("archived", count)
        file.close()
        raw.flush()
        os.fsync(raw.fileno())
        raw.close()
    except BaseException as exc:
        # On a full disk, closing fails too; the half-written archive is removed.
        with contextlib.suppress(OSError):
            file.close()
        with contextlib.suppress(OSError):
            raw.close()
        archive.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AuditArchiveError(f"{archive}: cannot be written ({exc})") from None
        raise
    if count % BATCH:
        tell("archived", count)
    return count, digesting.sha256.hexdigest()


def _check(
    archive: Path, report: AuditPurgeReport, start: tuple[int, str], written_sha256: str
) -> str:
    """Read the archive back whole: its chain must link from `start` (the chain's start
    before this purge) with no gap, hold the entries counted from first to last seq, and the
    file must be the bytes written. Return the last entry's hash."""
    try:
        with gzip.open(archive, "rt", encoding="utf-8") as lines:
            verdict = verify_rows(exported_rows(lines), start=start)
    except (OSError, EOFError, ValueError) as exc:
        raise AuditArchiveError(f"{archive}: unreadable ({exc})") from None
    if not verdict.ok:
        raise AuditArchiveError(f"{archive}: its chain is broken at {verdict.broken}")
    read = (verdict.checked, verdict.first_seq, verdict.head_seq)
    if read != (report.archived, report.first_seq, report.last_seq):
        raise AuditArchiveError(
            f"{archive}: read back {read[0]} entries, seq {read[1]} to {read[2]}; written "
            f"{report.archived}, seq {report.first_seq} to {report.last_seq}"
        )
    digest = hashlib.sha256()
    with archive.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != written_sha256:
        raise AuditArchiveError(f"{archive}: its SHA-256 is not that of the bytes written")
    return verdict.head_hash


def _delete_batch(rows: list[tuple], report: AuditPurgeReport, anchor: int | None) -> int | None:
    """Delete a batch of archived entries in one short transaction, if they are still the
    archived ones, and move the anchor to its last; return the anchor's id."""
    first, last = rows[0][1], rows[-1][1]
    with transaction.atomic():
        # The writers' lock: no entry is placed while its predecessors are being removed (with
        # the whole chain purged, the next one is placed after the anchor, audit.chain).
        chain_head_locked()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT seq, hash FROM audit_auditentry WHERE seq >= %s AND seq <= %s ORDER BY seq",
                [first, last],
            )
            if [tuple(row) for row in cursor.fetchall()] != [(row[1], row[9]) for row in rows]:
                raise AuditArchiveError(
                    f"entries seq {first} to {last} are not the archived ones; "
                    f"{report.purged} purged before them"
                )
            cursor.execute("INSERT INTO audit_purgepermit DEFAULT VALUES")
            cursor.execute(
                "DELETE FROM audit_auditentry WHERE seq >= %s AND seq <= %s", [first, last]
            )
            cursor.execute("DELETE FROM audit_purgepermit")
        if anchor is None:
            anchor = ChainAnchor.objects.create(
                first_seq=report.first_seq,
                last_seq=last,
                last_hash=rows[-1][9],
                archive=str(report.archive),
                archive_sha256=report.archive_sha256,
            ).pk
        else:
            ChainAnchor.objects.filter(pk=anchor).update(last_seq=last, last_hash=rows[-1][9])
    report.purged += len(rows)
    report.anchor_seq, report.anchor_hash = last, rows[-1][9]
    return anchor


def _audit(report: AuditPurgeReport, actor_username: str) -> None:
    audit_record(
        event=AuditEntry.Event.AUDIT_PURGED,
        actor_username=actor_username,
        details={
            "cutoff": report.cutoff.isoformat(),
            "archive": str(report.archive),
            "archive_sha256": report.archive_sha256,
            "archived": report.archived,
            "purged": report.purged,
            "first_seq": report.first_seq,
            "last_seq": report.anchor_seq,
            "last_hash": report.anchor_hash,
        },
    )
