"""Heartbeats of the worker and housekeeping processes: which of them are alive, read from the
one database every host shares."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from django.db import DatabaseError, connections
from django.utils import timezone
from django.utils.crypto import get_random_string

from lib.outage import PASSING, outage_failed, outage_recovered, ride_out
from ops.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

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


def process_id() -> str:
    """An id for this process, unique across hosts and restarts (at most 64 characters)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(8)}"


class Heartbeat:
    """A long-running process's heartbeat, written by a thread of its own every
    HEARTBEAT_SECONDS from `start()` to `stop()`, through database outages (lib.outage): a beat
    the database refuses is logged with the outage, and the next one tries on a new
    connection."""

    def __init__(self, process_id: str, *, role: str) -> None:
        self.process_id = process_id
        self.role = role
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> None:
        ride_out(
            lambda: heartbeat_start(self.process_id, role=self.role),
            doing=f"starting the {self.role}'s heartbeat",
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and delete the heartbeat; during an outage, leave it for housekeeping,
        which forgets a silent process (and ends what it left)."""
        self._stopping.set()
        self._thread.join()
        try:
            heartbeat_stop(self.process_id)
        except DatabaseError:
            logger.warning(
                "%s %s: heartbeat left for housekeeping: database error",
                self.role,
                self.process_id,
            )

    def _beat(self) -> None:
        try:
            while not self._stopping.wait(HEARTBEAT_SECONDS):
                try:
                    heartbeat_beat(self.process_id, role=self.role)
                except PASSING as error:
                    outage_failed(error, f"writing the {self.role}'s heartbeat")
                    # The next beat opens a new connection rather than reuse a broken one.
                    connections.close_all()
                else:
                    outage_recovered()
        finally:
            connections.close_all()
