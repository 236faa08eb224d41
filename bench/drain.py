"""Measures draining the queue: JOBS one-customer jobs against a cluster answering in 200 ms, by
worker processes making 4, then 32, calls at once; their memory; and how long the same JOBS
submits take while the worker runs them.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/drain.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_drain
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_drain .venv/bin/python bench/drain.py

For each number of calls at once C in BENCH_CONCURRENCY (a comma list, default 4,32) and each
number of worker processes P in BENCH_PROCESSES (a comma list, default 1), the cluster's
max_concurrent_calls is C and a real `manage.py run_worker --processes P` starts with the
fewest threads whose share of one cluster (jobs.lanes: a process keeps a quarter of its threads
free of any one cluster) makes C calls at once: 5 threads for 4 calls, 43 for 32. Twice:

- drain: the jobs are queued first, then the worker starts; the time is from its start to the
  last job's end, against the floor of JOBS x 0.2 s / C. The worker's resident memory (its
  processes together) is read from /proc while it is busiest, and the CPU time per job spent by
  the worker's processes, by the database's server processes (PostgreSQL) and by this process
  (the fake cluster's answers and the polling) is read from /proc at the end: their sum is what
  a job costs the machine, and the machine's cores divided by it bound the jobs a second;
- submits beside it: the worker starts first and waits on the empty queue, then this process
  submits the jobs one after another through the submit service while the worker runs them;
  timed is the submits' own time, and the drain's from the first submit to the last end.

With BENCH_WORKER_CPUS set (bench/pinning.py), the worker runs on those cores and the rest on
the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from pinning import others_pinned, worker_command
from procstat import database_cpu, load, own_cpu, resident_mb, tree_cpu
from scratch import ROOT, scratch_django

scratch_django("drain", TMS_DEVTOOLS="true")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.lanes import lanes_share  # noqa: E402
from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402
from ops.models import WorkerHeartbeat  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "1000"))
PROCESSES = [int(n) for n in os.environ.get("BENCH_PROCESSES", "1").split(",")]
CONCURRENCIES = [int(n) for n in os.environ.get("BENCH_CONCURRENCY", "4,32").split(",")]
ANSWER_SECONDS = 0.2
TOKEN = "bench-token"  # noqa: S105 (a scratch database)


DATABASE = str(connection.settings_dict["NAME"])


def threads_for(calls: int, processes: int) -> int:
    """The fewest worker threads, spread over `processes`, whose shares of one cluster make
    `calls` calls to it at once."""
    each = 1
    while (lanes_share(each) or each) * processes < calls:
        each += 1
    return each * processes


def start_worker(concurrency: int, processes: int) -> subprocess.Popen:
    return subprocess.Popen(
        worker_command(
            [
                sys.executable,
                "manage.py",
                "run_worker",
                "--concurrency",
                str(threads_for(concurrency, processes)),
                "--processes",
                str(processes),
            ]
        ),
        cwd=ROOT,
        # As in production: DEBUG off (it keeps every query in memory).
        env={**os.environ, "DEBUG": "false"},
        stdout=subprocess.DEVNULL,
    )


def bench_cluster(fake: FakeCluster, concurrency: int) -> Cluster:
    cluster, _ = Cluster.objects.update_or_create(
        name="bench",
        defaults={
            "base_url": fake.url,
            "max_concurrent_calls": concurrency,
            "timeout_seconds": 30,
        },
    )
    Job.objects.filter(status="IN_PROGRESS").update(status="SUCCESS")
    return cluster


def drain(user: User, fake: FakeCluster, concurrency: int, processes: int) -> None:
    cluster = bench_cluster(fake, concurrency)
    for n in range(JOBS):
        job_submit(user=user, action=1, cluster=cluster, cids=f"D{concurrency}-{n}", token=TOKEN)
    fake.reset_concurrency()
    peak = [0.0]
    database_before, own_before = database_cpu(DATABASE), own_cpu()
    started = time.monotonic()
    worker = start_worker(concurrency, processes)
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], resident_mb(worker.pid))

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    try:
        while Job.objects.filter(status="IN_PROGRESS").exists():
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        # Read before the worker stops: its database connections end with it.
        worker_cpu = tree_cpu(worker.pid)
        database_used, own_used = database_cpu(DATABASE) - database_before, own_cpu() - own_before
    finally:
        done.set()
        worker.terminate()
        worker.wait(60)
    floor = JOBS * ANSWER_SECONDS / concurrency
    failed = Job.objects.filter(cluster=cluster).exclude(status="SUCCESS").count()
    print(
        f"{JOBS} jobs, {concurrency:>2} calls at once, {processes} process(es) of "
        f"{threads_for(concurrency, processes)} threads in all: {elapsed:6.1f} s "
        f"({elapsed / floor:.2f}x the floor of {floor:.2f} s), "
        f"most in flight {fake.concurrency()['max_in_flight']}, "
        f"worker RSS at most {peak[0]:.0f} MB, not SUCCESS: {failed}\n"
        f"    CPU per job: worker {worker_cpu / JOBS * 1000:.1f} ms, "
        f"database server {database_used / JOBS * 1000:.1f} ms, "
        f"fake cluster and bench {own_used / JOBS * 1000:.1f} ms (load {load()})"
    )


def submits_beside(user: User, fake: FakeCluster, concurrency: int, processes: int) -> float:
    """Submits JOBS jobs while the worker runs them; returns the submits' own time."""
    cluster = bench_cluster(fake, concurrency)
    worker = start_worker(concurrency, processes)
    try:
        while not WorkerHeartbeat.objects.exists():
            if worker.poll() is not None:
                sys.exit("The worker did not start.")
            time.sleep(0.1)
        # Its threads have looked at the empty queue and wait.
        time.sleep(1)
        started = time.monotonic()
        for n in range(JOBS):
            job_submit(
                user=user, action=1, cluster=cluster, cids=f"S{concurrency}-{n}", token=TOKEN
            )
        submitted = time.monotonic() - started
        while Job.objects.filter(status="IN_PROGRESS").exists():
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(60)
    WorkerHeartbeat.objects.all().delete()
    print(
        f"    {JOBS} submits beside it: {submitted:.1f} s, "
        f"the last job ended {elapsed:.1f} s after the first submit (load {load()})"
    )
    return submitted


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    print(f"engine: {connection.vendor}")
    WorkerHeartbeat.objects.all().delete()
    submitting: dict[tuple[int, int], float] = {}
    with others_pinned() as pinning, FakeCluster(answer_seconds=ANSWER_SECONDS) as fake:
        print(pinning)
        for concurrency in CONCURRENCIES:
            for processes in PROCESSES:
                processes = min(processes, concurrency)
                drain(user, fake, concurrency, processes)
                submitting[concurrency, processes] = submits_beside(
                    user, fake, concurrency, processes
                )
    for (concurrency, processes), seconds in submitting.items():
        fewest = min(CONCURRENCIES)
        if concurrency != fewest and (fewest, processes) in submitting:
            print(
                f"submits beside {concurrency} calls at once, {processes} process(es): "
                f"{seconds / submitting[fewest, processes]:.2f}x their time beside {fewest}"
            )


if __name__ == "__main__":
    main()
