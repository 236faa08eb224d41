"""Heartbeats of the worker and housekeeping processes: which of them are alive, read from the
one database every host shares."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.utils import timezone

from ops.models import WorkerHeartbeat

Role = WorkerHeartbeat.Role

# A process writes its heartbeat this often...
HEARTBEAT_SECONDS = 5
# ...and counts as gone once it has been silent this long.
ALIVE_SECONDS = 30


def heartbeat_start(process_id: str, *, role: str = Role.WORKER) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=process_id,
        defaults={
            "role": role,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "last_seen": now,
        },
    )


def heartbeat_beat(process_id: str, *, role: str = Role.WORKER) -> None:
    """Refresh the process's heartbeat; write it again if housekeeping took it for dead."""
    if not WorkerHeartbeat.objects.filter(pk=process_id).update(last_seen=timezone.now()):
        heartbeat_start(process_id, role=role)


def heartbeat_stop(process_id: str) -> None:
    WorkerHeartbeat.objects.filter(pk=process_id).delete()


def alive_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=ALIVE_SECONDS)


def alive(role: str, now: datetime | None = None) -> int:
    """How many processes of this role sent a heartbeat within ALIVE_SECONDS."""
    return WorkerHeartbeat.objects.filter(role=role, last_seen__gte=alive_since(now)).count()


def workers_alive(now: datetime | None = None) -> int:
    return alive(Role.WORKER, now)
