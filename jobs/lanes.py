"""A worker process's lanes: how many of its threads are in calls to each cluster, so that no
one cluster holds all of them.

A cluster's `max_concurrent_calls` bounds the calls to it from every host together; it says
nothing of whose threads make them. With the defaults (a limit of 4, a worker of 4 threads), a
cluster whose calls hang took every thread of the worker, and a job for a healthy cluster
waited in the queue until the first of those calls timed out: its cluster's timeout, up to
600 s, and longer when more of the hanging cluster's jobs were queued before it. So a worker
process keeps a reserve of its threads for the other clusters: at most its `share` of them are
in calls to any one cluster at a time. `jobs.services.running._claim` takes a lane with the
cluster's call slot; a claim that finds the process's share for that cluster taken puts the job
back to wait exactly as a full cluster does, and the end of a call to the cluster (which wakes
the oldest waiting job as it gives the call slot back, then gives the lane back) brings it
forward. Each time its task is due
again (`WAIT_RECHECK`), whichever process claims it first runs it if that process has a lane
free; one whose share is still taken puts it back once more. So another process or host with
free threads takes it up, but not always at the first recheck.

The share is the process's concurrency less a quarter of it (at least one thread). A process
of one thread has nothing to keep free: it has no share, and its one thread may wait on any
cluster, as before; so does a process that set none (job_run called in tests or a shell).

The counts live in this process only. A thread is in one call at a time, so it holds at most
one lane, kept per thread: `job_run` gives it back on every way out without passing it around.

A job's task is queued on its cluster's queue (`lane_queue`), and a worker thread looks only at
the queues of clusters whose share this process has not taken (`lanes_full`): the thread kept
free passes over the jobs it could not run instead of claiming each and putting it back, which
cost as much as running a job. A lane taken between the look and the claim is still refused
by `lane_take`, and the job put back as above.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django_tasks_db.compat import DEFAULT_TASK_QUEUE_NAME

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_in_calls: Counter[int] = Counter()
_held = threading.local()
_share: int | None = None
_QUEUE_PREFIX = "cluster-"


def lanes_configure(*, concurrency: int | None) -> int | None:
    """Give this process of `concurrency` threads its share of them per cluster: all but a
    quarter, at least one kept free. None, no limit, without a concurrency or for a single
    thread, which has nothing to keep free. Returns the share."""
    global _share
    with _lock:
        _share = lanes_share(concurrency)
        return _share


def lanes_share(concurrency: int | None) -> int | None:
    """The share of a process of `concurrency` threads (lanes_configure), without giving it."""
    if concurrency is None or concurrency < 2:
        return None
    return concurrency - max(1, concurrency // 4)


def lane_take(cluster_id: int) -> bool:
    """Take a lane for a call to this cluster for the current thread; False, taking nothing,
    when the process's share of calls to it is taken. A thread asking again for the cluster
    whose lane it holds keeps it; asking for another gives the first one back."""
    with _lock:
        held = getattr(_held, "cluster_id", None)
        if held == cluster_id:
            return True
        if held is not None:
            _give_back(held)
        if _share is not None and _in_calls[cluster_id] >= _share:
            return False
        _in_calls[cluster_id] += 1
        _held.cluster_id = cluster_id
        return True


def lane_release() -> None:
    """Give back the current thread's lane, if it holds one."""
    with _lock:
        held = getattr(_held, "cluster_id", None)
        if held is not None:
            _give_back(held)


def lanes_full() -> list[int]:
    """The clusters whose share this process has taken: a claim of their jobs would be
    refused now."""
    with _lock:
        if _share is None:
            return []
        return [cluster_id for cluster_id, calls in _in_calls.items() if calls >= _share]


def lane_queue(cluster_id: int | None) -> str:
    """The task queue of a job for this cluster (the default queue for a job without one)."""
    return DEFAULT_TASK_QUEUE_NAME if cluster_id is None else f"{_QUEUE_PREFIX}{cluster_id}"


def lane_of_queue(queue_name: str) -> int | None:
    """The cluster whose jobs `queue_name` holds (lane_queue), None for any other queue."""
    if queue_name.startswith(_QUEUE_PREFIX) and queue_name[len(_QUEUE_PREFIX) :].isdigit():
        return int(queue_name[len(_QUEUE_PREFIX) :])
    return None


def lanes_in_calls() -> dict[int, int]:
    """This process's threads holding a lane, by cluster id."""
    with _lock:
        return dict(+_in_calls)


def releasing_lane(func: Callable[P, R]) -> Callable[P, R]:
    """Give back the thread's lane when `func` returns or raises, whichever way it ends."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            lane_release()

    return wrapper


def _give_back(cluster_id: int) -> None:
    _in_calls[cluster_id] -= 1
    _held.cluster_id = None
