"""The legacy dashboard's SQLite schema, stated once: what the importer reads, and what the tests
and the benchmark build legacy files from.

Three generations of `jobs.db` exist: v1 has a FOREIGN KEY from jobs.user_id to a users table,
v2 dropped it, v3 added http_status, error_message and updated_at with ALTER TABLE (so they sit
at the end). `audit.db` has one table, audit_log.
"""

from __future__ import annotations

# The jobs table's columns in every generation, in table order, with their declarations.
JOB_COLUMNS = (
    ("job_id", "TEXT PRIMARY KEY"),
    ("user_id", "TEXT NOT NULL"),
    ("action_code", "INTEGER"),
    ("action_name", "TEXT"),
    ("cluster_url", "TEXT"),
    ("batch_id", "TEXT"),
    ("request_payload", "TEXT"),
    ("response_summary", "TEXT"),
    ("status", "TEXT DEFAULT 'success'"),
    ("created_at", "TEXT DEFAULT CURRENT_TIMESTAMP"),
)
# Added by v3 with ALTER TABLE.
V3_JOB_COLUMNS = (
    ("http_status", "INTEGER"),
    ("error_message", "TEXT"),
    ("updated_at", "TEXT"),
)
# audit_log's columns after its `id INTEGER PRIMARY KEY AUTOINCREMENT`.
AUDIT_COLUMNS = (
    ("timestamp", "TEXT DEFAULT CURRENT_TIMESTAMP"),
    ("username", "TEXT"),
    ("action", "TEXT"),
    ("details", "TEXT"),
    ("ip_address", "TEXT"),
    ("status", "TEXT"),
)


def _declare(columns: tuple[tuple[str, str], ...]) -> str:
    return ",\n".join(f"    {name} {declaration}" for name, declaration in columns)


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
    f"CREATE TABLE jobs (\n{_declare(JOB_COLUMNS)},\n"
    "    FOREIGN KEY (user_id) REFERENCES users(user_id)\n);" + _CUSTOMERS,
    "v2": f"CREATE TABLE jobs (\n{_declare(JOB_COLUMNS)}\n);" + _CUSTOMERS,
    "v3": f"CREATE TABLE jobs (\n{_declare(JOB_COLUMNS)}\n);"
    + _CUSTOMERS
    + "".join(f"ALTER TABLE jobs ADD COLUMN {name} {decl};\n" for name, decl in V3_JOB_COLUMNS),
}
SCHEMAS = {generation: tables + CUSTOMERS_INDEX for generation, tables in TABLES.items()}

AUDIT_SCHEMA = f"""
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
{_declare(AUDIT_COLUMNS)}
);
"""
