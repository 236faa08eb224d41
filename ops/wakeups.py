"""Waking an idle worker when the queue may have changed, instead of at its next look.

On PostgreSQL, every commit that queues a task (or ends a job, which may free a cluster's call
slot for a waiting one) sends a NOTIFY on one channel (`queue_changed`, delivered by the
database at commit, never for a rolled-back transaction), and each idle worker LISTENs on it:
every host is woken, since the database is what they share. SQLite serves one host: there an
idle worker reads the database's `data_version`, which changes whenever another connection
commits, every few milliseconds; each read costs microseconds and no table is touched.

Either way a worker still looks at the queue after `timeout` at the latest, so that a task
whose `run_after` has come, or a notification lost with a dropped connection, waits no longer.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time

import psycopg
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

CHANNEL = "tmsdash_queue"
# How often an idle worker on SQLite reads data_version.
SQLITE_POLL_SECONDS = 0.01
# The longest a wait goes without seeing whether the worker is stopping.
STOP_CHECK_SECONDS = 0.25


def queue_changed() -> None:
    """Say that the queue may have changed, when the current transaction commits: idle
    workers on every host look at it then. Nothing to do on SQLite (see QueueWatch)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


class QueueWatch:
    """Waits until the queue may have changed, or `timeout` passed, or `stop()` was called
    (from a signal handler: the wait ends within STOP_CHECK_SECONDS)."""

    def __init__(self) -> None:
        self.stopping = False
        self._vendor = connection.vendor
        self._settings = connection.settings_dict
        self._conn: sqlite3.Connection | psycopg.Connection | None = None
        self._version: int | None = None

    def wait(self, timeout: float) -> None:
        # psycopg waits without end for a timeout of 0.
        timeout = max(timeout, SQLITE_POLL_SECONDS)
        try:
            if self._vendor == "postgresql":
                self._wait_notified(timeout)
            else:
                self._wait_committed(timeout)
        except (sqlite3.Error, psycopg.Error, DatabaseError) as exc:
            # Reconnect at the next wait; this one waits out its time.
            logger.warning("queue watch lost its connection (%s); polling", type(exc).__name__)
            self.close()
            time.sleep(timeout)

    def _wait_committed(self, timeout: float) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self._settings["NAME"], timeout=5, isolation_level=None)
            self._version = self._data_version()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            version = self._data_version()
            if version != self._version:
                self._version = version
                return
            time.sleep(SQLITE_POLL_SECONDS)

    def _data_version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _wait_notified(self, timeout: float) -> None:
        if self._conn is None:
            self._conn = psycopg.connect(_conninfo(self._settings), autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and not self.stopping:
            # One notification is enough: the worker then runs whatever is queued.
            for _notify in self._conn.notifies(
                timeout=max(min(left, STOP_CHECK_SECONDS), SQLITE_POLL_SECONDS), stop_after=1
            ):
                return

    def stop(self) -> None:
        self.stopping = True

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


def _conninfo(settings: dict) -> str:
    parts = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items() if v})
