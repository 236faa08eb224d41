r"""Measure purge_audit (audit.retention) at --entries old audit entries.

Run from the project root against a new database of its own (the audit trail cannot be
emptied: start from a missing SQLite file, or a PostgreSQL database just created):

    rm -f /tmp/tms_purge_audit_bench.sqlite3
    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_purge_audit_bench.sqlite3 \
        .venv/bin/python bench/purge_audit.py --entries 100000

The database is migrated and filled with --entries audit entries written 400 days ago and a
tenth as many written yesterday. It prints the seconds to purge the old ones into an archive
(with its size), the longest batch transaction (what a writer of the audit trail may wait for:
each batch holds the chain's lock), and the seconds to verify the chain from its anchor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

# The script's folder is on the path.
from admin_data import positive, setup_django


def fill(count: int, written: dt.datetime) -> None:
    from audit.models import AuditEntry
    from audit.services import audit_bulk_append
    from lib.chunks import batched

    for chunk in batched(range(count), 5000):
        audit_bulk_append(
            [
                AuditEntry(
                    event=AuditEntry.Event.JOB_SUCCEEDED,
                    actor_username="bench-operator",
                    job_id="0b8f5e3c-9a2d-4f4e-8b7a-6c5d4e3f2a1b",
                    created_at=written + dt.timedelta(seconds=n),
                    ip_address="127.0.0.1",
                    details={"customers": 2, "cluster": "http://127.0.0.1:9100", "n": n},
                )
                for n in chunk
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=positive, default=100_000)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from audit import retention as retention_module
    from audit.models import AuditEntry
    from audit.retention import audit_purge
    from audit.verify import verify_chain

    call_command("migrate", verbosity=0)
    if AuditEntry.objects.exists():
        sys.exit("the audit trail is not empty: use a new database")
    now = timezone.now()
    started = time.perf_counter()
    fill(args.entries, now - dt.timedelta(days=400))
    fill(args.entries // 10, now - dt.timedelta(days=1))
    print(f"{connection.vendor}: filled in {time.perf_counter() - started:.1f} s")

    longest = [0.0]
    delete_batch = retention_module._delete_batch

    def timed(rows, report, anchor):
        began = time.perf_counter()
        anchor = delete_batch(rows, report, anchor)
        longest[0] = max(longest[0], time.perf_counter() - began)
        return anchor

    retention_module._delete_batch = timed
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "audit.jsonl.gz"
        started = time.perf_counter()
        report = audit_purge(cutoff=now - dt.timedelta(days=365), archive=archive)
        seconds = time.perf_counter() - started
        print(
            f"purge: {report.purged} entries in {seconds:.1f} s "
            f"({report.purged / seconds:.0f} entries/s), archive "
            f"{archive.stat().st_size / 1e6:.1f} MB, longest batch transaction "
            f"{longest[0] * 1000:.0f} ms"
        )
    started = time.perf_counter()
    verdict = verify_chain()
    print(
        f"verify from the anchor: {verdict.checked} entries in "
        f"{time.perf_counter() - started:.1f} s, ok={verdict.ok}"
    )


if __name__ == "__main__":
    main()
