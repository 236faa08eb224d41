"""Measures how long a cluster whose calls hang holds back a job for a healthy cluster.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/hanging_cluster.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_hanging
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_hanging \
        .venv/bin/python bench/hanging_cluster.py

Two fake clusters in this process: a healthy one, and one that holds every call for an hour,
its `max_concurrent_calls` equal to the worker's concurrency (the defaults: 4 and 4) and its
jobs timing out after --timeout seconds. With no worker running, --hanging jobs for the hanging
cluster are queued, then one for the healthy cluster; a real `manage.py run_worker` starts,
and the healthy job's delay is timed from the first hanging call reaching its cluster to the
healthy job's SUCCESS (the put-backs of the hanging jobs queued before it included). Then
--rounds healthy jobs are submitted one at a time while the hanging calls are out, each timed
from its submit to its SUCCESS. Last, with the worker gone and the hanging cluster's calls
still counted in flight, each hanging job still queued is run in this process --putbacks
times: its cluster is full, so each run puts it back in the queue; that is timed too.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

from scratch import ROOT, scratch_django

scratch_django("hanging", TMS_DEVTOOLS="true")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tasks_db.models import DBTaskResult  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.models import Cluster, InFlightCall, Job  # noqa: E402
from jobs.services import job_run, job_submit  # noqa: E402
from ops.models import WorkerHeartbeat  # noqa: E402

HANG_SECONDS = 3600
TOKEN = "bench-token"  # noqa: S105 (a scratch database)


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit("timed out")
        time.sleep(0.002)


def succeeded(job: Job) -> bool:
    return Job.objects.filter(pk=job.pk, status="SUCCESS").exists()


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms, "
        f"max {ordered[-1] * 1000:7.1f} ms ({len(values)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--hanging", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--putbacks", type=int, default=10)
    args = parser.parse_args()
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    DBTaskResult.objects.all().delete()
    WorkerHeartbeat.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    print(
        f"engine: {connection.vendor}, a worker of {args.concurrency} threads, "
        f"{args.hanging} hanging jobs queued first (limit {args.concurrency}, "
        f"timeout {args.timeout} s)"
    )
    with FakeCluster() as healthy_fake, FakeCluster(answer_seconds=HANG_SECONDS) as hanging_fake:
        healthy, _ = Cluster.objects.update_or_create(
            name="healthy", defaults={"base_url": healthy_fake.url}
        )
        hanging, _ = Cluster.objects.update_or_create(
            name="hanging",
            defaults={
                "base_url": hanging_fake.url,
                "max_concurrent_calls": args.concurrency,
                "timeout_seconds": args.timeout,
            },
        )
        stuck = [
            job_submit(user=user, action=1, cluster=hanging, cids=f"H{n}", token=TOKEN)[0]
            for n in range(args.hanging)
        ]
        [first] = job_submit(user=user, action=1, cluster=healthy, cids="G0", token=TOKEN)
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--concurrency", str(args.concurrency)],
            cwd=ROOT,
            env={**os.environ, "DEBUG": "false"},
            stdout=subprocess.DEVNULL,
        )
        try:
            # Whichever hanging job a thread took first: the others may be put back.
            wait_for(lambda: any(hanging_fake.arrival(str(job.pk)) for job in stuck), 60)
            wait_for(lambda: succeeded(first), args.timeout * 3)
            ended = time.monotonic()
            out = hanging_fake.concurrency()["in_flight"]
            started = Job.objects.filter(cluster=hanging, started_at__isnull=False).count()
            arrivals = [hanging_fake.arrival(str(job.pk)) for job in stuck]
            delay = ended - min(arrival for arrival in arrivals if arrival is not None)
            print(
                f"queued behind the hanging jobs: {delay * 1000:.0f} ms from the first hanging "
                f"call to SUCCESS, {out} hanging call(s) out then, {started} hanging job(s) "
                "started"
            )
            delays = []
            for n in range(1, args.rounds + 1):
                started = time.monotonic()
                [job] = job_submit(user=user, action=1, cluster=healthy, cids=f"G{n}", token=TOKEN)
                wait_for(lambda job=job: succeeded(job), args.timeout * 3)
                delays.append(time.monotonic() - started)
            print(f"submitted while the hanging calls are out: {summary(delays)}")
        finally:
            # Forced: the hanging calls' jobs stay started, their slots taken.
            worker.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        # Full with the calls the forced stop left counted, whatever the worker's share was.
        left = InFlightCall.objects.filter(cluster=hanging).count()
        Cluster.objects.filter(pk=hanging.pk).update(max_concurrent_calls=max(left, 1))
        queued = list(Job.objects.filter(cluster=hanging, started_at__isnull=True)) if left else []
        costs = []
        for _ in range(args.putbacks):
            for job in queued:
                started = time.monotonic()
                if job_run(job_id=job.pk):
                    sys.exit(f"job {job.pk} was run, not put back")
                costs.append(time.monotonic() - started)
        if costs:
            print(f"a put-back (cluster full, job_run in this process): {summary(costs)}")


if __name__ == "__main__":
    main()
