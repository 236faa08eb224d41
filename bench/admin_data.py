r"""Fill a database with jobs, customers and audit entries for the admin benchmark.

Run from the project root against a database of its own (never the development one):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_admin_bench.sqlite3 \
        .venv/bin/python bench/admin_data.py
    SECRET_KEY=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_admin_bench \
        .venv/bin/python bench/admin_data.py

It migrates the database, then writes (by default) 1,000,000 jobs over two years, about
5,000,000 customer rows and one audit entry per job, with a fixed random seed so that both
engines hold the same data. Rows go in by raw `executemany` on SQLite and `COPY` on PostgreSQL,
in time order as a live system writes them. A database that already has jobs is left alone:
generate once, then run bench/admin_lists.py as often as needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 20_000
SEED = 20_261_123
OPERATORS = 40
CUSTOMER_POPULATION = 1_000_000
SPAN = dt.timedelta(days=730)
# Name, weight. "retired" ran jobs only during the first months: a rare value whose rows are
# all old, the case where walking the newest rows first finds nothing for a long time.
CLUSTERS = [
    ("eu1", 30),
    ("eu2", 20),
    ("us1", 20),
    ("us2", 10),
    ("ap1", 8),
    ("ap2", 6),
    ("sa1", 5),
    ("retired", 1),
]
FAILED_HTTP = [400, 401, 404, 409, 422, 429, 500, 502, 503, 504, None]


def positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return value


def setup_django() -> None:
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the benchmark database; the development one is never used.")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()


class Table:
    """Writes rows of one model's table; columns a generator does not give get their default."""

    def __init__(self, model: Any, given: Sequence[str]) -> None:
        from django.db import connection

        self.table = model._meta.db_table
        fields = [
            f for f in model._meta.concrete_fields if not (f.primary_key and f.attname == "id")
        ]
        if model._meta.pk.attname in given:
            fields.insert(0, model._meta.pk)
        self.columns = [f.column for f in fields]
        self.given = list(given)
        self.defaults = {
            f.attname: f.get_db_prep_save(f.get_default(), connection)
            for f in fields
            if f.attname not in given
        }
        self.order = [f.attname for f in fields]

    def rows(self, values: Iterable[Sequence[Any]]) -> Iterator[list[Any]]:
        for row in values:
            record = dict(self.defaults)
            record.update(zip(self.given, row, strict=True))
            yield [record[name] for name in self.order]

    def write(self, values: Iterable[Sequence[Any]]) -> None:
        from django.db import connection, transaction

        columns = ", ".join(self.columns)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN") as copy:
                    for row in self.rows(values):
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(
                    f"INSERT INTO {self.table} ({columns}) VALUES ({marks})",  # noqa: S608
                    list(self.rows(values)),
                )


class Chain:
    """Links rows of audit entries (created_at, actor_id, actor_username, event, job_id,
    ip_address, details as JSON) into the audit trail's hash chain (audit.chain) from its head,
    as audit.services would: each row gets its seq, prev_hash and hash."""

    COLUMNS = [
        "created_at",
        "actor_id",
        "actor_username",
        "event",
        "job_id",
        "ip_address",
        "details",
        "seq",
        "prev_hash",
        "hash",
    ]

    def __init__(self) -> None:
        from django.db import connection

        from audit.chain import chain_head

        with connection.cursor() as cursor:
            self.seq, self.hash = chain_head(cursor)

    def link(self, row: tuple) -> tuple:
        from audit.chain import canonical, entry_hash

        created_at, _actor, username, event, job_id, ip_address, details = row
        self.seq += 1
        prev_hash = self.hash
        content = canonical(self.seq, created_at, username, event, job_id, ip_address, details)
        self.hash = entry_hash(prev_hash, content)
        return (*row, self.seq, prev_hash, self.hash)


