r"""Time the admin's pages on a database filled by bench/admin_data.py.

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_admin_bench.sqlite3 \
        .venv/bin/python bench/admin_lists.py

Each page is rendered through Django's test client as the superuser `bench-admin`: once to warm
the caches, then `--runs` times. It prints, per page, the median and the slowest time and the
number of queries; `--explain` adds each query's plan. It writes nothing but what signing in
writes (a session, the sign-in's audit entry).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent


def positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return value


def pages() -> list[tuple[str, str]]:
    """(name, URL) of the pages measured, with search terms and ids taken from the data."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from audit.models import AuditEntry
    from jobs.models import Cluster, Job, JobCustomer

    jobs = reverse("admin:jobs_job_changelist")
    failed = reverse("admin:jobs_failedjob_changelist")
    audit = reverse("admin:audit_auditentry_changelist")
    middle = Job.objects.count() // 2
    sample = Job.objects.order_by("created_at")[middle : middle + 1].get()
    cid = JobCustomer.objects.filter(job=sample).values_list("cid", flat=True)[0]
    legacy = Job.objects.exclude(legacy_id="").order_by("created_at").first()
    # The busiest operator of the generated data: about a quarter of all jobs.
    busiest = get_user_model().objects.get(username="bench-op01")
    retired = Cluster.objects.get(name="retired").pk
    eu1 = Cluster.objects.get(name="eu1").pk
    year, month = sample.created_at.year, sample.created_at.month
    return [
        ("Failed jobs", failed),
        ("Failed jobs, page 50", f"{failed}?p=50"),
        (
            "Failed jobs, cluster eu1, HTTP 503",
            f"{failed}?cluster__id__exact={eu1}&http_status=503",
        ),
        ("Jobs", jobs),
        ("Jobs, page 100", f"{jobs}?p=100"),
        ("Jobs, status SUCCESS", f"{jobs}?status__exact=SUCCESS"),
        ("Jobs, action PE-Direct", f"{jobs}?action__exact=5"),
        ("Jobs, rare old cluster", f"{jobs}?cluster__id__exact={retired}"),
        ("Jobs, HTTP 504", f"{jobs}?http_status=504"),
        ("Jobs, no HTTP answer", f"{jobs}?http_status=none"),
        ("Jobs, busiest operator", f"{jobs}?user__id__exact={busiest.pk}"),
        ("Jobs, created this month", f"{jobs}?{this_month()}"),
        ("Jobs, date hierarchy month", f"{jobs}?created_at__year={year}&created_at__month={month}"),
        (
            "Jobs, FAILED and cluster and action",
            f"{jobs}?status__exact=FAILED&cluster__id__exact={eu1}&action__exact=2",
        ),
        ("Search customer ID", f"{jobs}?q={cid}"),
        ("Search job id prefix (8)", f"{jobs}?q={str(sample.pk)[:8]}"),
        ("Search whole job id", f"{jobs}?q={sample.pk}"),
        ("Search busiest operator", f"{jobs}?q={busiest.username}"),
        ("Search legacy id", f"{jobs}?q={legacy.legacy_id}"),
        ("Search customer ID in failed jobs", f"{failed}?q={cid}"),
        ("Job page", reverse("admin:jobs_job_change", args=[sample.pk])),
        ("Customers of a job", f"{reverse('admin:jobs_jobcustomer_changelist')}?job={sample.pk}"),
        ("Audit log", audit),
        ("Audit log, event job.failed", f"{audit}?event__exact={AuditEntry.Event.JOB_FAILED}"),
        ("Audit log, search busiest actor", f"{audit}?q={busiest.username}"),
        ("Audit log, search job id", f"{audit}?q={sample.pk}"),
        ("Admin index", reverse("admin:index")),
    ]


def this_month() -> str:
    """The query string of the "This month" choice of the created date filter."""
    from django.utils import timezone

    start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return urlencode({"created_at__gte": str(start), "created_at__lt": str(end)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=5, help="timed renders of each page")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--only", default="", help="measure only pages whose name contains this")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the database filled by bench/admin_data.py.")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    print(f"{connection.vendor}: median and slowest of {args.runs} renders, queries per render")
    for name, url in pages():
        if args.only.lower() not in name.lower():
            continue
        client.get(url)
        times = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                began = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                sys.exit(f"{name}: HTTP {response.status_code} for {url}")
        print(
            f"  {name:<42} {statistics.median(times):7.1f} ms {max(times):7.1f} ms "
            f"{len(queries):3d} queries"
        )
        if args.explain:
            explain(queries.captured_queries)


def explain(queries: list[dict]) -> None:
    from django.db import connection

    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ANALYZE "
    for query in queries:
        sql = query["sql"]
        if not sql.startswith("SELECT") or "django_session" in sql:
            continue
        print(f"    [{query['time']} s] {sql[:300]}")
        with connection.cursor() as cursor:
            cursor.execute(prefix + sql)
            for row in cursor.fetchall():
                print("      " + " ".join(str(cell) for cell in row))


if __name__ == "__main__":
    main()
