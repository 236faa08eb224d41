"""Import of the legacy dashboard's `jobs.db` and `audit.db`, any schema generation.

The legacy files are opened read-only and streamed: jobs and their customer rows are read as
two cursors ordered by job id and merged, then written in chunks, one transaction per chunk, so
that a job and its customers are committed together and an interrupted run resumes where it
stopped. Whether a job is already here is decided by its id (kept, or mapped to a fixed uuid5),
and jobs that `dedupe_jobs` removed are recognised by their `job.deduplicated` audit entries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import ipaddress
import json
import re
import sqlite3
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from audit.models import AuditEntry
from audit.services import audit_bulk_append, audit_record
from jobs.models import Cluster, Job, JobCustomer
from legacy.redact import redact, redact_text
from legacy.schema import AUDIT_COLUMNS, JOB_COLUMNS, V3_JOB_COLUMNS
from lib.chunks import batched

# Never change it: a legacy id that is not a UUID becomes uuid5(LEGACY_NAMESPACE, id), and every
# later run must map it to the same job.
LEGACY_NAMESPACE = uuid.UUID("f81223ab-462f-4259-aee3-e593a7ce7fc4")

NO_RESULT = "No result was recorded by the legacy dashboard"

_UNKNOWN_ACTION = 0
# Jobs (with their customers) per transaction. Large on purpose: on SQLite each commit of
# rows spread over the created_at and CID indexes costs a WAL checkpoint; a million jobs took
# 144 s of database time in chunks of 1,000, 63 s in chunks of 20,000 and 50 s in chunks of
# 50,000, whose rows stay well under 300 MB of memory.
DEFAULT_CHUNK_SIZE = 50_000
# Ids per lookup query, well under every database's limit on query parameters.
_QUERY_BATCH = 500
# The largest value a PositiveSmallIntegerField holds on every database.
_MAX_ACTION_CODE = 32767

_JOB_COLUMNS = tuple(name for name, _ in (*JOB_COLUMNS, *V3_JOB_COLUMNS))
_V3_COLUMNS = {name for name, _ in V3_JOB_COLUMNS}
_AUDIT_COLUMNS = tuple(name for name, _ in AUDIT_COLUMNS)

# Field types whose Python values the database drivers take as they are; the others (UUID,
# datetime, JSON) go through the field's own conversion for the database in use.
_PLAIN_TYPES = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}

Progress = Callable[[str, int, int], None]


class LegacyFileError(Exception):
    """A legacy file that cannot be imported: missing, not SQLite, or without its table."""


@dataclass
class LegacyImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    generation: str = ""
    complete: bool = True
    jobs_read: int = 0
    jobs_imported: int = 0
    jobs_present: int = 0
    jobs_skipped: Counter[str] = field(default_factory=Counter)
    customers_imported: int = 0
    cids_dropped: int = 0
    orphan_customer_rows: int = 0
    users_created: list[str] = field(default_factory=list)
    audit_read: int = 0
    audit_imported: int = 0
    audit_present: int = 0
    audit_skipped: Counter[str] = field(default_factory=Counter)

    @property
    def imported_anything(self) -> bool:
        return bool(self.jobs_imported or self.audit_imported)

    def as_details(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "complete": self.complete,
            "jobs_read": self.jobs_read,
            "jobs_imported": self.jobs_imported,
            "jobs_already_present": self.jobs_present,
            "jobs_skipped": dict(self.jobs_skipped),
            "customers_imported": self.customers_imported,
            "cids_dropped": self.cids_dropped,
            "orphan_customer_rows": self.orphan_customer_rows,
            "users_created": self.users_created,
            "audit_read": self.audit_read,
            "audit_imported": self.audit_imported,
            "audit_already_present": self.audit_present,
            "audit_skipped": dict(self.audit_skipped),
        }


@dataclass
class _Context:
    tz: dt.tzinfo
    dry_run: bool
    clusters: dict[str, int]
    deduplicated: set[uuid.UUID]
    users: dict[str, int | None] = field(default_factory=dict)


def legacy_job_uuid(legacy_id: str) -> uuid.UUID:
    """The id an imported job gets: its legacy id when that is a UUID, else a fixed uuid5."""
    try:
        return uuid.UUID(legacy_id)
    except ValueError:
        return uuid.uuid5(LEGACY_NAMESPACE, legacy_id)


def parse_legacy_time(raw: object, tz: dt.tzinfo) -> dt.datetime | None:
    """An aware UTC datetime for a time the legacy app wrote, or None if it is unreadable.

    `YYYY-MM-DD HH:MM:SS` is SQLite's CURRENT_TIMESTAMP, in UTC. Anything else is Python's
    isoformat(): with an offset it says its zone, without one it is the server's local time `tz`.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            is_sqlite_text = len(text) == 19 and text[10] == " "
            value = value.replace(tzinfo=dt.UTC if is_sqlite_text else tz)
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def normalise_cluster_url(url: str) -> str:
    return url.strip().rstrip("/")


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
        with _cycle_collector_paused():
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


