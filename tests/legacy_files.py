"""Build small legacy dashboard files, of each schema generation, for the import tests.

The schemas are the importer's own, in legacy.schema.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from legacy.schema import AUDIT_SCHEMA, SCHEMAS

CLUSTER_URL = "https://tms-east.example.internal:8443"


def legacy_job(**fields: Any) -> dict[str, Any]:
    """A legacy job row; `cids` become its job_customers rows. v3 columns only when given."""
    cids = fields.pop("cids", ["CUST1", "CUST2"])
    action = fields.get("action_name", "Trans-Begin")
    row = {
        "job_id": str(uuid.uuid4()),
        "user_id": "alice",
        "action_code": 1,
        "action_name": action,
        "cluster_url": CLUSTER_URL,
        "batch_id": None,
        "request_payload": json.dumps({"action": action, "cids": cids, "url": CLUSTER_URL}),
        "response_summary": "",
        "status": "success",
        "created_at": "2026-01-29 10:00:00",
    }
    row.update(fields)
    row["cids"] = cids
    return row


def write_jobs_db(
    path: Path,
    jobs: Iterable[dict[str, Any]],
    *,
    generation: str = "v3",
    orphans: Iterable[tuple[str, str]] = (),
    users: Iterable[str] = (),
) -> Path:
    """Write a legacy jobs.db of `generation` holding `jobs` and the `orphans` (job_id, cid)."""
    con = sqlite3.connect(path)
    with con:
        con.executescript(SCHEMAS[generation])
        if generation == "v1":
            con.executemany("INSERT INTO users VALUES (?, ?)", [(u, u.title()) for u in users])
        for job in jobs:
            row = {key: value for key, value in job.items() if key != "cids"}
            con.execute(
                f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            con.executemany(
                "INSERT INTO job_customers (job_id, cid) VALUES (?, ?)",
                [(job["job_id"], cid) for cid in job["cids"]],
            )
        con.executemany("INSERT INTO job_customers (job_id, cid) VALUES (?, ?)", list(orphans))
    con.close()
    return path


def audit_row(**fields: Any) -> dict[str, Any]:
    row = {
        "timestamp": "2026-01-29 10:00:00",
        "username": "alice",
        "action": "SET_ACTION",
        "details": json.dumps({"action": "Trans-Begin", "cid_count": 2}),
        "ip_address": "10.9.91.40",
        "status": "success",
    }
    row.update(fields)
    return row


def write_audit_db(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    con = sqlite3.connect(path)
    with con:
        con.executescript(AUDIT_SCHEMA)
        for row in rows:
            con.execute(
                f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
    con.close()
    return path
