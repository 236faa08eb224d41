"""Real database faults on the tests' own database, for either engine.

SQLite: another connection holds the database with `BEGIN EXCLUSIVE`, so that every writer
(and, past the busy timeout, every would-be writer) gets "database is locked". PostgreSQL: the
server ends the other processes' connections (`pg_terminate_backend`), as a restart does to
every connection, and refuses new ones while `refuse_connections` holds (`ALLOW_CONNECTIONS
false`). Processes the tests start are given a short busy timeout (BUSY_TIMEOUT) so that a
held lock outlasts it in seconds, not minutes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from django.db import connection

from tests.db_locks import sqlite_write_lock

# Seconds the processes started by the fault tests wait on a locked SQLite database.
BUSY_TIMEOUT = 1


def _admin() -> psycopg.Connection:
    """A connection to the server's maintenance database, not to the tests' own."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or 5432,
        autocommit=True,
    )


@contextlib.contextmanager
def sqlite_locked() -> Iterator[None]:
    """The tests' SQLite database held exclusively by another connection until the block ends."""
    with sqlite_write_lock(connection.settings_dict["NAME"]):
        yield


def postgres_drop_connections() -> int:
    """End every other connection to the tests' PostgreSQL database; how many were ended."""
    with _admin() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        ).fetchall()
    return len(rows)


@contextlib.contextmanager
def postgres_refusing() -> Iterator[None]:
    """The tests' PostgreSQL database ends every connection and refuses new ones until the block
    ends: to its clients, a server restarting."""
    name = connection.settings_dict["NAME"]
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            postgres_drop_connections()
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            # The test's own connection was ended too.
            connection.close()


@contextlib.contextmanager
def database_down() -> Iterator[None]:
    """The tests' database refusing work until the block ends, on either engine."""
    if connection.vendor == "postgresql":
        with postgres_refusing():
            yield
    else:
        with sqlite_locked():
            yield