def _open_legacy(path: Path, *, table: str, what: str) -> sqlite3.Connection:
    if not path.is_file():
        raise LegacyFileError(f"The {what} {path} does not exist or is not a file.")
    # mode=ro: SQLite itself refuses any write, so the legacy file cannot change.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise LegacyFileError(f"The {what} {path} cannot be opened: {exc}.") from None
    # Legacy text is not always valid UTF-8; a bad byte must not stop the import.
    con.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        con.close()
        raise LegacyFileError(f"The {what} {path} is not an SQLite database ({exc}).") from None
    if table not in tables:
        con.close()
        raise LegacyFileError(
            f"The {what} {path} has no {table} table: it is not a legacy dashboard {what}."
        )
    return con


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def _select(table: str, wanted: Iterable[str], present: set[str]) -> str:
    # Columns a generation lacks are read as NULL, so every row has the same shape.
    parts = [name if name in present else f"NULL AS {name}" for name in wanted]
    return f"SELECT {', '.join(parts)} FROM {table}"  # noqa: S608 (names are ours)


def _generation(con: sqlite3.Connection, columns: set[str]) -> str:
    if columns & _V3_COLUMNS:
        return "v3"
    foreign_keys = con.execute("PRAGMA foreign_key_list(jobs)").fetchall()
    return "v1" if any(row[3] == "user_id" for row in foreign_keys) else "v2"


def _clusters_by_url() -> dict[str, int]:
    clusters: dict[str, int] = {}
    for pk, base_url in Cluster.objects.order_by("pk").values_list("pk", "base_url"):
        clusters.setdefault(normalise_cluster_url(base_url), pk)
    return clusters


def _order_key(value: object) -> tuple:
    """A Python sort key matching SQLite's ORDER BY: NULL, numbers, text, blobs."""
    if value is None:
        return (0,)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, value)


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


def _jobs_with_customers(
    con: sqlite3.Connection, columns: set[str], report: LegacyImportReport
) -> Iterator[tuple[tuple, list]]:
    """Each legacy job row with its customer rows' CIDs, merging two streams in job id order.

    Streaming both sides keeps memory flat however large the file; customer rows whose job
    does not exist fall between jobs and are counted.
    """
    jobs = con.execute(_select("jobs", _JOB_COLUMNS, columns) + " ORDER BY job_id")
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    customers: Iterator[tuple] = iter(())
    if "job_customers" in tables:
        customers = con.cursor().execute(
            "SELECT job_id, cid FROM job_customers ORDER BY job_id, rowid"
        )
    done = (4,)  # sorts after every SQLite value
    pending = next(customers, None)
    pending_key = _order_key(pending[0]) if pending else done
    for row in jobs:
        key = _order_key(row[0])
        cids = []
        while pending_key <= key:
            if pending_key == key:
                cids.append(pending[1])
            else:
                report.orphan_customer_rows += 1
            pending = next(customers, None)
            pending_key = _order_key(pending[0]) if pending else done
        yield row, cids
    for _ in customers:
        report.orphan_customer_rows += 1
    if pending:
        report.orphan_customer_rows += 1


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
    report.jobs_imported += len(fresh)
    report.customers_imported += sum(len(cids) for _, cids in fresh)


