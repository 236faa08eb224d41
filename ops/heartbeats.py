"""Worker heartbeats: which workers are alive, read from the one database every host shares."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.utils import timezone

from ops.models import WorkerHeartbeat

# A worker writes its heartbeat this often...
HEARTBEAT_SECONDS = 5
# ...and counts as gone once it has been silent this long.
ALIVE_SECONDS = 30


def heartbeat_start(worker_id: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "last_seen": now,
        },
    )


def heartbeat_beat(worker_id: str) -> None:
    """Refresh the worker's heartbeat; write it again if housekeeping took it for dead."""
    if not WorkerHeartbeat.objects.filter(pk=worker_id).update(last_seen=timezone.now()):
        heartbeat_start(worker_id)


def heartbeat_stop(worker_id: str) -> None:
    WorkerHeartbeat.objects.filter(pk=worker_id).delete()


def alive_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=ALIVE_SECONDS)


def workers_alive(now: datetime | None = None) -> int:
    return WorkerHeartbeat.objects.filter(last_seen__gte=alive_since(now)).count()
