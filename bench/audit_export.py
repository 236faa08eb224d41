r"""Measure the audit log's CSV export (/audit/export.csv) at a million entries: time and memory.

Run from the project root against a database of its own (never the development one):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_audit_bench.sqlite3 \
        .venv/bin/python bench/audit_export.py
    SECRET_KEY=bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_audit_bench \
        .venv/bin/python bench/audit_export.py --entries 1000000

The database is migrated, then an empty one is filled in two steps, each measured: first a
tenth of `--entries` (default 1,000,000), then the rest, so that one run compares the export
at N/10 and at N entries. The entries are written by raw SQL in chunks as bench/admin_data.py
writes its tables (its `Table`; only audit.services may create entries through the ORM,
tests/test_layout.py), with a fixed random seed: a mixture of events (job outcomes and
requests mostly, sign-ins, cluster, token and schedule changes), 40 actors, job ids on the
job events, IP addresses, and details of a few hundred bytes with "before" and "after" values
on the changes. A database that already has entries is measured once, as it is.

Each export is requested as the auditor `bench-auditor` through Django's test client, DEBUG
off: the client leaves a streamed response unread, and its `streaming_content` is read chunk
by chunk and thrown away, as a web server sends it. For the whole log and for one event
(`--event`, default job.failed) it prints the rows written (lines less the header), the bytes,
the seconds, and the memory of the process: its resident size before, its peak during the
export (Linux's VmHWM, reset before each export through /proc/self/clear_refs; elsewhere
ru_maxrss, which only shows growth past the process's earlier peak), ru_maxrss before the
reset and after the export (on Linux the reset lowers it too: after is the export's peak),
and the peak of Python's
own allocations during the export (tracemalloc, which slows the export: the seconds are
measured in a pass without it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import random
import resource
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The script's folder is on the path: the tables are written bench/admin_data.py's way.
from admin_data import Chain, Table, converters, positive, setup_django

SEED = 20_261_207
ACTORS = 40
CHUNK = 20_000
SPAN = dt.timedelta(days=365)
CLUSTERS = ["eu1", "eu2", "us1", "us2", "ap1", "staging"]
# Event, share of the entries: what a year of a busy dashboard writes.
EVENTS = [
    ("set_action.requested", 30),
    ("job.succeeded", 28),
    ("job.failed", 2),
    ("job.unknown", 0.5),
    ("job.cancelled", 0.5),
    ("job.retried", 1),
    ("credential.used", 20),
    ("approval.requested", 2),
    ("approval.approved", 1.8),
    ("auth.login", 8),
    ("auth.login_failed", 1),
    ("auth.logout", 3),
    ("cluster.changed", 0.5),
    ("api_token.created", 0.5),
    ("schedule.fired", 1),
    ("saved_set_action.changed", 0.2),
]
JOB_EVENTS = {name for name, _ in EVENTS if name.split(".")[0] in ("set_action", "job", "approval")}
PROC = Path("/proc/self")


def details(rng: random.Random, event: str, cluster: str) -> dict[str, Any]:
    """An entry's details, a few hundred bytes of JSON, as the services write them."""
    if event.endswith(".changed"):
        timeout = rng.choice([15, 30, 60])
        return {
            "before": {
                "name": cluster,
                "base_url": f"https://{cluster}.tms.bench.invalid",
                "timeout_seconds": timeout,
                "max_in_flight": rng.randint(1, 20),
                "notes": "Primary set-action endpoint of the region, owned by the TMS team.",
            },
            "after": {
                "name": cluster,
                "base_url": f"https://{cluster}-v2.tms.bench.invalid",
                "timeout_seconds": timeout * 2,
                "max_in_flight": rng.randint(1, 20),
                "notes": "Moved to the v2 endpoint; the old one answers until the end of month.",
            },
        }
    if event.startswith("auth."):
        return {
            "backend": rng.choice(["oidc", "break_glass"]),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Safari/537.36",
            "session": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        }
    customers = rng.randint(1, 500)
    return {
        "cluster": cluster,
        "action": rng.randint(1, 5),
        "customers": customers,
        "first_customers": [f"C{rng.randrange(1_000_000):07d}" for _ in range(min(customers, 8))],
        "http_status": rng.choice([200, 200, 200, 202, 409, 503]),
        "elapsed_ms": round(rng.lognormvariate(5.5, 0.6), 1),
        "reason": "Requested from the Set Action form after the customer's contract change.",
    }


