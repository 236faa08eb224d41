"""The task worker: django-tasks-db's database worker, run `concurrency` times in threads of
one process, with a heartbeat, a graceful stop, and no wait for a task queued while idle.

Each thread runs what is queued until the queue is empty (one task, one cluster call, at a
time), then waits for the queue to change (ops.wakeups: woken within milliseconds of a commit
that queues a task, on any host) or for `interval` at the latest, and looks again. The threads
share the process's worker id and its heartbeat: housekeeping takes the tasks of a process
that went silent for lost, whichever thread ran them. A call waits on the network, not the
CPU, so threads cost little: a few MB each instead of a process each.

The first SIGTERM or SIGINT stops every thread taking tasks; the tasks they are running,
cluster calls included, finish and are recorded, then the process exits. A second signal forces
it out at once: the calls' jobs are then left started, and the reaper ends them as UNKNOWN,
which is the truth. A thread that fails stops the others the same way, and the process exits
with an error for its process manager to restart it.

No one cluster may hold every thread of a process: at most its share of them (jobs.lanes: the
concurrency less a quarter, at least one thread kept free) are in calls to any one cluster, so
that a cluster whose calls hang leaves threads for the others' jobs. A process of one thread
has nothing to keep free.

One process runs its threads' Python one at a time (the interpreter lock): a job's claim and
record cost some milliseconds of CPU, so one process finishes a bounded number of jobs a second
however many calls it has out. `Supervisor` runs several worker processes sharing a host's
calls, for the host's other cores.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from types import FrameType

from django.db import OperationalError, close_old_connections, connections
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_tasks_db.compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    TaskResultStatus,
)
from django_tasks_db.management.commands.db_worker import Worker as DatabaseWorker
from django_tasks_db.models import DBTaskResult, get_date_max
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from jobs.lanes import (
    lane_of_queue,
    lane_queue,
    lane_release,
    lane_take,
    lanes_configure,
    lanes_full,
)
from lib.connections import keep_connections
from lib.outage import PASSING, ride_out
from lib.prepared import PreparedRead
from ops.heartbeats import Heartbeat, Role
from ops.task_rows import cursor_saves
from ops.wakeups import QueueWatch

logger = logging.getLogger(__name__)

# While the queue is locked by another worker's claim (SQLite), look again this soon.
LOCKED_RETRY_SECONDS = 0.02
FORCED = "ops.worker.ForcedStop"


class _Loop(DatabaseWorker):
    """One thread's loop: django-tasks-db's in its batch mode (`_take_tasks`), which returns
    once the queue is empty (it sleeps its own interval only while another claim holds the
    queue); then it waits on the process's queue watch."""

    def __init__(self, *, worker_id: str, watch: QueueWatch, idle_wait: float, once: bool):
        super().__init__(
            # Every queue (a cluster's jobs are queued on its own), less those of the clusters
            # whose share of this process's threads is taken (`_pass_over_full_clusters`).
            queue_names=["*"],
            interval=LOCKED_RETRY_SECONDS,
            batch=True,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        self.watch = watch
        self.idle_wait = idle_wait
        self.once = once
        self.in_hand: DBTaskResult | None = None

    def run_task(self, db_task_result: DBTaskResult) -> None:
        self.in_hand = db_task_result
        # The task row's end (django-tasks-db's set_successful or set_failed saves it, through
        # a cursor since its claim) is written whatever the database does meanwhile: left
        # RUNNING by a live worker, no one would ever end it.
        save = db_task_result.save
        db_task_result.save = lambda *args, **kwargs: ride_out(
            lambda: save(*args, **kwargs), doing="recording a task's end"
        )
        try:
            super().run_task(db_task_result)
        finally:
            self.in_hand = None
            self._pass_over_full_clusters()

    @staticmethod
    def _take_lane(task: DBTaskResult) -> bool:
        """Take the lane of the task's cluster (its queue says which) before the task is
        claimed, which the job's own claim then finds held: a thread never claims a job only
        to put it back because another thread took the lane meanwhile."""
        cluster_id = lane_of_queue(task.queue_name)
        return cluster_id is None or lane_take(cluster_id)

    def _pass_over_full_clusters(self) -> None:
        """Look next only at the queues of clusters this process has a lane free for
        (jobs.lanes): a job it could not run stays queued, for a thread whose call to its
        cluster ends (which looks again at once) or another process."""
        self.excluded_queue_names = [lane_queue(cluster_id) for cluster_id in lanes_full()]

    def _take_tasks(self) -> None:
        """django-tasks-db's loop in its batch mode (its Worker.run), run until the queue is
        empty, with its look for the next task a prepared read (`_next_task`). The first task
        it finds wakes another waiting thread of the process (QueueWatch.wake_one), which
        looks too: one change woke only this one."""
        first = True
        while self.running:
            # Check for dropped connections after waking up, as django-tasks-db does.
            close_old_connections()
            try:
                with exclusive_transaction():
                    task = _next_task(self.excluded_queue_names)
                    if task is not None and not self._take_lane(task):
                        # Another thread took the cluster's last lane since this one looked.
                        self._pass_over_full_clusters()
                        continue
                    if task is not None:
                        cursor_saves(task)
                        task.claim(self.worker_id)
            except BaseException as exc:
                # The task is not claimed: the lane taken for it is given back.
                lane_release()
                # Another worker's claim holds the queue (SQLite): look again shortly.
                if not isinstance(exc, OperationalError) or not is_locked_database_exception(exc):
                    raise
                time.sleep(self.interval)
                continue
            if task is None:
                return
            if first:
                self.watch.wake_one()
                first = False
            self.run_task(task)
            close_old_connections()

    def run(self) -> None:
        while self.running:
            seen = self.watch.generation()
            self._pass_over_full_clusters()
            try:
                ride_out(self._take_tasks, doing="taking tasks", giving_up=lambda: not self.running)
            except PASSING:
                # Told to stop during an outage: nothing was taken.
                return
            if self.once:
                return
            if self.running:
                self.watch.wait(self.idle_wait, seen)


# The look for the next task, one prepared read per set of queues passed over.
_NEXT_TASK: dict[tuple[str, ...], PreparedRead] = {}


def _next_task(excluded: list[str]) -> DBTaskResult | None:
    """The next task due on the queues not `excluded`, locked (SKIP LOCKED on PostgreSQL),
    as django-tasks-db's loop reads it (`DBTaskResult.objects.ready()...get_locked()`), but
    built by the ORM once per thread and set of queues and run again with the time (its
    building cost the worker more than a job's claim). In a transaction."""
    key = tuple(excluded)
    read = _NEXT_TASK.get(key)
    if read is None:
        read = _NEXT_TASK.setdefault(
            key, PreparedRead(lambda _key, at: _ready_tasks(at, key), keyed=False)
        )
    return read.first(None, timezone.now())


def _ready_tasks(at: datetime, excluded: tuple[str, ...]) -> QuerySet:
    tasks = DBTaskResult.objects.filter(
        Q(run_after=get_date_max()) | Q(run_after__lte=at),
        status=TaskResultStatus.READY,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
    )
    if excluded:
        tasks = tasks.exclude(queue_name__in=excluded)
    return tasks.select_for_update(skip_locked=True)[:1]


class Worker:
    def __init__(
        self, *, worker_id: str, concurrency: int, interval: float, batch: bool = False
    ) -> None:
        self.worker_id = worker_id
        self.watch = QueueWatch()
        self.loops = [
            _Loop(worker_id=worker_id, watch=self.watch, idle_wait=interval, once=batch)
            for _ in range(concurrency)
        ]
        self.failed = False
        self.signals = 0
        lanes_configure(concurrency=concurrency)

    def configure_signals(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(signum, self.shutdown)

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        # Counted before anything else: a second signal can run this again inside the first
        # call, before that call has stopped the loops, and must still force.
        self.signals += 1
        name = signal.strsignal(signum)
        if self.signals > 1:
            logger.warning("worker %s: %s again, stopping at once", self.worker_id, name)
            for stopped in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(stopped, signal.SIG_DFL)
            self._abandon_tasks_in_hand()
            sys.exit(1)
        logger.warning(
            "worker %s: %s, finishing the tasks in hand, then stopping (send it again to force)",
            self.worker_id,
            name,
        )
        self.stop()

    def _abandon_tasks_in_hand(self) -> None:
        """End the task rows of the calls cut off by a forced stop (their jobs stay started,
        for the reaper to end as UNKNOWN): nothing else would, once this process is gone."""
        in_hand = [loop.in_hand.pk for loop in self.loops if loop.in_hand is not None]
        DBTaskResult.objects.filter(pk__in=in_hand, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path=FORCED,
            traceback="The worker was forced to stop while running this task.",
        )

    def stop(self) -> None:
        for loop in self.loops:
            loop.running = False
        self.watch.stop()

    def run(self) -> None:
        # django-tasks-db's loop closes "old" connections around every task, as Django does
        # around a request.
        keep_connections()
        heartbeat = Heartbeat(self.worker_id, role=Role.WORKER)
        heartbeat.start()
        self.watch.start()
        threads = [
            threading.Thread(target=self._run_loop, args=(loop,), name=f"worker-{n}", daemon=True)
            for n, loop in enumerate(self.loops, start=1)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self.stop()
            self.watch.join()
            heartbeat.stop()
        logger.info("worker %s stopped", self.worker_id)
        if self.failed:
            sys.exit(1)

    def _run_loop(self, loop: _Loop) -> None:
        try:
            loop.run()
        except BaseException:
            logger.exception("worker %s: a worker thread failed; stopping", self.worker_id)
            self.failed = True
            self.stop()
        finally:
            connections.close_all()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
# prctl(PR_SET_PDEATHSIG): the signal a child gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """In a worker process started by a Supervisor, before it runs: a SIGTERM when the
    supervisor dies, however it dies, so that a worker never outlives it unwatched."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The supervisor held its stop signals back while starting it (see Supervisor.run).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` as even as can be, the larger shares first."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


class Supervisor:
    """`processes` worker processes (`command` + `--concurrency` with each one's share of
    `concurrency`), watched until they end.

    Signals are the single worker's: the first SIGTERM, SIGINT or SIGQUIT is passed to every
    worker process, which lets its calls in hand finish and exits; a second is passed on too,
    and forces them. The processes are started in a session of their own, so that a terminal's
    Ctrl-C reaches them once, through the supervisor, not twice. When one ends with an error,
    or at all while no stop was asked for (outside --batch), the others are stopped gracefully
    and the supervisor exits with an error for its process manager to restart it.
    """

    def __init__(self, *, processes: int, concurrency: int, command: list[str], batch: bool):
        self.commands = [
            [*command, "--concurrency", str(share)] for share in shares(concurrency, processes)
        ]
        self.batch = batch
        self.children: dict[int, subprocess.Popen] = {}
        self.signals = 0
        self.failed = False

    def configure_signals(self) -> None:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self.shutdown)

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        logger.warning(
            "worker supervisor: %s, passed to its %d worker process(es)%s",
            signal.strsignal(signum),
            len(self.children),
            " (forcing them)" if self.signals > 1 else "",
        )
        self._signal_children()

    def _signal_children(self) -> None:
        for child in self.children.values():
            # A child that has just ended, not yet waited for, ignores it.
            child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Start the worker processes and wait for all of them; the exit status to end with."""
        # A stop signal arriving meanwhile is handled once every process is started, so that
        # each gets it.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for command in self.commands:
                child = subprocess.Popen(
                    command, start_new_session=True, preexec_fn=_stop_with_parent
                )
                self.children[child.pid] = child
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        while self.children:
            pid, status = os.waitpid(-1, 0)
            child = self.children.pop(pid, None)
            if child is None:
                continue
            # Told to Popen, so that it never waits for this process again.
            child.returncode = code = os.waitstatus_to_exitcode(status)
            stopping = self.signals > 0 or self.failed
            if code != 0 or not (stopping or self.batch):
                logger.error(
                    "worker supervisor: worker process %d ended with status %d; stopping the "
                    "others",
                    pid,
                    code,
                )
                if not self.failed:
                    self.failed = True
                    if not self.signals:
                        self._signal_children()
        return 1 if self.failed or self.signals > 1 else 0
