"""A consistent copy of the database while the dashboard runs.

SQLite: the online backup API copies the database a few pages at a time inside one read
transaction, so the copy is the database as it was when the backup began (every transaction
committed before then, none after), and writers, which WAL lets work beside a reader, are
never held up by it. The copy is written under a temporary name in the target's directory,
checked with `PRAGMA integrity_check`, flushed to the disk and only then renamed into place:
a failed backup (a full disk, a missing directory, a copy that fails its check) leaves
nothing behind.

PostgreSQL: `pg_dump` is the tool; `pg_backup_commands` builds its command (and
pg_restore's) from the connection settings, without the password.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import connections

# Pages copied per step, and the pause between steps: small steps keep each one short.
PAGES_PER_STEP = 256
STEP_PAUSE_SECONDS = 0.005
EXISTS = "{to} exists; give --force to replace it. Nothing was written."


class BackupError(Exception):
    """The backup was refused or failed; nothing was written at the target."""


@dataclass(frozen=True)
class SqliteBackup:
    path: Path
    size: int
    seconds: float


@dataclass(frozen=True)
class PostgresCommands:
    """What to run instead: the dump; for a restore, a new empty database and pg_restore."""

    dump: str
    create: str
    restore: str


def database_backup(*, to: Path, force: bool = False, using: str = "default"):
    """Back up the database `using` names to `to`: a `SqliteBackup` on SQLite; on PostgreSQL
    nothing is written and the `PostgresCommands` to run are returned."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        return pg_backup_commands(settings=connection.settings_dict, to=to)
    source = Path(connection.settings_dict["NAME"])
    timeout = connection.settings_dict.get("OPTIONS", {}).get("timeout", 30)
    return sqlite_backup(source=source, to=to, force=force, busy_timeout=timeout)


def sqlite_backup(
    *,
    source: Path,
    to: Path,
    force: bool = False,
    busy_timeout: float = 30,
    pages: int = PAGES_PER_STEP,
    pause: float = STEP_PAUSE_SECONDS,
) -> SqliteBackup:
    """Copy the SQLite database at `source` to `to` as described above. Refuses an existing
    `to` unless `force`, a `source` that is not a file, and a missing directory."""
    to = Path(to)
    if not source.is_file():
        raise BackupError(f"There is no SQLite database at {source}.")
    if not to.parent.is_dir():
        raise BackupError(f"The directory {to.parent} does not exist; nothing was written.")
    if to.exists() and not force:
        raise BackupError(EXISTS.format(to=to))
    if to.exists() and to.resolve() == source.resolve():
        raise BackupError("The backup cannot replace the database it copies.")
    started = time.monotonic()
    descriptor, name = tempfile.mkstemp(dir=to.parent, prefix=f".{to.name}.", suffix=".partial")
    os.close(descriptor)
    partial = Path(name)
    try:
        _copy(source, partial, busy_timeout=busy_timeout, pages=pages, pause=pause)
        _check(partial)
        _flush(partial)
        if force:
            os.replace(partial, to)
        else:
            # A link, unlike a rename, refuses a file put there since the check above.
            os.link(partial, to)
        _flush(to.parent)
    except FileExistsError:
        raise BackupError(EXISTS.format(to=to)) from None
    except (sqlite3.Error, OSError) as error:
        raise BackupError(f"The backup to {to} failed ({error}); nothing was written.") from error
    finally:
        partial.unlink(missing_ok=True)
    return SqliteBackup(path=to, size=to.stat().st_size, seconds=time.monotonic() - started)


def _copy(source: Path, partial: Path, *, busy_timeout: float, pages: int, pause: float) -> None:
    with (
        contextlib.closing(sqlite3.connect(source, timeout=busy_timeout)) as db,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        # One read transaction across every step: the snapshot the copy is made of. Without
        # it each step would restart the copy whenever another process had written since the
        # last, and a busy dashboard could keep it from ever finishing.
        db.isolation_level = None
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        try:
            # The pause after each step lets other connections' work run between steps.
            db.backup(copy, pages=pages, progress=lambda *_: time.sleep(pause), sleep=pause)
        finally:
            db.execute("COMMIT")
        # The copy is a file of its own, with no -wal beside it once restored.
        copy.execute("PRAGMA journal_mode=DELETE").fetchone()


def _check(partial: Path) -> None:
    with contextlib.closing(sqlite3.connect(partial)) as copy:
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"integrity_check: {'; '.join(problems[:5])}")


def _flush(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def pg_backup_commands(*, settings: dict, to: Path) -> PostgresCommands:
    """pg_dump's and pg_restore's commands for the database `settings` describe; the password
    is never part of them (PGPASSWORD or ~/.pgpass gives it)."""
    connection = [
        "--host",
        settings.get("HOST") or "localhost",
        "--port",
        str(settings.get("PORT") or 5432),
    ]
    if settings.get("USER"):
        connection += ["--username", settings["USER"]]
    name = settings["NAME"]
    dump = ["pg_dump", "--format=custom", *connection, "--dbname", name, "--file", str(to)]
    create = ["createdb", *connection, f"{name}_restored"]
    restore = [
        "pg_restore",
        *connection,
        "--dbname",
        f"{name}_restored",
        "--no-owner",
        "--exit-on-error",
        str(to),
    ]
    return PostgresCommands(
        dump=shlex.join(dump), create=shlex.join(create), restore=shlex.join(restore)
    )
