"""Measures the worker's CPU: per job, and while idle, on the worker `make run` starts.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/worker_cpu.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_worker_cpu
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_worker_cpu \
        .venv/bin/python bench/worker_cpu.py

A fake cluster answering in 200 ms (this process serves it), and the worker as `make run`
starts it: `manage.py run_worker --concurrency TMS_WORKER_CONCURRENCY` (processes
TMS_WORKER_PROCESSES), DEBUG off, the cluster's max_concurrent_calls equal to the
concurrency. Once the worker's heartbeat is written, its CPU over IDLE_SECONDS of an empty
queue is its idle cost (% of one core); then JOBS one-customer jobs are submitted, through the
submit service in this process, while it runs, and the user + system CPU time of the worker's
processes (from /proc/<pid>/stat, every process of its tree) from the first submit to the last
job's end, divided by JOBS, is its CPU per job. The PostgreSQL server's processes for this
database are reported beside it (0 on SQLite, whose work the worker does itself).

With BENCH_PYSPY set to a file name, the worker runs under py-spy (`py-spy record`, its
path in BENCH_PYSPY_BIN, default `py-spy`; its samples a second in BENCH_PYSPY_RATE, default
100), which writes the worker's profile there while the
jobs run, in py-spy's "raw" format (one line per stack, with its count of samples); the CPU
figures of such a run include py-spy's pauses and are not the ones to quote.

With BENCH_WORKER_CPUS set (bench/pinning.py), the worker runs on those cores and the rest on
the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pinning import others_pinned, worker_command
from procstat import database_cpu, load, tree_cpu
from scratch import ROOT, scratch_django

scratch_django("worker_cpu", TMS_DEVTOOLS="true")

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402
from ops.models import WorkerHeartbeat  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "1000"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))
ANSWER_SECONDS = 0.2
TOKEN = "bench-token"  # noqa: S105 (a scratch database)
DATABASE = str(connection.settings_dict["NAME"])


def start_worker() -> subprocess.Popen:
    command = [
        sys.executable,
        "manage.py",
        "run_worker",
        "--concurrency",
        str(settings.TMS_WORKER_CONCURRENCY),
    ]
    profile = os.environ.get("BENCH_PYSPY")
    if profile:
        spy = os.environ.get("BENCH_PYSPY_BIN", "py-spy")
        command = [spy, "record", "--gil", "--format", "raw", "--subprocesses", "-o", profile]
        command += ["--rate", os.environ.get("BENCH_PYSPY_RATE", "100"), "--"]
        command += [sys.executable, "manage.py", "run_worker"]
        command += ["--concurrency", str(settings.TMS_WORKER_CONCURRENCY)]
    return subprocess.Popen(
        worker_command(command),
        cwd=ROOT,
        # As in production: DEBUG off (it keeps every query in memory).
        env={**os.environ, "DEBUG": "false"},
        stdout=subprocess.DEVNULL,
    )


def wait_for_heartbeat(worker: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not WorkerHeartbeat.objects.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            sys.exit("The worker did not start.")
        time.sleep(0.1)
    # Its threads have looked at the empty queue and wait.
    time.sleep(1)


def main() -> None:
    if "bench" not in DATABASE:
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    WorkerHeartbeat.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    concurrency = settings.TMS_WORKER_CONCURRENCY
    print(
        f"engine: {connection.vendor}, worker: {concurrency} calls at once, "
        f"{settings.TMS_WORKER_PROCESSES} process(es), cluster answering in "
        f"{ANSWER_SECONDS * 1000:.0f} ms"
    )
    with others_pinned() as pinning, FakeCluster(answer_seconds=ANSWER_SECONDS) as fake:
        print(pinning)
        cluster, _ = Cluster.objects.update_or_create(
            name="bench",
            defaults={
                "base_url": fake.url,
                "max_concurrent_calls": concurrency,
                "timeout_seconds": 30,
            },
        )
        worker = start_worker()
        try:
            wait_for_heartbeat(worker)
            before = tree_cpu(worker.pid)
            time.sleep(IDLE_SECONDS)
            idle = tree_cpu(worker.pid) - before
            print(
                f"idle: {idle / IDLE_SECONDS * 100:.2f}% of a core over {IDLE_SECONDS:g} s "
                f"(load {load()})"
            )
            worker_before, database_before = tree_cpu(worker.pid), database_cpu(DATABASE)
            started = time.monotonic()
            for n in range(JOBS):
                job_submit(user=user, action=1, cluster=cluster, cids=f"W{n}", token=TOKEN)
            while Job.objects.filter(status="IN_PROGRESS").exists():
                if worker.poll() is not None:
                    sys.exit("The worker stopped.")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            # Read before the worker stops: its database connections end with it.
            worker_used = tree_cpu(worker.pid) - worker_before
            database_used = database_cpu(DATABASE) - database_before
        finally:
            worker.send_signal(signal.SIGINT if os.environ.get("BENCH_PYSPY") else signal.SIGTERM)
            worker.wait(60)
    failed = Job.objects.filter(cluster=cluster).exclude(status="SUCCESS").count()
    print(
        f"{JOBS} jobs in {elapsed:.1f} s, not SUCCESS: {failed}, calls: "
        f"{sum(fake.counts().values())}, most in flight {fake.concurrency()['max_in_flight']}\n"
        f"CPU per job: worker {worker_used / JOBS * 1000:.2f} ms, "
        f"database server {database_used / JOBS * 1000:.2f} ms (load {load()})"
    )


if __name__ == "__main__":
    main()
