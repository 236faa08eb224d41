"""Heartbeats: a worker's outlives a lost database connection; housekeeping beats too, under
its own role, never counted as a worker."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from ops import heartbeats
from ops.heartbeats import Heartbeat, Role, alive, heartbeat_beat, heartbeat_start, workers_alive
from ops.housekeeping import end_orphaned_tasks
from ops.models import WorkerHeartbeat
from tests.helpers import wait_until


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a server that can drop a connection"
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_heartbeat_reconnects_after_the_database_drops_its_connection(monkeypatch):
    monkeypatch.setattr(heartbeats, "HEARTBEAT_SECONDS", 0.05)
    beating = Heartbeat("w1", role=Role.WORKER)
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
        beating.stop()


def test_housekeeping_beats_under_its_own_role_and_is_forgotten_once_silent(db):
    heartbeat_start("w1")
    heartbeat_start("hk1", role=Role.HOUSEKEEPING)
    assert (workers_alive(), alive(Role.HOUSEKEEPING)) == (1, 1)
    # Taken for dead and forgotten, it comes back under its role at its next beat.
    WorkerHeartbeat.objects.filter(pk="hk1").delete()
    heartbeat_beat("hk1", role=Role.HOUSEKEEPING)
    assert WorkerHeartbeat.objects.get(pk="hk1").role == Role.HOUSEKEEPING
    assert WorkerHeartbeat.objects.get(pk="w1").role == Role.WORKER

    silent = timezone.now() - dt.timedelta(minutes=1)
    WorkerHeartbeat.objects.filter(pk="hk1").update(last_seen=silent)
    assert end_orphaned_tasks(now=timezone.now()) == []
    assert list(WorkerHeartbeat.objects.values_list("pk", flat=True)) == ["w1"]
