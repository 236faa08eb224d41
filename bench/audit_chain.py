r"""Measure the audit trail's hash chain: appending entries through audit_bulk_append (the
legacy importer's path) and walking the chain with verify_audit's walk, at a million entries.

Run from the project root against a database of its own (never the development one):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_chain_bench.sqlite3 \
        .venv/bin/python bench/audit_chain.py
    SECRET_KEY=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_chain_bench \
        .venv/bin/python bench/audit_chain.py --entries 1000000

The database is migrated; an empty one is filled with `--entries` (default 1,000,000) entries
through audit.services.audit_bulk_append, `--batch` (default 10,000) per transaction as the
importer does, with a fixed random seed: job events with job ids and IP addresses, and details
of about 150 bytes. It prints the append rate, then walks the whole chain (audit.verify,
as `manage.py verify_audit` does) and prints its time, its rate, the CPU time of the process
(the database server's is apart) and the time that rate gives for 10,000,000 entries. A
database that already has entries is only walked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20_261_207
EVENTS = ["job.succeeded", "job.failed", "set_action.requested", "auth.login", "job.unknown"]


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


def fill(entries: int, batch: int) -> None:
    from django.db import transaction

    from audit.models import AuditEntry
    from audit.services import audit_bulk_append

    rng = random.Random(SEED)  # noqa: S311  (repeatable data, not secrets)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    began = time.perf_counter()
    for first in range(0, entries, batch):
        rows = []
        for n in range(first, min(first + batch, entries)):
            event = rng.choice(EVENTS)
            rows.append(
                AuditEntry(
                    created_at=start + dt.timedelta(seconds=n * 3),
                    actor_username=f"operator{rng.randrange(40)}",
                    event=event,
                    job_id=uuid.UUID(int=rng.getrandbits(128)) if event != "auth.login" else None,
                    ip_address=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                    details={
                        "cluster": rng.choice(["eu1", "eu2", "us1"]),
                        "action": rng.randrange(1, 40),
                        "cids": rng.randrange(1, 5000),
                        "reason": "x" * rng.randrange(20, 80),
                    },
                )
            )
        with transaction.atomic():
            audit_bulk_append(rows)
        done = min(first + batch, entries)
        print(f"\r  appended {done:,}", end="", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - began
    print(f"\nappend: {entries:,} entries in {seconds:.1f} s ({entries / seconds:,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=positive, default=1_000_000)
    parser.add_argument("--batch", type=positive, default=10_000)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AuditEntry
    from audit.verify import verify_chain

    call_command("migrate", verbosity=0)
    if not AuditEntry.objects.exists():
        fill(args.entries, args.batch)
    began, cpu = time.perf_counter(), time.process_time()
    verdict = verify_chain()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    if not verdict.ok:
        sys.exit(f"the chain is broken: {verdict.broken}")
    rate = verdict.checked / seconds
    print(
        f"verify on {connection.vendor}: {verdict.checked:,} entries in {seconds:.1f} s "
        f"({rate:,.0f}/s; {cpu:.1f} s of this process's CPU); 10,000,000 entries at that "
        f"rate: {10_000_000 / rate:.0f} s"
    )


if __name__ == "__main__":
    main()
