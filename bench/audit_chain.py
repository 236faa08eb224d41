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
of about 150 bytes. It prints the append rate, then walks the whole chain four ways in one run:
reading the rows only; the check as it was before the stored-text path (every entry's details
parsed and written canonically; the rows read as now); verify_chain in one process; and as
`manage.py verify_audit --workers N` does (N = `--workers`, default the number of cores), each
with its wall time, the CPU time of the process and its children (the database server's is
apart), the time its rate gives for 10,000,000 entries, and the ratios to the check as before.
First it profiles the check: the CPU time per entry of each of its steps over the first
`--profile` entries (default 200,000). A database that already has entries is only walked,
after `--grow-to N` appended entries in raw SQL (the same kind, chained the same way, in
minutes rather than hours) until it holds N.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
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


def grow(total: int, batch: int = 50_000) -> None:
    """Append entries in raw SQL until the chain holds `total`: the same kind of rows and the
    same chain as `fill`'s (audit.chain's hash of each), written without the ORM, so that a
    chain of 10,000,000 takes minutes to make rather than hours. Only the walk is measured
    on such a chain, never the append."""
    from django.db import connection, transaction

    from audit.chain import canonical, canonical_details, chain_head, entry_hash

    rng = random.Random(SEED + 1)  # noqa: S311  (repeatable data, not secrets)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    postgres = connection.vendor == "postgresql"
    columns = "created_at, actor_username, event, job_id, ip_address, details, seq, prev_hash, hash"
    insert = f"INSERT INTO audit_auditentry ({columns}) VALUES ({', '.join(['%s'] * 9)})"  # noqa: S608
    began = time.perf_counter()
    with connection.cursor() as cursor:
        seq, prev = chain_head(cursor)
    first = seq
    while seq < total:
        rows = []
        for _ in range(min(batch, total - seq)):
            seq += 1
            event = rng.choice(EVENTS)
            at = start + dt.timedelta(seconds=seq * 3)
            username = f"operator{rng.randrange(40)}"
            job = uuid.UUID(int=rng.getrandbits(128)) if event != "auth.login" else None
            ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            details = canonical_details(
                {
                    "cluster": rng.choice(["eu1", "eu2", "us1"]),
                    "action": rng.randrange(1, 40),
                    "cids": rng.randrange(1, 5000),
                    "reason": "x" * rng.randrange(20, 80),
                }
            )
            hash_ = entry_hash(prev, canonical(seq, at, username, event, job, ip, details))
            stored_at = at.isoformat(sep=" ") if postgres else f"{at:%Y-%m-%d %H:%M:%S.%f}"
            stored_job = (str(job) if postgres else job.hex) if job else None
            rows.append((stored_at, username, event, stored_job, ip, details, seq, prev, hash_))
            prev = hash_
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(insert, rows)
        print(f"\r  grown to {seq:,}", end="", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - began
    print(f"\ngrow: {seq - first:,} entries in {seconds:.1f} s (raw SQL; not the append's speed)")


def reference_walk() -> int:
    """The walk as it was before the stored-text path: every entry's details parsed and
    written canonically, in one process. Returns the entries checked (all, or it exits)."""
    from audit.chain import GENESIS, canonical, entry_hash
    from audit.verify import stored_rows

    expected_seq, expected_prev = 1, GENESIS
    for _, seq, at, username, event, job_id, ip, details, prev_hash, hash_ in stored_rows():
        content = canonical(seq, at, username, event, job_id, ip, details)
        if (
            seq != expected_seq
            or prev_hash != expected_prev
            or hash_ != entry_hash(prev_hash, content)
        ):
            sys.exit(f"the chain is broken at seq {seq}")
        expected_seq, expected_prev = seq + 1, hash_
    return expected_seq - 1


def profile(sample: int) -> None:
    """CPU time per entry of each step of the check, on the chain's first `sample` entries
    (read once, then each step run over all of them)."""
    from itertools import islice

    from audit.chain import canonical_details, canonical_time, content, entry_hash
    from audit.verify import content_matches, stored_rows

    began = time.process_time()
    rows = list(islice(stored_rows(), sample))
    steps = {"reading the rows (this process's part)": time.process_time() - began}
    for label, step in [
        ("the moment as canonical text", lambda r: canonical_time(r[2])),
        ("the details parsed and written canonically", lambda r: canonical_details(r[7])),
        ("the content joined, details as stored", lambda r: content(*r[1:8])),
        ("SHA-256 of link and details text", lambda r: entry_hash(r[8], r[7])),
        ("the whole check of an entry (content_matches)", content_matches),
    ]:
        began = time.process_time()
        for row in rows:
            step(row)
        steps[label] = time.process_time() - began
    print(f"profile, CPU per entry over {len(rows):,} entries:")
    for label, seconds in steps.items():
        print(f"  {label}: {seconds / len(rows) * 1e6:.2f} us")


def timed(label: str, walk) -> float:
    """Run a walk; print its wall time and CPU time (this process's and its children's)."""
    began, cpu = time.perf_counter(), cpu_seconds()
    checked = walk()
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    rate = checked / seconds
    print(
        f"  {label}: {checked:,} entries in {seconds:.1f} s wall ({rate:,.0f}/s), "
        f"{cpu:.1f} s CPU; 10,000,000 entries at that rate: {10_000_000 / rate:.0f} s"
    )
    return seconds


def cpu_seconds() -> float:
    me, children = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.user + me.system + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=positive, default=1_000_000)
    parser.add_argument("--batch", type=positive, default=10_000)
    parser.add_argument("--workers", type=positive, default=os.cpu_count() or 1)
    parser.add_argument("--profile", type=positive, default=200_000, metavar="SAMPLE")
    parser.add_argument("--grow-to", type=positive, metavar="ENTRIES")
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from audit.models import AuditEntry
    from audit.verify import stored_rows, verify_chain
    from audit.verify_parts import verify_chain_at_once

    def checked(verdict) -> int:
        if not verdict.ok:
            sys.exit(f"the chain is broken: {verdict.broken}")
        return verdict.checked

    call_command("migrate", verbosity=0)
    if not AuditEntry.objects.exists():
        fill(args.entries, args.batch)
    if args.grow_to:
        grow(args.grow_to)
    print(f"on {connection.vendor}, load average {os.getloadavg()[0]:.1f}")
    profile(args.profile)
    print("walks:")
    timed("reading the rows only", lambda: sum(1 for _ in stored_rows()))
    reference = timed("the check as before (details parsed for every entry)", reference_walk)
    one = timed("verify_chain, one process", lambda: checked(verify_chain()))
    parts = timed(
        f"verify_audit --workers {args.workers}",
        lambda: checked(verify_chain_at_once(workers=args.workers)),
    )
    print(
        f"  as before / one process: {reference / one:.2f}; "
        f"as before / {args.workers} processes: {reference / parts:.2f}; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
