r"""Time the admin's lists and the operators' jobs list on a database from bench/admin_data.py.

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_admin_bench.sqlite3 \
        .venv/bin/python bench/admin_lists.py

Each page is rendered through Django's test client, once to warm the caches, then `--runs`
times: the admin's as the superuser `bench-admin`, the jobs list (the operator UI's
/jobs/) as the busiest operator `bench-op01`, who sees only their own jobs, and as the auditor
`bench-auditor`, who sees everyone's. It prints, per page, the median, the 95th percentile
(nearest rank) and the slowest time and the number of queries; `--explain` adds each query's
plan. It writes nothing but what signing in writes (a session, the sign-in's audit entry) and,
the first time, the auditor and the operator's place in the Operators group.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent


def positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return value


def admin_pages() -> list[tuple[str, str]]:
    """(name, URL) of the admin's pages measured, with search terms and ids taken from the data."""
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


def job_list_pages(user: Any) -> list[tuple[str, str]]:
    """(name, URL) of the jobs list's pages measured for `user`: each of its filters alone,
    a combination, a page far down and a job id prefix, with values taken from the data."""
    from django.urls import reverse

    from jobs.models import Cluster, Job

    url = reverse("job_list")
    visible = Job.objects.visible_to(user)
    middle = visible.count() // 2
    sample = visible.order_by("created_at")[middle : middle + 1].get()
    retired = Cluster.objects.get(name="retired").pk
    eu1 = Cluster.objects.get(name="eu1").pk
    statuses = [(f"Jobs, status {s}", f"{url}?status={s}") for s in Job.Status.values]
    return [
        ("Jobs", url),
        ("Jobs, page 100", f"{url}?page=100"),
        ("Jobs, last page (200)", f"{url}?page=200"),
        *statuses,
        ("Jobs, cluster eu1", f"{url}?cluster={eu1}"),
        ("Jobs, rare old cluster", f"{url}?cluster={retired}"),
        ("Jobs, action PE-Direct", f"{url}?action=5"),
        ("Jobs, FAILED and cluster and action", f"{url}?status=FAILED&cluster={eu1}&action=2"),
        ("Jobs, FAILED and rare old cluster", f"{url}?status=FAILED&cluster={retired}"),
        ("Jobs, created in one month", f"{url}?{one_month(sample.created_at)}"),
        ("Search job id prefix (8)", f"{url}?q={str(sample.pk)[:8]}"),
        *(
            [("Jobs, busiest operator", f"{url}?operator=bench-op01")]
            if user.has_perm("jobs.view_all_jobs")
            else []
        ),
    ]


def one_month(moment: dt.datetime) -> str:
    """The query string of the jobs list's dates for the calendar month of `moment`."""
    first = moment.date().replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return urlencode({"created_from": first.isoformat(), "created_to": last.isoformat()})


def bench_users() -> dict[str, Any]:
    """The users each list is read as: the superuser, the busiest operator and an auditor."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    operator = User.objects.get(username="bench-op01")
    operator.groups.add(Group.objects.get(name="Operators"))
    auditor, _ = User.objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get(name="Auditors"))
    return {
        "admin": User.objects.get(username="bench-admin"),
        "operator": User.objects.get(pk=operator.pk),
        "auditor": User.objects.get(pk=auditor.pk),
    }


def percentile(times: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest time at least `share` of the runs took."""
    ordered = sorted(times)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def this_month() -> str:
    """The query string of the "This month" choice of the created date filter."""
    from django.utils import timezone

    start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return urlencode({"created_at__gte": str(start), "created_at__lt": str(end)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=20, help="timed renders of each page")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--only", default="", help="measure only pages whose name contains this")
    parser.add_argument(
        "--lists",
        default="admin,operator,auditor",
        help="which lists to measure, comma-separated: admin, operator, auditor",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the database filled by bench/admin_data.py.")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()
    # One log line per request would bury the figures.
    logging.getLogger("tmsdash.requests").setLevel(logging.WARNING)

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # The test client's host, and DEBUG off as in production. Not setup_test_environment(): it
    # makes every template render keep its context for the test client, thousands of objects
    # in reference cycles per page that production never makes, and whose collection by the
    # garbage collector's oldest generation added 150 ms to about one render in ten.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False
    users = bench_users()
    wanted = {name.strip() for name in args.lists.split(",")}
    lists = [
        ("admin", "admin, as bench-admin", admin_pages),
        (
            "operator",
            "jobs list, as the operator bench-op01",
            lambda: job_list_pages(users["operator"]),
        ),
        (
            "auditor",
            "jobs list, as the auditor bench-auditor",
            lambda: job_list_pages(users["auditor"]),
        ),
    ]
    print(
        f"{connection.vendor}: median, 95th percentile and slowest of {args.runs} renders, "
        "queries per render"
    )
    for key, title, pages in lists:
        if key not in wanted:
            continue
        print(title)
        client = Client()
        client.force_login(users[key])
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
            median, p95 = statistics.median(times), percentile(times, 0.95)
            print(
                f"  {name:<42} {median:7.1f} ms {p95:7.1f} ms {max(times):7.1f} ms "
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
