"""Counts kept in the database: one row per metric and set of labels, incremented in place,
so that they are exact whichever process or host increments or reads them."""

from __future__ import annotations

import functools
import json

from django.db import connection

from ops.models import Counter

SIGNIN_FAILURES = "tmsdash_signin_failures_total"
JOBS_ENDED = "tmsdash_jobs_total"
REAPED = "tmsdash_reaped_total"
# Approval requests made, and ended by outcome (ops.receivers).
APPROVALS = "tmsdash_approvals_total"
# The call-duration histogram, kept per bucket (not cumulative, so that a job's end updates one
# row), with its sum; ops.metrics adds the buckets up.
CALLS_IN_BUCKET = "tmsdash_call_duration_seconds_in_bucket"
CALL_SECONDS = "tmsdash_call_duration_seconds_sum"
# Database outages a long-running process (worker, housekeeping) rode out, and the attempts it
# made again during them (lib.outage), counted once the database is back.
OUTAGES = "tmsdash_database_outages_total"
RETRIED = "tmsdash_database_retries_total"


def counter_increment(name: str, labels: dict[str, str] | None = None, amount: float = 1) -> None:
    counters_increment([(name, labels or {}, amount)])


def counters_increment(increments: list[tuple[str, dict[str, str], float]]) -> None:
    """Add each (name, labels, amount) to its counter, creating those not counted yet, in one
    statement (an upsert, `INSERT ... ON CONFLICT (key) DO UPDATE SET value = value +
    excluded.value`, the same SQL on SQLite and PostgreSQL): the database adds under each row's
    lock, so two processes counting at once both count. The rows are written in the order of
    their keys, the same in every transaction, so that two of them never wait on each other."""
    rows: dict[str, list] = {}
    for name, labels, amount in increments:
        key = name + json.dumps(labels, sort_keys=True)
        if key in rows:
            rows[key][3] += amount
        else:
            rows[key] = [key, name, labels, amount]
    if not rows:
        return
    prepare = Counter._meta.get_field("labels").get_db_prep_save
    params = []
    for key in sorted(rows):
        _, name, labels, amount = rows[key]
        params += [key, name, prepare(labels, connection), amount]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(connection.vendor, len(rows)), params)


@functools.cache
def _upsert_sql(vendor: str, rows: int) -> str:
    """The upsert of `rows` counters, built once per engine and size (`vendor` keys the cache:
    the quoting is the connection's)."""
    quote = connection.ops.quote_name
    table = quote(Counter._meta.db_table)
    key, value = quote("key"), quote("value")
    values = ", ".join(["(%s, %s, %s, %s)"] * rows)
    return (
        f"INSERT INTO {table} ({key}, {quote('name')}, {quote('labels')}, {value}) "  # noqa: S608
        f"VALUES {values} ON CONFLICT ({key}) "
        f"DO UPDATE SET {value} = {table}.{value} + excluded.{value}"
    )


def counter_values(name: str) -> list[tuple[dict[str, str], float]]:
    """Every set of labels counted under `name`, with its value, in a stable order."""
    rows = Counter.objects.filter(name=name).order_by("key").values_list("labels", "value")
    return list(rows)
