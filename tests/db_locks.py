"""Another process's hold on the tests' database: the lock a request or the /healthz probe
meets, taken through a connection of its own, as another process would."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import psycopg
from django.db import connection


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """`BEGIN EXCLUSIVE` on the SQLite file (in WAL mode readers go on, writers wait)."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


@contextlib.contextmanager
def postgres_lock(url: str, table: str, mode: str = "ACCESS EXCLUSIVE") -> Iterator[None]:
    """An open transaction holding `table` in `mode`: ACCESS EXCLUSIVE lets no one read or
    write it, EXCLUSIVE lets others read it only."""
    with psycopg.connect(url) as holder:
        holder.execute(f"LOCK TABLE {table} IN {mode} MODE")
        yield
        holder.rollback()


@contextlib.contextmanager
def probe_row_locked(url: str) -> Iterator[None]:
    """The database refusing the /healthz probe's write: the whole SQLite file, or the probe's
    row on PostgreSQL (which locks rows, not files)."""
    if connection.vendor == "sqlite":
        with sqlite_write_lock(connection.settings_dict["NAME"]):
            yield
    else:
        with postgres_lock(url, "ops_writeprobe"):
            yield


def someone_waits_for_a_lock() -> bool:
    """Whether a PostgreSQL session of the tests' server waits for a lock another holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0
