"""Reading the legacy SQLite files, whatever their schema generation.

The files are opened read-only; columns a generation lacks are read as NULL, so every row has
the same shape; jobs and their customer rows are streamed as two cursors in the jobs' creation
order and merged, so memory stays flat however large the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from legacy.report import LegacyImportReport
from legacy.schema import AUDIT_COLUMNS, JOB_COLUMNS, V3_JOB_COLUMNS

_JOB_COLUMNS = tuple(name for name, _ in (*JOB_COLUMNS, *V3_JOB_COLUMNS))
_V3_COLUMNS = {name for name, _ in V3_JOB_COLUMNS}
_AUDIT_COLUMNS = tuple(name for name, _ in AUDIT_COLUMNS)


class LegacyFileError(Exception):
    """A legacy file that cannot be imported: missing, not SQLite, or without its table."""


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


def _select(table: str, wanted: Iterable[str], present: set[str], *, rowid: bool = False) -> str:
    # Columns a generation lacks are read as NULL, so every row has the same shape.
    parts = [name if name in present else f"NULL AS {name}" for name in wanted]
    if rowid:
        parts.insert(0, "rowid")
    return f"SELECT {', '.join(parts)} FROM {table}"  # noqa: S608 (names are ours)


def _generation(con: sqlite3.Connection, columns: set[str]) -> str:
    if columns & _V3_COLUMNS:
        return "v3"
    foreign_keys = con.execute("PRAGMA foreign_key_list(jobs)").fetchall()
    return "v1" if any(row[3] == "user_id" for row in foreign_keys) else "v2"


def _jobs_with_customers(
    con: sqlite3.Connection, columns: set[str], report: LegacyImportReport
) -> Iterator[tuple[tuple, list]]:
    """Each legacy job row with its customer rows' CIDs, in the order the legacy app wrote the
    jobs (their rowid: the order they were created in), merging two streams on that rowid.

    Streaming both sides keeps memory flat however large the file. In creation order, the
    jobs of a chunk lie side by side in this database's indexes by time and in the per-hour
    counts, so that a chunk writes to a few places of each, not all over them. Customer rows
    whose job does not exist are counted once every job has been read.
    """
    jobs = con.execute(_select("jobs", _JOB_COLUMNS, columns, rowid=True) + " ORDER BY rowid")
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    has_customers = "job_customers" in tables
    customers: Iterator[tuple] = iter(())
    if has_customers:
        # Without the legacy file's index on job_id, SQLite makes one for the query.
        customers = con.cursor().execute(
            "SELECT jobs.rowid, c.cid FROM jobs JOIN job_customers AS c "
            "ON c.job_id = jobs.job_id ORDER BY jobs.rowid, c.rowid"
        )
    pending = next(customers, None)
    for rowid, *row in jobs:
        cids = []
        while pending is not None and pending[0] == rowid:
            cids.append(pending[1])
            pending = next(customers, None)
        yield tuple(row), cids
    if has_customers:
        report.orphan_customer_rows += con.execute(
            "SELECT count(*) FROM job_customers AS c "
            "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.job_id = c.job_id)"
        ).fetchone()[0]