def _job_values(
    row: tuple, raw_cids: list, job_id: uuid.UUID | None, ctx: _Context
) -> tuple[dict[str, Any], list[str], str]:
    """The new job's field values (`job_id` is its id) and CIDs for a legacy row, or the
    reason it is skipped."""
    (
        raw_id,
        username,
        action_code,
        action_name,
        cluster_url,
        batch_id,
        payload,
        summary,
        status,
        created_raw,
        http_raw,
        error_message,
        updated_raw,
    ) = row
    legacy_id = _text(raw_id)
    username = _text(username)
    action_name = _text(action_name).strip()
    cluster_url = redact_text(_text(cluster_url).strip())
    cids = list(dict.fromkeys(cid for cid in (_text(raw).strip() for raw in raw_cids) if cid))
    created_at = parse_legacy_time(created_raw, ctx.tz)
    reason = _unimportable(legacy_id, username, created_at, action_name, cluster_url, cids)
    if reason:
        return {}, [], reason
    http_status = _int(http_raw)
    if http_status is not None and not 100 <= http_status <= 599:
        http_status = None
    status, note = _status(status, http_status)
    updated_at = parse_legacy_time(updated_raw, ctx.tz) or created_at
    action, action_name = _action(action_code, action_name)
    error_message = redact_text(_text(error_message))
    if note:
        error_message = f"{note}\n{error_message}" if error_message else note
    return (
        {
            "id": job_id,
            "legacy_id": legacy_id,
            "username": username,
            "action": action,
            "legacy_action_name": action_name,
            "cluster_id": ctx.clusters.get(normalise_cluster_url(cluster_url)),
            "cluster_url": cluster_url,
            "batch_id": _batch_uuid(_text(batch_id).strip()),
            "status": status,
            "http_status": http_status,
            "error_message": error_message,
            "response_summary": redact_text(_text(summary)),
            "request_payload": _payload(payload),
            "customer_count": len(cids),
            "created_at": created_at,
            "started_at": created_at,
            # An UNKNOWN job never finished; the others ended when the legacy app last wrote.
            "finished_at": None if status == Job.Status.UNKNOWN else updated_at,
            "updated_at": updated_at,
        },
        cids,
        "",
    )


def _unimportable(
    legacy_id: str,
    username: str,
    created_at: dt.datetime | None,
    action_name: str,
    cluster_url: str,
    cids: list[str],
) -> str:
    """Why a legacy job cannot be imported (a value missing or too long), or ""."""
    if not legacy_id:
        return "no job id"
    if len(legacy_id) > 100:
        return "job id longer than 100 characters"
    if not username:
        return "no operator"
    if len(username) > 150:
        return "operator name longer than 150 characters"
    if created_at is None:
        return "unreadable created_at"
    if len(action_name) > 100:
        return "action name longer than 100 characters"
    if len(cluster_url) > 500:
        return "cluster URL longer than 500 characters"
    if cids and max(map(len, cids)) > 64:
        return "customer ID longer than 64 characters"
    return ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    # PostgreSQL text cannot hold NUL characters.
    return text.replace("\x00", "") if "\x00" in text else text


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def _action(raw_code: object, name: str) -> tuple[int, str]:
    """The action code (by code, else by name in any spelling, else 0) and the name to keep."""
    code = _int(raw_code)
    if code is not None and 0 <= code <= _MAX_ACTION_CODE:
        return code, name
    if code is not None:
        # Not storable, but never dropped: shown by its name, or by the code as written.
        return _UNKNOWN_ACTION, name or str(raw_code)
    action = Job.Action.from_name(name)
    return (_UNKNOWN_ACTION if action is None else int(action)), name


_PLAIN_STATUSES = {"SUCCESS", "FAILED", "IN_PROGRESS", ""}


def _status(raw: object, http_status: int | None) -> tuple[str, str]:
    """The job status for a legacy status, and a note for the error message when needed."""
    text = _text(raw).strip().upper()
    if text not in _PLAIN_STATUSES:
        text = re.sub(r"[\s-]+", "_", text)
    if text == "SUCCESS":
        return Job.Status.SUCCESS, ""
    if text == "FAILED":
        return Job.Status.FAILED, ""
    if not text:
        ok = http_status is not None and 200 <= http_status <= 299
        return (Job.Status.SUCCESS if ok else Job.Status.FAILED), ""
    if text == "IN_PROGRESS":
        # The legacy app never finished such a job: its outcome cannot be known.
        return Job.Status.UNKNOWN, NO_RESULT
    return Job.Status.UNKNOWN, f"The legacy dashboard recorded the unknown status {_text(raw)!r}"


def _batch_uuid(text: str) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        # Keeps the jobs of one legacy batch together under one stable id.
        return uuid.uuid5(LEGACY_NAMESPACE, f"batch:{text}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON that databases store")


