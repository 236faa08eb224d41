"""Import of the legacy dashboard's `jobs.db` and `audit.db`, any schema generation.

The legacy files are opened read-only and streamed: jobs and their customer rows are read as
two cursors in the order the legacy app created the jobs and merged, then written in chunks,
one transaction per chunk, so that a job and its customers are committed together and an
interrupted run resumes where it stopped. Whether a job is already here is decided by its id
(kept, or mapped to a fixed uuid5), and jobs that `dedupe_jobs` removed are recognised by
their `job.deduplicated` audit entries.

This module runs the import; its pieces live beside it: `legacy.reader` opens the files and
streams their rows, `legacy.convert` turns rows into jobs and audit entries, `legacy.bulk_insert`
writes them, `legacy.report` counts what happened. The names callers use are all importable
from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import sqlite3
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from audit.models import AuditEntry
from audit.services import audit_bulk_append, audit_record
from jobs.models import Cluster, Job, JobCustomer
from jobs.services import EndedJob, count_jobs_added
from legacy.bulk_insert import _insert_rows
from legacy.convert import (
    LEGACY_NAMESPACE,
    NO_RESULT,
    _audit_entry,
    _Context,
    _job_values,
    _text,
    legacy_job_uuid,
    normalise_cluster_url,
    parse_legacy_time,
)
from legacy.reader import (
    _AUDIT_COLUMNS,
    LegacyFileError,
    _columns,
    _generation,
    _jobs_with_customers,
    _open_legacy,
    _select,
)
from legacy.report import LegacyImportReport, Progress
from lib.chunks import batched

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "LEGACY_NAMESPACE",
    "NO_RESULT",
    "LegacyFileError",
    "LegacyImportReport",
    "Progress",
    "_insert_rows",
    "legacy_import",
    "legacy_job_uuid",
    "normalise_cluster_url",
    "parse_legacy_time",
]

# Jobs (with their customers) per transaction. Large on purpose: on SQLite each commit of
# rows spread over the created_at and CID indexes costs a WAL checkpoint; a million jobs took
# 144 s of database time in chunks of 1,000, 63 s in chunks of 20,000 and 50 s in chunks of
# 50,000, whose rows stay well under 300 MB of memory.
DEFAULT_CHUNK_SIZE = 50_000
# SQLite's page cache while importing, in KB (the default is 2 MB).
IMPORT_PAGE_CACHE_KB = 256 * 1024
# Ids per lookup query, well under every database's limit on query parameters.
_QUERY_BATCH = 500


def legacy_import(
    *,
    jobs_db: str | Path,
    audit_db: str | Path | None = None,
    tz: dt.tzinfo | None = None,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_chunks: int | None = None,
    progress: Progress | None = None,
) -> LegacyImportReport:
    """Import a legacy jobs file (and audit file) and return what was done.

    Guarantees: the legacy files are only read; both are checked before anything is written
    (LegacyFileError otherwise); each chunk of `chunk_size` jobs (with their customers, and the
    inactive users created for unknown operators) or of audit rows is one transaction; a job
    or audit row already imported, or a job that dedupe_jobs removed, is not written again; no
    secret from the files is stored. `max_chunks` stops the run after that many chunks (the
    report then says it is incomplete), as an interruption would. A dry run writes nothing.
    One `legacy.imported` audit entry with the counts records a run that imported anything.
    """
    jobs_path = Path(jobs_db)
    jobs_con = _open_legacy(jobs_path, table="jobs", what="jobs file")
    audit_con = None
    try:
        if audit_db is not None:
            audit_con = _open_legacy(Path(audit_db), table="audit_log", what="audit file")
        report = LegacyImportReport(dry_run=dry_run)
        ctx = _Context(
            tz=tz or zoneinfo.ZoneInfo(settings.TIME_ZONE),
            dry_run=dry_run,
            clusters=_clusters_by_url(),
            deduplicated=set(
                AuditEntry.objects.filter(
                    event=AuditEntry.Event.JOB_DEDUPLICATED, job_id__isnull=False
                ).values_list("job_id", flat=True)
            ),
        )
        chunks = _Budget(max_chunks)
        with _cycle_collector_paused(), _page_cache_enlarged():
            _import_jobs(jobs_con, ctx, report, chunk_size, chunks, progress)
            if audit_con is not None and report.complete:
                _import_audit(audit_con, ctx, report, chunk_size, chunks, progress)
    finally:
        jobs_con.close()
        if audit_con is not None:
            audit_con.close()
    if report.imported_anything and not dry_run:
        audit_record(
            event=AuditEntry.Event.LEGACY_IMPORTED,
            details={"jobs_file": str(jobs_path), **report.as_details()},
        )
    return report


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the duration, then on again if it was.

    An import holds a chunk of tens of thousands of rows, dicts and tuples, none of them in
    a reference cycle, and the collector kept traversing all of them: a third of the time of
    a large import. Reference counting still frees everything as usual meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _page_cache_enlarged() -> Iterator[None]:
    """On SQLite, this connection's page cache at IMPORT_PAGE_CACHE_KB for the duration.

    SQLite's default cache (2 MB) holds a sliver of the indexes a chunk writes to: a page
    is read, changed, evicted and written again many times in one transaction (100,000 jobs
    made 1.9 million writes and 2.1 million reads of pages).
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        (was,) = cursor.execute("PRAGMA cache_size").fetchone()
        cursor.execute(f"PRAGMA cache_size = -{IMPORT_PAGE_CACHE_KB}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(was)}")


