r"""Time the Overview page, its live updates and GET /api/v1/stats at a million jobs.

Run from the project root against a database of its own (never the development one):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_overview_bench.sqlite3 \
        .venv/bin/python bench/overview.py
    SECRET_KEY=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_overview_bench \
        .venv/bin/python bench/overview.py

An empty database is filled first (a few minutes): by default 1,000,000 jobs over the last
30 days, by 50 operators on 10 clusters with the 5 actions, about 5,000,000 customer rows,
with a fixed random seed so that both engines hold the same data, written by raw SQL as
bench/admin_data.py writes them (its `Table`); then the per-hour counts are filled by the
counting of migration 0020 (`count_ended_jobs`), as a deployment that migrates gets them,
and PostgreSQL's tables are vacuumed and analyzed. The newest jobs are still in flight
(queued, running, waiting for their cluster's limit, waiting for an approval), as on a live
system. A database that already has jobs is measured as it is.

Each request goes through Django's test client (DEBUG off), once to warm the caches, then
`--runs` times; it prints the median, the 95th percentile (nearest rank), the slowest time,
the queries per request and the status codes answered: the page as the auditor
`bench-auditor` (everyone's jobs) for each period, with a cluster filter, with an action
filter; as the busiest operator `bench-op01` (their own jobs); the live region with the
version the page just gave (204 while nothing changed) and with a stale one (it renders), the
former also as an operator with no job in flight; and
the API for 24 hours and 30 days with a token of the auditor (one token per URL measured, so
the read rate limit is never reached). On a busy machine the wall times say more of the
machine than of the code: each line ends with the median and 95th percentile of this
process's CPU time a request (SQLite's work included; PostgreSQL's is in its server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import math
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from importlib import import_module
from typing import Any

# The script's folder is on the path: the data of bench/admin_data.py, written its way.
from admin_data import Table, converters, positive, setup_django
from admin_lists import percentile

SEED = 20_261_206
OPERATORS = 50
CUSTOMER_POPULATION = 1_000_000
SPAN = dt.timedelta(days=30)
CHUNK = 20_000
# Name, share of the jobs, share of the jobs sent that fail, median call time in ms.
CLUSTERS = [
    ("eu1", 22, 0.02, 180),
    ("eu2", 15, 0.03, 220),
    ("eu3", 8, 0.02, 250),
    ("us1", 15, 0.04, 320),
    ("us2", 10, 0.03, 300),
    ("us3", 6, 0.05, 450),
    ("ap1", 8, 0.04, 600),
    ("ap2", 6, 0.06, 700),
    ("sa1", 5, 0.08, 900),
    ("staging", 5, 0.15, 1_500),
]
FAILED_HTTP = [400, 404, 409, 422, 429, 500, 502, 503, 504]
TIMEOUT_SECONDS = 30
# Jobs created within this long before now are still in flight.
IN_FLIGHT = dt.timedelta(minutes=2)


def generate(*, jobs: int, progress) -> dict[str, int]:
    """Write `jobs` jobs over the last 30 days and their customers; return what was written."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from jobs.models import Cluster, Job, JobCustomer

    rng = random.Random(SEED)  # noqa: S311  (repeatable data, not secrets)
    to_uuid, to_time = converters()
    User = get_user_model()
    operators = [
        User.objects.create_user(username=f"bench-op{n:02d}", password=None)
        for n in range(1, OPERATORS + 1)
    ]
    auditor = User.objects.create_user(username="bench-auditor", password=None)
    auditor.groups.add(Group.objects.get(name="Auditors"))
    clusters = [
        (Cluster.objects.create(name=name, base_url=f"https://{name}.tms.bench.invalid"), *rest)
        for name, *rest in CLUSTERS
    ]
    cluster_weights = [weight for _, weight, _, _ in clusters]
    # A few busy operators and a long tail, as in a real team.
    operator_weights = [1 / rank for rank in range(1, OPERATORS + 1)]
    job_table = Table(
        Job,
        [
            "id",
            "user_id",
            "action",
            "cluster_id",
            "cluster_url",
            "timeout_seconds",
            "status",
            "waiting_for",
            "waiting_since",
            "http_status",
            "error_message",
            "request_payload",
            "customer_count",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ],
    )
    customer_table = Table(JobCustomer, ["job_id", "cid", "outcome"])
    now = dt.datetime.now(dt.UTC)
    start = now - SPAN
    step = SPAN / jobs
    totals: Counter = Counter()
    for first in range(0, jobs, CHUNK):
        job_rows, customer_rows = [], []
        for n in range(first, min(first + CHUNK, jobs)):
            job_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            created = start + step * n + dt.timedelta(seconds=rng.random() * step.total_seconds())
            cluster, _, failing, median_ms = rng.choices(clusters, cluster_weights)[0]
            user = rng.choices(operators, operator_weights)[0]
            action = rng.randint(1, 5)
            job = ended(rng, created, failing, median_ms)
            if now - created < IN_FLIGHT or (job[2] and job[2] > now):
                job = in_flight(rng, created, now, job)
            status, started, finished, http, error, waiting_for = job
            cids = {f"C{rng.randrange(CUSTOMER_POPULATION):07d}" for _ in range(rng.randint(1, 9))}
            job_rows.append(
                (
                    to_uuid(job_id),
                    user.pk,
                    action,
                    cluster.pk,
                    cluster.base_url,
                    TIMEOUT_SECONDS,
                    status,
                    waiting_for,
                    to_time(created) if waiting_for else None,
                    http,
                    error,
                    json.dumps({"action": action, "customers": len(cids)}),
                    len(cids),
                    to_time(created),
                    to_time(started) if started else None,
                    to_time(finished) if finished else None,
                    to_time(finished or started or created),
                )
            )
            outcome = "SUCCESS" if status == Job.Status.SUCCESS else None
            customer_rows.extend((to_uuid(job_id), cid, outcome) for cid in sorted(cids))
            totals[status] += 1
        job_table.write(job_rows)
        customer_table.write(customer_rows)
        totals["jobs"] += len(job_rows)
        totals["customers"] += len(customer_rows)
        progress(f"{totals['jobs']:,} jobs, {totals['customers']:,} customers")
    return dict(totals)


