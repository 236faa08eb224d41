"""A worker's heartbeat outlives a lost database connection."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ops import worker
from ops.heartbeats import heartbeat_start
from ops.models import WorkerHeartbeat
from tests.helpers import wait_until


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a server that can drop a connection"
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_heartbeat_reconnects_after_the_database_drops_its_connection(monkeypatch):
    monkeypatch.setattr(worker, "HEARTBEAT_SECONDS", 0.05)
    heartbeat_start("w1")
    stop = threading.Event()
    beating = threading.Thread(target=worker._beat_until, args=("w1", stop))
    beating.start()
    try:
        first = WorkerHeartbeat.objects.get().last_seen
        wait_until(lambda: WorkerHeartbeat.objects.get().last_seen > first, timeout=10)
        # The server ends every other session to this database: the heartbeat's among them.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchall()
        dropped = WorkerHeartbeat.objects.get().last_seen
        wait_until(lambda: WorkerHeartbeat.objects.get().last_seen > dropped, timeout=10)
    finally:
        stop.set()
        beating.join()
