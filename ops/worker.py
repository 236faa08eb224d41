"""The task worker: django-tasks-db's database worker, with a heartbeat, a graceful stop, and
no wait for a task queued while it is idle.

It runs what is queued until the queue is empty, then waits for the queue to change
(ops.wakeups: woken within milliseconds of a commit that queues a task, on any host), or for
`interval` at the latest, and looks again.

The first SIGTERM or SIGINT stops it taking tasks; the task it is running, a cluster call
included, finishes and is recorded, then the process exits. A second signal forces it out at
once: the call's job is then left started, and the reaper ends it as UNKNOWN, which is the truth.
(django-tasks-db's own handler exits at once when idle, which can come between claiming a task
row and running it; this one never does, and exits at its next turn instead.)
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from django.db import DatabaseError, connections
from django_tasks_db.management.commands.db_worker import Worker as DatabaseWorker

from ops.heartbeats import HEARTBEAT_SECONDS, heartbeat_beat, heartbeat_start, heartbeat_stop
from ops.wakeups import QueueWatch

# While the queue is locked by another worker's claim (SQLite), look again this soon.
LOCKED_RETRY_SECONDS = 0.02

logger = logging.getLogger(__name__)


class Worker(DatabaseWorker):
    def __init__(self, **kwargs) -> None:
        # django-tasks-db's loop, run in its batch mode, returns once the queue is empty; it
        # sleeps its own interval only while another worker's claim holds the queue.
        self.idle_wait = kwargs.pop("interval")
        self.once = kwargs.pop("batch")
        super().__init__(interval=LOCKED_RETRY_SECONDS, batch=True, **kwargs)
        self.watch = QueueWatch()

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        name = signal.strsignal(signum)
        if not self.running:
            logger.warning("worker %s: %s again, stopping at once", self.worker_id, name)
            self.reset_signals()
            sys.exit(1)
        logger.warning(
            "worker %s: %s, finishing the task in hand, then stopping (send it again to force)",
            self.worker_id,
            name,
        )
        self.running = False
        self.watch.stop()

    def run(self) -> None:
        heartbeat_start(self.worker_id)
        stop = threading.Event()
        beating = threading.Thread(
            target=_beat_until, args=(self.worker_id, stop), name="heartbeat", daemon=True
        )
        beating.start()
        try:
            while self.running:
                super().run()
                if self.once:
                    break
                if self.running:
                    self.watch.wait(self.idle_wait)
        finally:
            self.watch.close()
            stop.set()
            beating.join()
            heartbeat_stop(self.worker_id)
        logger.info("worker %s stopped", self.worker_id)


def _beat_until(worker_id: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                heartbeat_beat(worker_id)
            except DatabaseError:
                logger.warning("worker %s: heartbeat not written: database error", worker_id)
                # The next beat opens a new connection rather than reuse a broken one.
                connections.close_all()
    finally:
        connections.close_all()