def ended(rng: random.Random, created: dt.datetime, failing: float, median_ms: float) -> tuple:
    """(status, started, finished, HTTP status, error, waiting for) of a job that ended."""
    started = created + dt.timedelta(seconds=rng.expovariate(2))
    call = dt.timedelta(milliseconds=rng.lognormvariate(math.log(median_ms), 0.6))
    roll = rng.random()
    if roll < 0.01:
        return "CANCELLED", None, created + dt.timedelta(seconds=rng.uniform(1, 120)), None, "", ""
    if roll < 0.013:
        return "DENIED", None, created + dt.timedelta(minutes=rng.uniform(1, 60)), None, "", ""
    if roll < 0.015:
        return "EXPIRED", None, created + dt.timedelta(hours=24), None, "", ""
    if roll < 0.02:
        # The worker stopped mid-call: ended by recovery, a few minutes later.
        finished = started + dt.timedelta(minutes=rng.uniform(2, 5))
        return "UNKNOWN", started, finished, None, "The worker stopped mid-call", ""
    if rng.random() < failing:
        if rng.random() < 0.3:
            finished = started + dt.timedelta(seconds=TIMEOUT_SECONDS)
            error = f"No answer from the cluster within {TIMEOUT_SECONDS} s"
            return "FAILED", started, finished, None, error, ""
        http = rng.choice(FAILED_HTTP)
        error = f"The cluster answered HTTP {http}: request refused"
        return "FAILED", started, started + call, http, error, ""
    return "SUCCESS", started, started + call, 200, "", ""


def in_flight(rng: random.Random, created: dt.datetime, now: dt.datetime, job: tuple) -> tuple:
    """The job as it is now: a job created in the last minutes may wait for an approval or its
    cluster's limit; one whose end is still to come waits for its approval, its call or a
    worker."""
    status, started, finished, *_ = job
    roll = rng.random() if now - created < IN_FLIGHT else 1
    if roll < 0.05 or (status in ("DENIED", "EXPIRED") and finished > now):
        return "PENDING_APPROVAL", None, None, None, "", ""
    if roll < 0.15:
        return "IN_PROGRESS", None, None, None, "", "cluster"
    if finished and finished <= now:
        return job
    if started and started <= now:
        return "IN_PROGRESS", started, None, None, "", ""
    return "IN_PROGRESS", None, None, None, "", ""


def fill(jobs: int) -> None:
    """Fill an empty benchmark database, its per-hour counts included."""
    from django.apps import apps
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # A throw-away database: no need to wait for the disk on every commit.
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
    began = time.monotonic()
    totals = generate(
        jobs=jobs,
        progress=lambda line: print(f"  {time.monotonic() - began:6.0f} s  {line}", flush=True),
    )
    print(f"{connection.vendor}: wrote {totals} in {time.monotonic() - began:.0f} s.", flush=True)
    began = time.monotonic()
    counting = import_module("jobs.migrations.0020_job_stats")
    with connection.schema_editor() as editor:
        counting.count_ended_jobs(apps, editor)
    print(f"  counted in {time.monotonic() - began:.0f} s", flush=True)
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a bulk load on a live server.
        with connection.cursor() as cursor:
            for table in ("jobs_job", "jobs_jobcustomer", "jobs_joboutcomehour"):
                cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("VACUUM ANALYZE jobs_jobcalltimehour")