def converters() -> tuple[Callable[[uuid.UUID | None], Any], Callable[[dt.datetime], Any]]:
    """How a UUID and an aware datetime are stored by the current engine."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return (lambda u: u), (lambda t: t)
    return (lambda u: u.hex if u else None), connection.ops.adapt_datetimefield_value


def generate(*, jobs: int, progress: Callable[[str], None]) -> dict[str, int]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from audit.models import AuditEntry
    from jobs.models import Cluster, Job, JobCustomer

    rng = random.Random(SEED)  # noqa: S311  (repeatable data, not secrets)
    to_uuid, to_time = converters()
    User = get_user_model()
    operators = [
        User.objects.create_user(username=f"bench-op{n:02d}", password=None)
        for n in range(1, OPERATORS + 1)
    ]
    User.objects.create_superuser(username="bench-admin", password=None)
    clusters = [
        Cluster.objects.create(name=name, base_url=f"https://{name}.tms.bench.invalid")
        for name, _ in CLUSTERS
    ]
    cluster_weights = [weight for _, weight in CLUSTERS]
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
            "status",
            "http_status",
            "error_message",
            "request_payload",
            "customer_count",
            "legacy_id",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ],
    )
    customer_table = Table(JobCustomer, ["job_id", "cid", "outcome"])
    audit_table = Table(AuditEntry, Chain.COLUMNS)
    chain = Chain()
    outcome_event = {
        Job.Status.SUCCESS: AuditEntry.Event.JOB_SUCCEEDED,
        Job.Status.FAILED: AuditEntry.Event.JOB_FAILED,
        Job.Status.UNKNOWN: AuditEntry.Event.JOB_UNKNOWN,
        Job.Status.IN_PROGRESS: AuditEntry.Event.SET_ACTION_REQUESTED,
    }
    start = dt.datetime.now(dt.UTC) - SPAN
    step = SPAN / jobs
    legacy_until = jobs // 5
    retired_until = jobs // 6
    totals = {"jobs": 0, "customers": 0, "audit entries": 0}

    for first in range(0, jobs, CHUNK):
        job_rows, customer_rows, audit_rows = [], [], []
        for n in range(first, min(first + CHUNK, jobs)):
            job_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            created = start + step * n + dt.timedelta(seconds=rng.random())
            finished = created + dt.timedelta(seconds=1 + rng.random() * 5)
            cluster = rng.choices(clusters, cluster_weights)[0]
            while cluster.name == "retired" and n > retired_until:
                cluster = rng.choices(clusters, cluster_weights)[0]
            user = rng.choices(operators, operator_weights)[0]
            roll = rng.random()
            if roll < 0.05:
                status, http = Job.Status.FAILED, rng.choice(FAILED_HTTP)
                error = (
                    f"The cluster answered HTTP {http}: request refused"
                    if http
                    else "No answer from the cluster within 30 s"
                )
            elif roll < 0.06:
                status, http, error = Job.Status.UNKNOWN, None, "The worker stopped mid-call"
            elif roll < 0.061:
                status, http, error = Job.Status.IN_PROGRESS, None, ""
            else:
                status, http, error = Job.Status.SUCCESS, 200, ""
            cids = {f"C{rng.randrange(CUSTOMER_POPULATION):07d}" for _ in range(rng.randint(1, 9))}
            action = rng.randint(1, 5)
            job_rows.append(
                (
                    to_uuid(job_id),
                    user.pk,
                    action,
                    cluster.pk,
                    cluster.base_url,
                    status,
                    http,
                    error,
                    json.dumps({"action": action, "customers": len(cids)}),
                    len(cids),
                    f"L{n + 1}" if n < legacy_until else "",
                    to_time(created),
                    None if status == Job.Status.IN_PROGRESS else to_time(created),
                    None if status == Job.Status.IN_PROGRESS else to_time(finished),
                    to_time(finished),
                )
            )
            outcome = "SUCCESS" if status == Job.Status.SUCCESS else None
            customer_rows.extend((to_uuid(job_id), cid, outcome) for cid in sorted(cids))
            audit_rows.append(
                chain.link(
                    (
                        to_time(finished),
                        user.pk,
                        user.username,
                        outcome_event[status],
                        to_uuid(job_id),
                        "10.0.0.1",
                        json.dumps({"cluster": cluster.name, "http_status": http}),
                    )
                )
            )
        job_table.write(job_rows)
        customer_table.write(customer_rows)
        audit_table.write(audit_rows)
        totals["jobs"] += len(job_rows)
        totals["customers"] += len(customer_rows)
        totals["audit entries"] += len(audit_rows)
        progress(f"{totals['jobs']:,} jobs, {totals['customers']:,} customers")

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What autovacuum does soon after a bulk load on a live server: statistics for the
            # planner and a visibility map for index-only scans.
            for table in (job_table.table, customer_table.table, audit_table.table):
                cursor.execute(f"VACUUM ANALYZE {table}")
    # SQLite gets no ANALYZE: Django never runs it, so the admin must do without statistics.
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=positive, default=1_000_000, help="jobs to write")
    args = parser.parse_args(argv)
    setup_django()

    from django.core.management import call_command
    from django.db import connection

    from jobs.models import Job

    call_command("migrate", verbosity=0)
    existing = Job.objects.count()
    if existing:
        print(f"{connection.vendor}: the database already has {existing:,} jobs; nothing written.")
        return
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # A throw-away database: no need to wait for the disk on every commit.
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
    began = time.monotonic()
    totals = generate(
        jobs=args.jobs,
        progress=lambda line: print(f"  {time.monotonic() - began:6.0f} s  {line}", flush=True),
    )
    written = ", ".join(f"{count:,} {name}" for name, count in totals.items())
    print(f"{connection.vendor}: wrote {written} in {time.monotonic() - began:.0f} s.")


if __name__ == "__main__":
    main()
