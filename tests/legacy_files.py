"""Build small legacy dashboard files, of each schema generation, for the import tests.

The schemas follow the facts of the legacy app: v1 has a FOREIGN KEY from jobs.user_id to a
users table, v2 dropped it, v3 added http_status, error_message and updated_at with ALTER TABLE.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_JOBS_COLUMNS = """
    job_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    action_code INTEGER,
    action_name TEXT,
    cluster_url TEXT,
    batch_id TEXT,
    request_payload TEXT,
    response_summary TEXT,
    status TEXT DEFAULT 'success',
    created_at TEXT DEFAULT CURRENT_TIMESTAMP"""

_CUSTOMERS = """
CREATE TABLE job_customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    FOREIGN KEY (job_id) REFERENCES jobs(job_id)
);
"""
# Apart from the tables, so that the benchmark's generator can add it after a bulk load.
CUSTOMERS_INDEX = "CREATE INDEX idx_job_customers_job ON job_customers(job_id);\n"

# The legacy jobs.db of each generation, as the samples in ../shared/legacy/ have them.
TABLES = {
    "v1": "CREATE TABLE users (user_id TEXT PRIMARY KEY, display_name TEXT);\n"
    f"CREATE TABLE jobs ({_JOBS_COLUMNS},\n"
    "    FOREIGN KEY (user_id) REFERENCES users(user_id)\n);" + _CUSTOMERS,
    "v2": f"CREATE TABLE jobs ({_JOBS_COLUMNS}\n);" + _CUSTOMERS,
    "v3": f"CREATE TABLE jobs ({_JOBS_COLUMNS}\n);"
    + _CUSTOMERS
    + "ALTER TABLE jobs ADD COLUMN http_status INTEGER;\n"
    "ALTER TABLE jobs ADD COLUMN error_message TEXT;\n"
    "ALTER TABLE jobs ADD COLUMN updated_at TEXT;\n",
}
SCHEMAS = {generation: tables + CUSTOMERS_INDEX for generation, tables in TABLES.items()}

AUDIT_SCHEMA = """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT DEFAULT CURRENT_TIMESTAMP,
    username TEXT,
    action TEXT,
    details TEXT,
    ip_address TEXT,
    status TEXT
);
"""

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