def fill(*, first: int, last: int, total: int, progress: Callable[[str], None]) -> None:
    """Write entries number `first` to `last` - 1 of `total` over the last year, oldest first."""
    from django.contrib.auth import get_user_model

    from audit.models import AuditEntry

    rng = random.Random(SEED + first)  # noqa: S311  (repeatable data, not secrets)
    to_uuid, to_time = converters()
    actors = list(
        get_user_model().objects.filter(username__startswith="bench-user").order_by("username")
    )
    # A few busy actors and a long tail.
    actor_weights = [1 / rank for rank in range(1, len(actors) + 1)]
    names, weights = zip(*EVENTS, strict=True)
    table = Table(AuditEntry, Chain.COLUMNS)
    chain = Chain()
    start = dt.datetime.now(dt.UTC) - SPAN
    step = SPAN / total
    for chunk_start in range(first, last, CHUNK):
        rows = []
        for n in range(chunk_start, min(chunk_start + CHUNK, last)):
            event = rng.choices(names, weights)[0]
            actor = rng.choices(actors, actor_weights)[0]
            job = uuid.UUID(int=rng.getrandbits(128), version=4) if event in JOB_EVENTS else None
            rows.append(
                chain.link(
                    (
                        to_time(start + step * n),
                        actor.pk,
                        actor.username,
                        event,
                        to_uuid(job),
                        f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                        json.dumps(details(rng, event, rng.choice(CLUSTERS))),
                    )
                )
            )
        table.write(rows)
        progress(f"{chunk_start + len(rows):,} entries")


def bench_users(actors: int) -> Any:
    """The auditor who exports (in the Auditors group) and the actors of the entries."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    for n in range(1, actors + 1):
        User.objects.get_or_create(username=f"bench-user{n:02d}")
    auditor, _ = User.objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get(name="Auditors"))
    return auditor


def reset_peak() -> bool:
    """Reset the process's peak resident size (Linux 4.0+); False where it cannot be."""
    try:
        (PROC / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def resident(field: str) -> int:
    """VmRSS or VmHWM of the process in KiB, from /proc; ru_maxrss where there is no /proc."""
    try:
        for line in (PROC / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def export(client: Any, url: str, *, traced: bool) -> dict[str, float]:
    """Read the export at `url` chunk by chunk, keeping nothing; what it wrote and took."""
    gc.collect()
    before = resident("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_reset = reset_peak()
    if traced:
        tracemalloc.start()
    began = time.perf_counter()
    response = client.get(url)
    if response.status_code != 200 or not response.streaming:
        sys.exit(f"{url}: HTTP {response.status_code}, streamed {response.streaming}")
    lines = size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
    response.close()
    seconds = time.perf_counter() - began
    traced_peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": lines - 1,
        "bytes": size,
        "seconds": seconds,
        "rss_before": before,
        "peak": resident("VmHWM") if peak_reset else maxrss_after,
        "maxrss": (maxrss_before, maxrss_after),
        "traced_peak": traced_peak,
    }


def measure(client: Any, event: str) -> None:
    """Export the whole log and one event's entries; print the figures of each."""
    from audit.models import AuditEntry

    total = AuditEntry.objects.count()
    print(f"  {total:,} entries in the log", flush=True)
    for name, url, expected in [
        ("whole log", "/audit/export.csv", total),
        (f"event {event}", f"/audit/export.csv?event={event}", None),
    ]:
        timed = export(client, url, traced=False)
        traced = export(client, url, traced=True)
        if expected is None:
            expected = AuditEntry.objects.filter(event=event).count()
        if timed["rows"] != expected or traced["rows"] != expected:
            sys.exit(f"{name}: {timed['rows']:,} rows written, {expected:,} expected")
        print(
            f"    {name:<22} {timed['rows']:>9,} rows {timed['bytes'] / 2**20:8.1f} MiB "
            f"{timed['seconds']:7.1f} s ({timed['rows'] / timed['seconds']:,.0f} rows/s)  "
            f"RSS {traced['rss_before'] / 1024:.0f} MiB before, peak "
            f"{max(timed['peak'], traced['peak']) / 1024:.0f} MiB (ru_maxrss "
            f"{timed['maxrss'][0] / 1024:.0f} -> {timed['maxrss'][1] / 1024:.0f} MiB); "
            f"Python peak {traced['traced_peak'] / 2**20:.1f} MiB "
            f"(traced pass {traced['seconds']:.1f} s)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=positive, default=1_000_000, help="entries to write")
    parser.add_argument("--event", default="job.failed", help="the event of the filtered export")
    args = parser.parse_args(argv)
    setup_django()
    # One log line per request would bury the figures.
    logging.getLogger("tmsdash.requests").setLevel(logging.WARNING)

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from audit.models import AuditEntry

    call_command("migrate", verbosity=0)
    # Before the auditor signs in, which writes an entry.
    empty = not AuditEntry.objects.exists()
    # The test client's host, and DEBUG off as in production (see bench/admin_lists.py for
    # why not setup_test_environment()).
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False
    client = Client()
    client.force_login(bench_users(ACTORS))
    print(f"{connection.vendor}: the audit log's CSV export", flush=True)
    if not empty:
        measure(client, args.event)
        return
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # A throw-away database: no need to wait for the disk on every commit.
            cursor.execute("PRAGMA synchronous=OFF")
    began = time.monotonic()

    def progress(line: str) -> None:
        print(f"  {time.monotonic() - began:6.0f} s  {line}", flush=True)

    tenth = max(args.entries // 10, 1)
    for first, last in [(0, tenth), (tenth, args.entries)]:
        fill(first=first, last=last, total=args.entries, progress=progress)
        if connection.vendor == "postgresql":
            # What autovacuum does soon after a bulk load on a live server.
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {AuditEntry._meta.db_table}")
        measure(client, args.event)


if __name__ == "__main__":
    main()
