"""Write a large legacy jobs.db (v3 schema) for the import and dedupe benchmarks.

    python bench/legacy_generate.py [--jobs 1000000] [--out /tmp/legacy_bench/jobs.db]
                                    [--audit-rows 0]

About three customers per job, a copy made by the double-submit bug for about 2% of the jobs
(0.3-1.8 s after the server's job, the page's summary, no HTTP status), every timestamp format
the legacy app wrote, some jobs known only by an action name, some ids that are not UUIDs,
a token in every payload and a few customer rows whose job is gone. With --audit-rows, also
an audit.db next to it (sign-ins and Set Actions, some details holding a password). Seeded:
the same arguments write the same files. Takes under a minute for a million jobs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The legacy schema is stated once, in legacy.schema.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from legacy.schema import AUDIT_SCHEMA, CUSTOMERS_INDEX, TABLES

ACTIONS = [
    (1, "Trans-Begin"),
    (2, "PE-Enable"),
    (3, "T-Enable"),
    (4, "PE-Finalize"),
    (5, "PE-Direct"),
]
NAME_ONLY = ["tran-begin", "Trans-Begin", "pe-enable", "PE-Finalize"]
CLUSTERS = ["https://tms-east.example.internal:8443", "https://tms-west.example.internal:8443/"]
USERS = [f"operator{n:02d}" for n in range(40)]
BATCH = 50_000


def _time_text(moment: dt.datetime, rng: random.Random) -> str:
    # The formats the legacy app wrote (see the legacy README); the base times are UTC, and
    # the benchmark imports with --timezone UTC so the copies stay 0.3-1.8 s after their jobs.
    kind = rng.random()
    if kind < 0.3:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if kind < 0.9:
        return moment.isoformat(timespec="microseconds")
    return moment.isoformat(timespec="seconds") + "+00:00"


def generate(path: Path, jobs: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + TABLES["v3"])
    moment = dt.datetime(2025, 1, 1)
    job_rows: list[tuple] = []
    customer_rows: list[tuple] = []
    written = customers = 0

    def flush() -> None:
        con.executemany("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", job_rows)
        con.executemany("INSERT INTO job_customers (job_id, cid) VALUES (?, ?)", customer_rows)
        job_rows.clear()
        customer_rows.clear()

    while written < jobs:
        moment += dt.timedelta(seconds=rng.uniform(0.5, 60))
        if rng.random() < 0.001:
            job_id = f"legacy-{written}"
        else:
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        user = rng.choice(USERS)
        code, name = rng.choice(ACTIONS)
        if rng.random() < 0.02:
            code, name = None, rng.choice(NAME_ONLY)
        cluster = rng.choice(CLUSTERS)
        cids = [f"CUST{rng.randrange(100_000):05d}" for _ in range(rng.choice((1, 2, 3, 3, 4, 5)))]
        cid_list = ", ".join(f'"{cid}"' for cid in cids)
        payload = (
            f'{{"action": "{name}", "cids": [{cid_list}], "url": "{cluster}", '
            f'"token": "tok-{rng.getrandbits(64):016x}"}}'
        )
        roll = rng.random()
        if roll < 0.85:
            status, http, summary, error = (
                "SUCCESS",
                200,
                f"Cluster accepted request for {len(cids)} customer(s)",
                None,
            )
        elif roll < 0.95:
            status, http, summary, error = (
                "FAILED",
                401,
                None,
                "API returned status 401: Unauthorized",
            )
        elif roll < 0.98:
            status, http, summary, error = "IN_PROGRESS", None, None, None
        else:
            status, http, summary, error = None, rng.choice((200, 502)), None, None
        updated = moment + dt.timedelta(seconds=1)
        job_rows.append(
            (
                job_id,
                user,
                code,
                name,
                cluster,
                None,
                payload,
                summary,
                status,
                _time_text(moment, rng),
                http,
                error,
                updated.isoformat(timespec="microseconds"),
            )
        )
        customer_rows.extend((job_id, cid) for cid in cids)
        written += 1
        customers += len(cids)
        if rng.random() < 0.02 and written < jobs:
            # The page's copy of the same submission, as the double-submit bug made it.
            copy_at = moment + dt.timedelta(seconds=rng.uniform(0.3, 1.8))
            copy_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            job_rows.append(
                (
                    copy_id,
                    user,
                    code,
                    name,
                    cluster,
                    None,
                    payload,
                    f"Successfully processed {len(cids)} customer(s)",
                    "success",
                    copy_at.isoformat(timespec="microseconds"),
                    None,
                    None,
                    None,
                )
            )
            shuffled = cids[:]
            rng.shuffle(shuffled)
            customer_rows.extend((copy_id, cid) for cid in shuffled)
            written += 1
            customers += len(cids)
        if rng.random() < 0.0005:
            customer_rows.append((f"gone-{written}", "CUST00000"))
            customers += 1
        if len(job_rows) >= BATCH:
            flush()
    flush()
    con.executescript(CUSTOMERS_INDEX)
    con.commit()
    con.close()
    return written, customers


def generate_audit(path: Path, rows: int, seed: int = 11) -> None:
    rng = random.Random(seed)  # noqa: S311 (sample data, not secrets)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + AUDIT_SCHEMA)
    moment = dt.datetime(2025, 1, 1)
    batch: list[tuple] = []
    for n in range(rows):
        moment += dt.timedelta(seconds=rng.uniform(1, 60))
        if rng.random() < 0.2:
            action, details = "LOGIN", f'{{"user": "x", "password": "pw-{n}"}}'
        else:
            code, name = rng.choice(ACTIONS)
            action, details = "SET_ACTION", f'{{"action": "{name}", "cid_count": {code}}}'
        batch.append(
            (
                moment.strftime("%Y-%m-%d %H:%M:%S"),
                rng.choice(USERS),
                action,
                details,
                f"10.9.{rng.randrange(256)}.{rng.randrange(256)}",
                "success",
            )
        )
        if len(batch) >= BATCH:
            con.executemany(
                "INSERT INTO audit_log (timestamp, username, action, details, ip_address, status)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                batch,
            )
            batch.clear()
    con.executemany(
        "INSERT INTO audit_log (timestamp, username, action, details, ip_address, status)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        batch,
    )
    con.commit()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "legacy_bench" / "jobs.db"
    )
    parser.add_argument("--audit-rows", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    jobs, customers = generate(args.out, args.jobs)
    print(
        f"wrote {args.out}: {jobs:,} jobs, {customers:,} customer rows "
        f"in {time.monotonic() - started:.1f} s"
    )
    if args.audit_rows:
        audit = args.out.with_name("audit.db")
        generate_audit(audit, args.audit_rows)
        print(f"wrote {audit}: {args.audit_rows:,} audit rows")


if __name__ == "__main__":
    main()