def requests_measured() -> list[tuple[str, str, str, dict]]:
    """(name, user, URL, headers) of each request timed, with ids from the data."""
    from django.contrib.auth import get_user_model

    from api.tokens import token_create, tokens_revoke_all
    from jobs.models import Cluster

    eu1 = Cluster.objects.get(name="eu1").pk
    auditor = get_user_model().objects.get(username="bench-auditor")
    # The last run's tokens, so that runs never reach the limit of live tokens per user.
    tokens_revoke_all(user=auditor, reason="bench/overview.py ran again")

    def bearer() -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=auditor, name='bench').secret}"}

    return [
        ("Page, everyone, 24h", "auditor", "/overview/", {}),
        ("Page, everyone, 7d", "auditor", "/overview/?period=7d", {}),
        ("Page, everyone, 30d", "auditor", "/overview/?period=30d", {}),
        ("Page, everyone, 24h, cluster eu1", "auditor", f"/overview/?cluster={eu1}", {}),
        ("Page, everyone, 30d, cluster eu1", "auditor", f"/overview/?period=30d&cluster={eu1}", {}),
        ("Page, everyone, 30d, action 5", "auditor", "/overview/?period=30d&action=5", {}),
        ("Page, operator, 24h", "operator", "/overview/", {}),
        ("Page, operator, 30d", "operator", "/overview/?period=30d", {}),
        ("Live, everyone, 24h, current v", "auditor", "/overview/?part=live&v=", {}),
        ("Live, everyone, 30d, current v", "auditor", "/overview/?period=30d&part=live&v=", {}),
        ("Live, operator, 24h, current v", "operator", "/overview/?part=live&v=", {}),
        ("Live, quiet operator, 24h, current v", "quiet", "/overview/?part=live&v=", {}),
        ("Live, quiet operator, 30d, current v", "quiet", "/overview/?period=30d&part=live&v=", {}),
        ("Page, quiet operator, 30d", "quiet", "/overview/?period=30d", {}),
        ("Live, everyone, 24h, stale v", "auditor", "/overview/?part=live&v=stale", {}),
        ("Live, everyone, 30d, stale v", "auditor", "/overview/?period=30d&part=live&v=stale", {}),
        ("API, everyone, 24h", "api", "/api/v1/stats?period=24h", bearer()),
        ("API, everyone, 30d", "api", "/api/v1/stats?period=30d", bearer()),
        (
            "API, everyone, 30d, cluster eu1",
            "api",
            "/api/v1/stats?period=30d&cluster=eu1",
            bearer(),
        ),
    ]


def bench_users() -> dict[str, Any]:
    """The auditor, the busiest operator, and the busiest operator with no job waiting to
    start (none queued, none waiting for its cluster's limit), each in their group."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from jobs.models import Job

    User = get_user_model()
    operators = Group.objects.get(name="Operators")
    waiting = Job.objects.in_progress().filter(started_at__isnull=True).values("user_id")
    quiet = User.objects.filter(username__startswith="bench-op").exclude(pk__in=waiting)
    users = {
        "auditor": User.objects.get(username="bench-auditor"),
        "operator": User.objects.get(username="bench-op01"),
        "quiet": quiet.order_by("username").first(),
    }
    for key in ("operator", "quiet"):
        users[key].groups.add(operators)
    return users


def current_version(client: Any, url: str) -> str:
    """The version the page at `url` (without part and v) writes into its live region."""
    page = client.get(url.replace("part=live&v=", "").rstrip("?&"))
    found = re.search(r"part=live&amp;v=([0-9a-f]+)", page.content.decode())
    if not found:
        sys.exit(f"No live version in the page of {url}")
    return found.group(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=positive, default=1_000_000, help="jobs to write")
    parser.add_argument("--runs", type=positive, default=200, help="timed requests of each")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="measure only requests whose name has this (again: or this)",
    )
    args = parser.parse_args(argv)
    setup_django()
    # One log line per request would bury the figures.
    logging.getLogger("tmsdash.requests").setLevel(logging.WARNING)

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from jobs.models import Job

    call_command("migrate", verbosity=0)
    if not Job.objects.exists():
        fill(args.jobs)
    # The test client's host, and DEBUG off as in production (see bench/admin_lists.py for
    # why not setup_test_environment()).
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False
    clients = {"api": Client()}
    for key, user in bench_users().items():
        clients[key] = Client()
        clients[key].force_login(user)
    print(
        f"{connection.vendor}: {Job.objects.count():,} jobs; median, 95th percentile and "
        f"slowest of {args.runs} requests, queries per request, status codes"
    )
    # As the web server does once a worker has loaded the dashboard (tmsdash/gunicorn.py).
    gc.freeze()
    for name, who, url, headers in requests_measured():
        if args.only and not any(only.lower() in name.lower() for only in args.only):
            continue
        client = clients[who]
        live = url.endswith("v=")
        if live:
            url += current_version(client, url)
        client.get(url, **headers)
        times, cpu, codes = [], [], Counter()
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                began, began_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, **headers)
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - began_cpu) * 1000)
            codes[response.status_code] += 1
            if response.status_code not in (200, 204):
                sys.exit(f"{name}: HTTP {response.status_code} for {url}")
        median, p95 = statistics.median(times), percentile(times, 0.95)
        answered = ", ".join(f"{count} x {code}" for code, count in sorted(codes.items()))
        print(
            f"  {name:<36} {median:7.1f} ms {p95:7.1f} ms {max(times):7.1f} ms "
            f"{len(queries):3d} queries  {answered}  CPU {statistics.median(cpu):.1f} ms, "
            f"p95 {percentile(cpu, 0.95):.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
