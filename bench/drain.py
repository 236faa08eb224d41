"""Measures draining the queue: JOBS one-customer jobs against a cluster answering in 200 ms, by
one worker process making 4, then 32, calls at once; and that process's memory.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/drain.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_drain
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_drain .venv/bin/python bench/drain.py

For each concurrency C in BENCH_CONCURRENCY (a comma list, default 4,32) and each number of worker
processes P in BENCH_PROCESSES (a comma list, default 1): the jobs are queued first (the cluster's
max_concurrent_calls is C), then a real `manage.py run_worker --concurrency C --processes P`
starts, and the time is from its start to the last job's end, against the floor of JOBS x 0.2 s /
C. The worker's resident memory (its processes together) is read from /proc while it is busiest,
and the CPU time per job spent by the worker's processes, by the database's server processes
(PostgreSQL) and by this process (the fake cluster's answers and the polling) is read from /proc at
the end: their sum is what a job costs the machine, and the machine's cores divided by it bound the
jobs a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from procstat import database_cpu, own_cpu, resident_mb, tree_cpu
from scratch import ROOT, scratch_django

scratch_django("drain", TMS_DEVTOOLS="true")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "1000"))
PROCESSES = [int(n) for n in os.environ.get("BENCH_PROCESSES", "1").split(",")]
CONCURRENCIES = [int(n) for n in os.environ.get("BENCH_CONCURRENCY", "4,32").split(",")]
ANSWER_SECONDS = 0.2
TOKEN = "bench-token"  # noqa: S105 (a scratch database)


DATABASE = str(connection.settings_dict["NAME"])


def drain(user: User, fake: FakeCluster, concurrency: int, processes: int) -> None:
    cluster, _ = Cluster.objects.update_or_create(
        name="bench",
        defaults={
            "base_url": fake.url,
            "max_concurrent_calls": concurrency,
            "timeout_seconds": 30,
        },
    )
    Job.objects.filter(status="IN_PROGRESS").update(status="SUCCESS")
    for n in range(JOBS):
        job_submit(user=user, action=1, cluster=cluster, cids=f"D{concurrency}-{n}", token=TOKEN)
    fake.reset_concurrency()
    peak = [0.0]
    database_before, own_before = database_cpu(DATABASE), own_cpu()
    started = time.monotonic()
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_worker",
            "--concurrency",
            str(concurrency),
            "--processes",
            str(processes),
        ],
        cwd=ROOT,
        # As in production: DEBUG off (it keeps every query in memory).
        env={**os.environ, "DEBUG": "false"},
        stdout=subprocess.DEVNULL,
    )
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
        f"{JOBS} jobs, {concurrency:>2} calls at once, {processes} process(es): {elapsed:6.1f} s "
        f"({elapsed / floor:.2f}x the floor of {floor:.2f} s), "
        f"most in flight {fake.concurrency()['max_in_flight']}, "
        f"worker RSS at most {peak[0]:.0f} MB, not SUCCESS: {failed}\n"
        f"    CPU per job: worker {worker_cpu / JOBS * 1000:.1f} ms, "
        f"database server {database_used / JOBS * 1000:.1f} ms, "
        f"fake cluster and bench {own_used / JOBS * 1000:.1f} ms"
    )


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    print(f"engine: {connection.vendor}")
    with FakeCluster(answer_seconds=ANSWER_SECONDS) as fake:
        for concurrency in CONCURRENCIES:
            for processes in PROCESSES:
                drain(user, fake, concurrency, min(processes, concurrency))


if __name__ == "__main__":
    main()