def _payload(raw: object) -> Any:
    """The request payload as JSON when it is JSON, else as text; secrets stripped either way."""
    text = _text(raw)
    if not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return redact_text(text)
    return {} if value is None else redact(value)


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


def _converter(
    model_field: models.Field, db: BaseDatabaseWrapper, converted: dict[Any, Any]
) -> Callable[[Any], Any] | None:
    """The function turning a field's Python value into its database value, None if none is
    needed. UUIDs and datetimes are converted once each per insert (`converted` is shared by
    the fields): a job's started_at repeats its created_at, its finished_at its updated_at, and
    its id is the job id of each of its customers; conversions are the costliest part of a row.
    """
    target = model_field.target_field if model_field.is_relation else model_field
    kind = target.get_internal_type()
    if kind in _PLAIN_TYPES:
        return None
    # prepared=True: the values built here already have the field's Python type (aware
    # datetimes, UUIDs, JSON-ready data), so Django's preparation step would change nothing.
    prepare = functools.partial(model_field.get_db_prep_value, connection=db, prepared=True)
    if kind not in {"DateTimeField", "UUIDField"}:
        return prepare

    def convert_once(value: Any) -> Any:
        if value is None:
            return None
        result = converted.get(value)
        if result is None:
            result = converted[value] = prepare(value)
        return result

    return convert_once


def _insert_rows(
    model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows of values for the fields `names` (attnames) with one executemany.

    Not bulk_create: that builds a model instance per row (too slow for millions) and runs
    `pre_save`, which would overwrite the legacy `updated_at` with now. Fields not named take
    their model default, computed for each row when it is callable (a new UUID, the time now)
    as the ORM would; an auto primary key is left to the database.
    """
    by_name = {f.attname: f for f in model._meta.concrete_fields}
    given = [by_name[name] for name in names]
    missing = [
        f
        for f in by_name.values()
        if f.attname not in names and not (f.primary_key and isinstance(f, models.AutoField))
    ]
    # The wrapper itself, not the `connection` proxy, which costs a lookup per value.
    db = connections[DEFAULT_DB_ALIAS]
    per_row = [f for f in missing if f.has_default() and callable(f.default)]
    constant = [f for f in missing if f not in per_row]
    defaults = tuple(f.get_db_prep_save(f.get_default(), db) for f in constant)
    converted: dict[Any, Any] = {}
    conversions = [
        (index, convert)
        for index, model_field in enumerate(given)
        if (convert := _converter(model_field, db, converted)) is not None
    ]
    params = []
    for row in rows:
        values = list(row)
        for index, convert in conversions:
            values[index] = convert(values[index])
        fresh = (f.get_db_prep_save(f.get_default(), db) for f in per_row)
        params.append((*values, *defaults, *fresh))
    if not params:
        return
    quote_name = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from the model)
        quote_name(model._meta.db_table),
        ", ".join(quote_name(f.column) for f in given + constant + per_row),
        ", ".join(["%s"] * (len(given) + len(missing))),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


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


def _audit_entry(row: tuple, ctx: _Context) -> tuple[AuditEntry | None, str]:
    legacy_id, timestamp, username, action, details, ip_address, status = row
    created_at = parse_legacy_time(timestamp, ctx.tz)
    if created_at is None:
        return None, "unreadable timestamp"
    username = _text(username)[:150]
    action = _text(action).strip() or "UNKNOWN"
    record: dict[str, Any] = {"legacy_id": legacy_id, "legacy_status": _text(status)}
    parsed = _payload(details)
    if parsed != {}:
        record["legacy_details"] = parsed
    # The job an entry is about, when its details name one, under the id it was imported with.
    named_job = parsed.get("job_id") if isinstance(parsed, dict) else None
    job_id = legacy_job_uuid(named_job) if isinstance(named_job, str) and named_job else None
    ip_text = _text(ip_address).strip()
    try:
        ip: str | None = str(ipaddress.ip_address(ip_text))
    except ValueError:
        ip = None
        if ip_text:
            record["legacy_ip_address"] = redact_text(ip_text)
    event = f"legacy.{action}"[: AuditEntry._meta.get_field("event").max_length]
    return (
        AuditEntry(
            created_at=created_at,
            actor_username=username,
            event=event,
            job_id=job_id,
            ip_address=ip,
            details=record,
        ),
        "",
    )
