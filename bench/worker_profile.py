"""Profiles what running one job costs, in one thread: JOBS one-customer jobs queued, then run
by django-tasks-db's loop in this process (as one thread of `run_worker` runs them, with its
kept connections) against a fake cluster answering at once.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/worker_profile.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_worker_profile \
        .venv/bin/python bench/worker_profile.py

Prints, per job: the CPU time of this process (the fake cluster's answers included), the SQL
statements (transactions' BEGIN, COMMIT and savepoints aside) and the Python function calls
counted by cProfile, the last one independent of the machine's load. With BENCH_PROFILE=N,
also cProfile's N entries of most cumulative time. The statements are counted in a second
pass, since counting them costs CPU of its own.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time

from scratch import scratch_django

scratch_django("worker_profile", TMS_DEVTOOLS="true")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS  # noqa: E402
from django_tasks_db.management.commands.db_worker import Worker  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.models import Cluster, Job  # noqa: E402
from jobs.services import job_submit  # noqa: E402
from lib.connections import keep_connections  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "200"))
TOP = int(os.environ.get("BENCH_PROFILE", "0"))
TOKEN = "bench-token"  # noqa: S105 (a scratch database)
TRANSACTIONS = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def queue(user: User, cluster: Cluster, prefix: str) -> None:
    for n in range(JOBS):
        job_submit(user=user, action=1, cluster=cluster, cids=f"{prefix}{n}", token=TOKEN)


def drain() -> None:
    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=False,
        max_tasks=None,
        worker_id="bench",
        excluded_queue_names=[],
    ).run()


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    connections.close_all()
    keep_connections()
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="Operators"))
    with FakeCluster() as fake:
        cluster, _ = Cluster.objects.update_or_create(
            name="bench", defaults={"base_url": fake.url, "max_concurrent_calls": 4}
        )
        # A first job, so that what a process does once (URL patterns, imports) is not counted.
        queue(user, cluster, "warm")
        drain()
        Job.objects.all().delete()
        queue(user, cluster, "P")
        started = time.process_time()
        drain()
        cpu = time.process_time() - started
        queue(user, cluster, "Q")
        profile = cProfile.Profile()
        profile.enable()
        drain()
        profile.disable()
        queue(user, cluster, "S")
        statements = []

        def count(execute, sql, params, many, context):
            if not sql.startswith(TRANSACTIONS):
                statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            drain()
    failed = Job.objects.exclude(status="SUCCESS").count()
    stats = pstats.Stats(profile)
    print(
        f"engine: {connection.vendor}, {JOBS} jobs, not SUCCESS: {failed}\n"
        f"per job: {cpu / JOBS * 1000:.2f} ms of CPU, {len(statements) / JOBS:.1f} statements, "
        f"{stats.total_calls / JOBS:,.0f} function calls (load {os.getloadavg()[0]:.2f})"
    )
    if TOP:
        stats.sort_stats("cumulative").print_stats(TOP)


if __name__ == "__main__":
    main()
