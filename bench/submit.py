"""Measures job_submit: one submission of 1 to 100,000 customers, and concurrent submitters.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/submit.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and its
jobs are deleted first):
    createdb -h 127.0.0.1 -U postgres tms_bench_submit
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_submit \
        .venv/bin/python bench/submit.py

Tasks are enqueued into the database as in production but not run (no worker).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from scratch import scratch_django

scratch_django("submit")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from jobs.models import Cluster, InFlightCustomer, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 (a scratch database)
THREADS = 8
PER_THREAD = 25


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    cluster, _ = Cluster.objects.get_or_create(
        name="bench", defaults={"base_url": "http://127.0.0.1:9", "max_cids_per_request": 500}
    )
    print(f"engine: {connection.vendor}")
    for size in (1, 500, 5_000, 100_000):
        cids = [f"B{size}-{n}" for n in range(size)]
        started = time.perf_counter()
        jobs = job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)
        elapsed = time.perf_counter() - started
        # Free the customers for the next round.
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(status="SUCCESS")
        InFlightCustomer.objects.all().delete()
        print(f"submit {size:>7} customers -> {len(jobs):>3} job(s): {elapsed * 1000:8.1f} ms")

    timings: list[float] = []
    barrier = threading.Barrier(THREADS)

    def submitter(n: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            started = time.perf_counter()
            job_submit(user=user, action=1, cluster=cluster, cids=f"T{n}-{i}", token=TOKEN)
            timings.append(time.perf_counter() - started)
        connections.close_all()

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = THREADS * PER_THREAD
    timings.sort()
    print(
        f"{THREADS} concurrent submitters, {total} one-customer submits: {total / elapsed:.0f}/s, "
        f"median {statistics.median(timings) * 1000:.1f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
