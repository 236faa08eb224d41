"""A cluster's call slots (its `max_concurrent_calls`): taking a free one for a claim, and,
when a call ends and frees one, waking the oldest job waiting for it."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime

from django.db import connection
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from jobs.models import InFlightCall, Job

Status = Job.Status

# How many times a claim looks for a free call slot that others keep taking first.
SLOT_ROUNDS = 10
# How many of the oldest waiting jobs a wake-up considers, skipping those already woken.
WAKE_LOOKAHEAD = 20


def _take_call_slot(job_id: uuid.UUID, cluster_id: int, limit: int, now: datetime) -> bool:
    """Take a free slot of the cluster's `limit` (its `max_concurrent_calls`); False when none
    is free.

    One statement takes the lowest slot free when it runs (`_TAKE`). Two workers may both see
    it free; the unique (cluster, slot) lets one have it, and the other's insert does nothing
    (on PostgreSQL after waiting for the first to commit or roll back). Then it looks at the
    slots taken: when one is free still, it tries again, so a slot released in the meantime is
    not missed.
    """
    job = InFlightCall._meta.get_field("job").get_db_prep_save(job_id, connection)
    started = InFlightCall._meta.get_field("started_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        for _ in range(SLOT_ROUNDS):
            cursor.execute(
                _take_sql(connection.vendor),
                [cluster_id, job, started, cluster_id, limit, cluster_id],
            )
            if cursor.fetchone() is not None:
                return True
            taken = set(
                InFlightCall.objects.filter(cluster_id=cluster_id).values_list("slot", flat=True)
            )
            if all(slot in taken for slot in range(limit)):
                return False
    return False


@functools.cache
def _take_sql(vendor: str) -> str:
    """Taking the cluster's lowest free slot below its limit, on both engines: the lowest free
    slot is 0 or one past a taken one. Built once per engine (`vendor` keys the cache: the
    quoting is the connection's); its parameters are the cluster, the job, the start, the
    cluster, the limit and the cluster again."""
    quote = connection.ops.quote_name
    table = quote(InFlightCall._meta.db_table)
    cluster, slot = quote("cluster_id"), quote("slot")
    return (
        f"INSERT INTO {table} ({cluster}, {slot}, {quote('job_id')}, {quote('started_at')}) "  # noqa: S608
        "SELECT %s, free.s, %s, %s FROM "
        f"(SELECT 0 AS s UNION SELECT {slot} + 1 FROM {table} WHERE {cluster} = %s) AS free "
        f"WHERE free.s < %s AND free.s NOT IN (SELECT {slot} FROM {table} WHERE {cluster} = %s) "
        f"ORDER BY free.s LIMIT 1 ON CONFLICT ({cluster}, {slot}) DO NOTHING RETURNING {slot}"
    )


def _wake_next_waiting(cluster_id: int, now: datetime) -> bool:
    """A call to the cluster ended: bring forward the task of its oldest waiting job not
    already woken, so that a worker tries it next; True when it woke one. Taking the task id
    off the job is the compare-and-set that keeps two ending calls from waking the same job.

    The look for waiting jobs, made at every job's end and mostly finding none, is a plain
    SELECT through a cursor (`_waiting_sql`)."""
    with connection.cursor() as cursor:
        cursor.execute(_waiting_sql(connection.vendor), [cluster_id, Status.IN_PROGRESS])
        waiting = cursor.fetchall()
    for job_id, task_id in waiting:
        if not Job.objects.filter(pk=job_id, waiting_task_id=task_id).update(waiting_task_id=None):
            continue
        if DBTaskResult.objects.filter(pk=task_id, status=TaskResultStatus.READY).update(
            run_after=now
        ):
            return True
    return False


@functools.cache
def _waiting_sql(vendor: str) -> str:
    """The cluster's WAKE_LOOKAHEAD oldest waiting jobs not already woken, (id, waiting task
    id); its parameters are the cluster and IN_PROGRESS. Built once per engine (`vendor` keys
    the cache: the quoting is the connection's)."""
    quote = connection.ops.quote_name
    return (
        f"SELECT {quote('id')}, {quote('waiting_task_id')} FROM {quote(Job._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('cluster_id')} = %s AND {quote('status')} = %s "
        f"AND {quote('waiting_since')} IS NOT NULL AND {quote('waiting_task_id')} IS NOT NULL "
        f"ORDER BY {quote('created_at')} LIMIT {WAKE_LOOKAHEAD}"
    )
