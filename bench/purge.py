r"""Measure purge_jobs and restore_jobs (jobs.services.retention, .restore) at --jobs ended jobs.

Run from the project root against a database of its own (never the development one):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_purge_bench.sqlite3 \
        .venv/bin/python bench/purge.py --jobs 100000
    SECRET_KEY=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_purge_bench \
        .venv/bin/python bench/purge.py --jobs 100000

The database is migrated and emptied of jobs, then filled with --jobs jobs that ended 400 days
ago (two customers each, counted in the per-hour counts) and as many that ended yesterday. It
prints the seconds to purge the old ones into an archive (with its size), the longest batch
transaction (what the web and the workers may wait for), and the seconds to restore them all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

# The script's folder is on the path.
from admin_data import positive, setup_django


def fill(count: int, ended: dt.datetime) -> None:
    from django.contrib.auth.models import User

    from jobs.models import Job, JobCustomer
    from jobs.services import count_jobs_added, ended_job
    from lib.chunks import batched

    user, _ = User.objects.get_or_create(username="bench-operator")
    for chunk in batched(range(count), 5000):
        jobs = Job.objects.bulk_create(
            Job(
                user=user,
                action=Job.Action.T_ENABLE,
                cluster_url="http://127.0.0.1:9100",
                status="FAILED" if n % 4 == 0 else "SUCCESS",
                created_at=ended - dt.timedelta(seconds=n),
                started_at=ended - dt.timedelta(seconds=n),
                finished_at=ended - dt.timedelta(seconds=n) + dt.timedelta(seconds=2),
                customer_count=2,
                request_payload={"cids": [f"C{n}-1", f"C{n}-2"]},
            )
            for n in chunk
        )
        JobCustomer.objects.bulk_create(
            JobCustomer(job=job, cid=f"C{n}-{c}", outcome="SUCCESS")
            for n, job in zip(chunk, jobs, strict=True)
            for c in (1, 2)
        )
        count_jobs_added(ended_job(job) for job in jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=positive, default=100_000)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from jobs.models import Job, JobCustomer
    from jobs.services import jobs_purge, jobs_restore
    from jobs.services import retention as retention_module

    call_command("migrate", verbosity=0)
    JobCustomer.objects.all().delete()
    Job.objects.all().delete()
    now = timezone.now()
    started = time.perf_counter()
    fill(args.jobs, now - dt.timedelta(days=400))
    fill(args.jobs, now - dt.timedelta(days=1))
    print(
        f"{connection.vendor}: filled {2 * args.jobs} jobs in {time.perf_counter() - started:.1f} s"
    )

    longest = [0.0]
    delete_batch = retention_module._delete_batch

    def timed(records, report):
        began = time.perf_counter()
        delete_batch(records, report)
        longest[0] = max(longest[0], time.perf_counter() - began)

    retention_module._delete_batch = timed
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "jobs.jsonl.gz"
        started = time.perf_counter()
        report = jobs_purge(cutoff=now - dt.timedelta(days=365), archive=archive)
        purge_seconds = time.perf_counter() - started
        size = archive.stat().st_size
        print(
            f"purge: {report.purged} jobs in {purge_seconds:.1f} s "
            f"({report.purged / purge_seconds:.0f} jobs/s), archive {size / 1e6:.1f} MB, "
            f"longest batch transaction {longest[0] * 1000:.0f} ms"
        )
        started = time.perf_counter()
        restored = jobs_restore(archive=archive)
        restore_seconds = time.perf_counter() - started
        print(f"restore: {len(restored.restored)} jobs in {restore_seconds:.1f} s")


if __name__ == "__main__":
    main()
