"""Waking idle workers when the queue may have changed, instead of at their next look.

On PostgreSQL, every commit that queues a task (or ends a job, which may free a cluster's call
slot for a waiting one) sends a NOTIFY on one channel (`queue_changed`, delivered by the
database at commit, never for a rolled-back transaction), and each worker process LISTENs on
it: every host is woken, since the database is what they share. SQLite serves one host: there
a worker process reads the database's `data_version`, which changes whenever another
connection commits, every SQLITE_POLL_SECONDS; each read costs microseconds and touches no
table.

One watcher thread per process does this for all of the process's worker threads, which wait
on it (`QueueWatch.wait`). A change wakes one waiting thread, not all of them: a job's end, a
commit on SQLite, wakes one thread to look, and a thread that finds a task wakes the next
(`QueueWatch.wake_one`) before running it, so a batch of new tasks brings every idle thread in
turn, and a change that brings nothing costs one look, not one per idle thread (with 42
threads, ten idle ones looked at the queue after every job's end: more of the worker's and
PostgreSQL's CPU than the job's own run). A worker still looks at the queue after its interval
at the latest, so that a task whose `run_after` has come, or a notification lost with a dropped
connection, waits no longer.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading

import psycopg
from django.db import connection

from lib.outage import outage_failed

logger = logging.getLogger(__name__)

CHANNEL = "tmsdash_queue"
# How often the watcher reads data_version on SQLite.
SQLITE_POLL_SECONDS = 0.02
# The longest the watcher goes without seeing whether it should stop.
STOP_CHECK_SECONDS = 0.25
# After losing its connection, the watcher tries again this much later.
RECONNECT_SECONDS = 1.0


def queue_changed() -> None:
    """Say that the queue may have changed, when the current transaction commits: idle
    workers on every host look at it then. Nothing to do on SQLite (see QueueWatch)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


class QueueWatch:
    """Counts the changes to the queue that a watcher thread sees; worker threads wait for
    the count to move past what they saw before they last looked at the queue, so that a
    change made while they were looking is never missed."""

    def __init__(self) -> None:
        self._vendor = connection.vendor
        self._settings = connection.settings_dict
        self._changed = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="queue-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End every wait at once, and the watcher soon (safe from a signal handler)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def join(self) -> None:
        self._thread.join()

    def generation(self) -> int:
        with self._changed:
            return self._generation

    def wait(self, timeout: float, seen: int) -> None:
        """Wait until the queue changed after `seen` (a `generation()`), `timeout` passed, or
        the watch was stopped."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != seen or self._stopping.is_set(), timeout
            )

    def wake_one(self) -> None:
        """Say that the queue changed, to one waiting thread: it looks, and passes the word on
        when it finds a task. A thread looking at the queue meanwhile sees the change when it
        comes to wait (`generation`), so no change is missed."""
        with self._changed:
            self._generation += 1
            self._changed.notify()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._vendor == "postgresql":
                    self._listen()
                else:
                    self._poll()
            except (sqlite3.Error, psycopg.Error) as exc:
                # Logged once an outage, with the process's other threads (lib.outage).
                outage_failed(exc, "watching the queue")
            # Whatever was missed meanwhile, the workers look once more.
            self.wake_one()
            self._stopping.wait(RECONNECT_SECONDS)

    def _poll(self) -> None:
        with contextlib.closing(
            sqlite3.connect(self._settings["NAME"], timeout=5, isolation_level=None)
        ) as conn:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            while not self._stopping.wait(SQLITE_POLL_SECONDS):
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    seen = version
                    self.wake_one()

    def _listen(self) -> None:
        with psycopg.connect(_conninfo(self._settings), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            while not self._stopping.is_set():
                for _notify in conn.notifies(timeout=STOP_CHECK_SECONDS):
                    self.wake_one()


def _conninfo(settings: dict) -> str:
    parts = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items() if v})
