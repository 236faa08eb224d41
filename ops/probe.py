"""Whether the database takes a write now, answered within a second or two.

/healthz asks this on every request. A request that meets a locked or full database waits up to
the busy timeout (30 s on SQLite) and is then answered 503; the probe must not wait that long,
so that a load balancer's health check answers in time:

- SQLite: the probe opens a connection of its own, with a busy timeout of PROBE_SECONDS, and
  writes the probe row. (Django's connection would wait the full busy timeout while it opens:
  its first statement already needs the lock another process may hold.) A write can still go
  through on a full disk when the WAL file reuses its space while every other write fails, so a
  filesystem with less than MIN_FREE_BYTES left under the database file counts as full.
- PostgreSQL: the probe row is written in a transaction whose lock and statement timeouts are
  the probe's own; its commit waits for the write-ahead log to reach the disk.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ops.models import WriteProbe

PROBE_SECONDS = 1
MIN_FREE_BYTES = 1024 * 1024


def write_refused() -> str | None:
    """None when the probe row was written; otherwise why not, in a sentence."""
    if connection.vendor == "sqlite":
        return _sqlite_write_refused()
    return _postgres_write_refused()


def _sqlite_write_refused() -> str | None:
    path = Path(connection.settings_dict["NAME"])
    disk = os.statvfs(path.parent)
    if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
        return (
            f"The database cannot be written: less than {MIN_FREE_BYTES // 1024} KiB "
            "is free on its disk."
        )
    probe = sqlite3.connect(path, timeout=PROBE_SECONDS, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute(
            "INSERT INTO ops_writeprobe (id, written_at) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
            (connection.ops.adapt_datetimefield_value(timezone.now()),),
        )
        probe.execute("COMMIT")
    except sqlite3.Error as exc:
        return f"The database cannot be written: {exc}."
    finally:
        probe.close()
    return None


def _postgres_write_refused() -> str | None:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = {PROBE_SECONDS * 1000}")
            cursor.execute(f"SET LOCAL statement_timeout = {PROBE_SECONDS * 1000}")
            WriteProbe.objects.bulk_create(
                [WriteProbe(pk=1, written_at=timezone.now())],
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=["written_at"],
            )
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"The database cannot be written: {first_line}."
    return None
