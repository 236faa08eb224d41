"""Measures pickup: from a submit to the cluster receiving its call, with idle workers.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/pickup.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_pickup
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_pickup \
        .venv/bin/python bench/pickup.py

Starts a real `manage.py run_worker` process (default interval, CONCURRENCY threads) and the
fake cluster in this process, then submits ROUNDS one-customer jobs one at a time, each after
the last one reached the cluster and a pause (so that the worker is idle), and times
submit-to-cluster: the job_submit call (the click's database work) and the wait for the idle
worker to take it. Then measures the CPU the idle worker uses in IDLE_SECONDS.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scratch import ROOT, scratch_django

scratch_django("pickup", TMS_DEVTOOLS="true")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402
from ops.models import WorkerHeartbeat  # noqa: E402

CONCURRENCY = 4
ROUNDS = 60
IDLE_SECONDS = 10
TOKEN = "bench-token"  # noqa: S105 (a scratch database)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit("timed out")
        time.sleep(0.001)


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))]


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    WorkerHeartbeat.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    print(f"engine: {connection.vendor}, an idle worker of {CONCURRENCY} threads")
    with FakeCluster() as fake:
        cluster, _ = Cluster.objects.update_or_create(
            name="bench", defaults={"base_url": fake.url, "max_concurrent_calls": CONCURRENCY}
        )
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--concurrency", str(CONCURRENCY)],
            cwd=ROOT,
            # As in production: DEBUG off (it keeps every query in memory).
            env={**os.environ, "DEBUG": "false"},
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: WorkerHeartbeat.objects.count() == 1)
            time.sleep(2)
            submits, pickups = [], []
            for n in range(ROUNDS):
                time.sleep(random.uniform(0.2, 0.4))  # noqa: S311 (spacing, not security)
                started = time.monotonic()
                [job] = job_submit(user=user, action=1, cluster=cluster, cids=f"P{n}", token=TOKEN)
                submitted = time.monotonic()
                wait_for(lambda job=job: fake.arrival(str(job.pk)) is not None)
                submits.append(submitted - started)
                pickups.append(fake.arrival(str(job.pk)) - started)
            for name, values in (("submit (job_submit)", submits), ("submit to cluster", pickups)):
                print(
                    f"{name:20}: p50 {statistics.median(values) * 1000:6.1f} ms, "
                    f"p95 {percentile(values, 0.95) * 1000:6.1f} ms"
                )
            before = cpu_seconds(worker.pid)
            time.sleep(IDLE_SECONDS)
            used = cpu_seconds(worker.pid) - before
            print(
                f"idle worker's CPU: {used / IDLE_SECONDS * 100:.2f}% of a core "
                f"({used:.2f} s in {IDLE_SECONDS} s)"
            )
        finally:
            worker.terminate()
            worker.wait(60)


if __name__ == "__main__":
    main()