class _Budget:
    """How many more chunks the run may write (all of them unless `max_chunks` is given)."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _clusters_by_url() -> dict[str, int]:
    clusters: dict[str, int] = {}
    for pk, base_url in Cluster.objects.order_by("pk").values_list("pk", "base_url"):
        clusters.setdefault(normalise_cluster_url(base_url), pk)
    return clusters


# Jobs


def _import_jobs(
    con: sqlite3.Connection,
    ctx: _Context,
    report: LegacyImportReport,
    chunk_size: int,
    chunks: _Budget,
    progress: Progress | None,
) -> None:
    columns = _columns(con, "jobs")
    missing = {"job_id", "user_id"} - columns
    if missing:
        raise LegacyFileError(
            f"The jobs table has no {', '.join(sorted(missing))} column: "
            "it is not a legacy dashboard jobs table."
        )
    report.generation = _generation(con, columns)
    total = con.execute("SELECT count(*) FROM jobs").fetchone()[0] if progress else 0
    rows = _jobs_with_customers(con, columns, report)
    for chunk in batched(rows, chunk_size):
        if not chunks.take():
            report.complete = False
            return
        _import_job_chunk(chunk, ctx, report)
        if progress:
            progress("jobs", report.jobs_read, total)


def _import_job_chunk(
    chunk: list[tuple[tuple, list]], ctx: _Context, report: LegacyImportReport
) -> None:
    # Ids first: a job already here (a second run, a resumed one) is not converted at all.
    ids = [legacy_job_uuid(legacy_id) if (legacy_id := _text(row[0])) else None for row, _ in chunk]
    present = set()
    for batch in batched((pk for pk in ids if pk is not None), _QUERY_BATCH):
        present.update(Job.objects.filter(pk__in=batch).values_list("pk", flat=True))
    fresh = []
    for (row, raw_cids), job_id in zip(chunk, ids, strict=True):
        report.jobs_read += 1
        if job_id in ctx.deduplicated:
            report.jobs_skipped["removed earlier by dedupe_jobs"] += 1
            continue
        if job_id in present:
            report.jobs_present += 1
            continue
        values, cids, reason = _job_values(row, raw_cids, job_id, ctx)
        if reason:
            report.jobs_skipped[reason] += 1
            continue
        # Two legacy spellings of one UUID in a chunk: the second is already present.
        present.add(job_id)
        fresh.append((values, cids))
        report.cids_dropped += len(raw_cids) - len(cids)
    usernames = {values["username"] for values, _ in fresh}
    if ctx.dry_run:
        _resolve_users(usernames, ctx, report, create=True)
    elif fresh:
        # Users first, in the same transaction: a chunk is committed whole or not at all.
        with transaction.atomic():
            _resolve_users(usernames, ctx, report, create=True)
            for values, _ in fresh:
                values["user_id"] = ctx.users[values.pop("username")]
            # Every values dict is built by _job_values with the same keys in the same order.
            _insert_rows(Job, list(fresh[0][0]), [tuple(values.values()) for values, _ in fresh])
            _insert_rows(
                JobCustomer,
                ["job_id", "cid"],
                [(values["id"], cid) for values, cids in fresh for cid in cids],
            )
            count_jobs_added(
                EndedJob(**{field: values[field] for field in EndedJob._fields})
                for values, _ in fresh
            )
    report.jobs_imported += len(fresh)
    report.customers_imported += sum(len(cids) for _, cids in fresh)


def _resolve_users(
    names: set[str], ctx: _Context, report: LegacyImportReport, *, create: bool
) -> None:
    """Fill ctx.users for `names`; with `create`, an unknown name gets an inactive account."""
    missing = names - ctx.users.keys()
    if not missing:
        return
    User = get_user_model()
    found: dict[str, int] = {}
    for batch in batched(sorted(missing), _QUERY_BATCH):
        found.update(
            User.objects.filter(**{f"{User.USERNAME_FIELD}__in": batch}).values_list(
                User.USERNAME_FIELD, "pk"
            )
        )
    ctx.users.update(found)
    for name in sorted(missing - found.keys()):
        ctx.users[name] = None
        if not create:
            continue
        report.users_created.append(name)
        if not ctx.dry_run:
            # Built by hand, not create_user(): that would normalise the name, and the next
            # run would then not find the account under the legacy spelling.
            user = User(**{User.USERNAME_FIELD: name}, is_active=False)
            user.set_unusable_password()
            user.save()
            ctx.users[name] = user.pk


# Audit trail


def _import_audit(
    con: sqlite3.Connection,
    ctx: _Context,
    report: LegacyImportReport,
    chunk_size: int,
    chunks: _Budget,
    progress: Progress | None,
) -> None:
    columns = _columns(con, "audit_log")
    id_column = "id" if "id" in columns else "rowid"
    select = _select("audit_log", (id_column, *_AUDIT_COLUMNS), columns | {"rowid"})
    total = con.execute("SELECT count(*) FROM audit_log").fetchone()[0] if progress else 0
    present = _imported_audit_ids()
    for chunk in batched(con.execute(f"{select} ORDER BY {id_column}"), chunk_size):
        if not chunks.take():
            report.complete = False
            return
        entries = []
        for row in chunk:
            report.audit_read += 1
            if row[0] in present:
                report.audit_present += 1
                continue
            entry, reason = _audit_entry(row, ctx)
            if reason:
                report.audit_skipped[reason] += 1
            else:
                entries.append(entry)
        _resolve_users({entry.actor_username for entry in entries}, ctx, report, create=False)
        for entry in entries:
            entry.actor_id = ctx.users[entry.actor_username]
        if entries and not ctx.dry_run:
            with transaction.atomic():
                audit_bulk_append(entries)
        report.audit_imported += len(entries)
        if progress:
            progress("audit entries", report.audit_read, total)


def _imported_audit_ids() -> set:
    """The legacy audit ids already imported: imported entries carry `details["legacy_id"]`."""
    return set(
        AuditEntry.objects.filter(
            event__startswith="legacy.", details__has_key="legacy_id"
        ).values_list("details__legacy_id", flat=True)
    )
