"""Keeping the per-hour counts of ended jobs (jobs.models.stats) in step with the jobs table.

Every change adds to the counts with an upsert, `INSERT ... ON CONFLICT ... DO UPDATE SET count
= count + excluded.count` (the same SQL on SQLite and PostgreSQL): the database adds under the
row's lock, so two jobs ending at once in the same hour both count. A job counts once it has
one of `ENDED_STATUSES` statuses, in the hour `count_hour` says and in the 6 hours and the day that
hold it, in everyone's rows and its operator's, under its action and all actions (0); its call
time counts when it was started. Ending a job (`_end`) counts it in the same transaction;
removing jobs (dedupe_jobs) and importing them (import_legacy) change the counts in theirs.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.db import connection

from jobs.models import ENDED_STATUSES, JobCallTimeHour, JobOutcomeHour
from jobs.models.stats import (
    ALL_ACTIONS,
    EVERYONE,
    NO_CLUSTER,
    SPANS,
    call_time_bucket,
    count_hour,
    span_start,
)
from lib.chunks import batched

# Rows an upsert statement adds to, 7 parameters each (under every SQLite's limit of 999); a
# job's end, 12 rows in each table (everyone's and its operator's, its action's and every
# action's, in each span), is one statement. An import's many rows as one executemany of
# single rows cost PostgreSQL a statement's execution for each row.
ROWS_PER_STATEMENT = 100


class EndedJob(NamedTuple):
    """What the counts need of an ended job."""

    status: str
    user_id: int
    cluster_id: int | None
    action: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _upsert_sql(model, key: str, rows: int) -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * rows)
    columns = f"user_id, span_hours, hour, cluster_id, action, {key}"
    return (
        f"INSERT INTO {table} ({columns}, count) "  # noqa: S608
        f"VALUES {values} ON CONFLICT ({columns}) "
        f"DO UPDATE SET count = {table}.count + excluded.count"
    )


def _add(model, key: str, deltas: Counter) -> None:
    """Add each (user_id, span_hours, hour, cluster_id, action, key value) -> delta of
    `deltas`, ROWS_PER_STATEMENT rows a statement: a job's end is one."""
    rows = [(*dims, delta) for dims, delta in deltas.items() if delta]
    if not rows:
        return
    # A chunk of an import holds each span's start on many rows: each is adapted once.
    adapt = functools.cache(connection.ops.adapt_datetimefield_value)
    with connection.cursor() as cursor:
        for batch in batched(rows, ROWS_PER_STATEMENT):
            cursor.execute(
                _upsert_sql(model, key, len(batch)),
                [v for u, s, h, c, a, k, n in batch for v in (u, s, adapt(h), c, a, k, n)],
            )


def _deltas(jobs: Iterable[EndedJob], sign: int) -> tuple[Counter, Counter]:
    outcomes: Counter = Counter()
    call_times: Counter = Counter()
    # Many jobs of a chunk of an import end in the same hours: each start is worked out once.
    start = functools.cache(span_start)
    for job in jobs:
        if job.status not in ENDED_STATUSES:
            continue
        hour = count_hour(job.finished_at, job.created_at)
        cluster = job.cluster_id or NO_CLUSTER
        timed = job.started_at is not None and job.finished_at is not None
        bucket = call_time_bucket(job.started_at, job.finished_at) if timed else None
        for user, action, span in itertools.product(
            (EVERYONE, job.user_id), (ALL_ACTIONS, job.action), SPANS
        ):
            dims = (user, span, start(hour, span), cluster, action)
            outcomes[(*dims, job.status)] += sign
            if timed:
                call_times[(*dims, bucket)] += sign
    return outcomes, call_times


def _apply(jobs: Iterable[EndedJob], sign: int) -> None:
    outcomes, call_times = _deltas(jobs, sign)
    _add(JobOutcomeHour, "outcome", outcomes)
    _add(JobCallTimeHour, "bucket", call_times)


def count_jobs_added(jobs: Iterable[EndedJob]) -> None:
    """Count these jobs (ended ones; the others are passed over). Call it in the transaction
    that writes them: ending one, importing them."""
    _apply(jobs, 1)


def count_jobs_removed(jobs: Iterable[EndedJob]) -> None:
    """Take these jobs out of the counts. Call it in the transaction that deletes them."""
    _apply(jobs, -1)


def ended_job(job) -> EndedJob:
    """The EndedJob of a Job instance, as it is now."""
    return EndedJob(
        status=job.status,
        user_id=job.user_id,
        cluster_id=job.cluster_id,
        action=job.action,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
