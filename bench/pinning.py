"""The worker on cores of its own, for the figures issue 30 asks for that way.

With BENCH_WORKER_CPUS set to a `taskset` list of cores (say `1` on 2 cores), a benchmark
starts its worker under `taskset -c BENCH_WORKER_CPUS`, and for the whole run keeps everything
else on the other cores: itself (the fake cluster, the submits, the clients), what it starts
besides the worker (gunicorn), and the PostgreSQL server's processes, the postmaster among them
so that the connections opened meanwhile inherit it. The server's processes get their cores
back at the end. Unset, nothing is pinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from procstat import processes

WORKER_CPUS = os.environ.get("BENCH_WORKER_CPUS", "")


def _cores(spec: str) -> set[int]:
    cores: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def worker_command(command: list[str]) -> list[str]:
    """`command` as the benchmark starts the worker: under taskset when the worker is pinned."""
    return ["taskset", "-c", WORKER_CPUS, *command] if WORKER_CPUS else command


def _postgres_pids() -> list[int]:
    return [
        pid
        for pid, _, command, _ in processes()
        if command.startswith("postgres:") or command.split(" ")[0].endswith("/postgres")
    ]


@contextlib.contextmanager
def others_pinned() -> Iterator[str]:
    """Everything but the worker on the cores the worker does not have, for the duration;
    yields a line that says so, for the benchmark's output."""
    if not WORKER_CPUS:
        yield "nothing pinned"
        return
    everything = os.sched_getaffinity(0)
    worker = _cores(WORKER_CPUS)
    others = everything - worker
    if not worker <= everything or not others:
        raise SystemExit(f"BENCH_WORKER_CPUS={WORKER_CPUS} leaves no core of {everything} over.")
    servers = {}
    for pid in _postgres_pids():
        with contextlib.suppress(OSError):
            servers[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, others)
    os.sched_setaffinity(0, others)
    try:
        yield (
            f"worker on cores {sorted(worker)}; this process, what it starts and "
            f"{len(servers)} PostgreSQL processes on {sorted(others)}"
        )
    finally:
        os.sched_setaffinity(0, everything)
        for pid in [*servers, *_postgres_pids()]:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, servers.get(pid, everything))
