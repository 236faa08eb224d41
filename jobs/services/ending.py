"""The one place a job's state ends: a compare-and-set from IN_PROGRESS (or PENDING_APPROVAL),
written with its audit entry, its customers' outcomes, the release of its customers, call slot
and token, in one transaction. Running, reaping, cancelling and approving all end jobs through
`_end`."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from jobs import upstream
from jobs.models import InFlightCall, InFlightCustomer, Job, JobCustomer, JobToken
from jobs.services.counting import EndedJob, count_jobs_added
from jobs.services.limits import CHUNK, MAX_ERROR_LENGTH
from jobs.services.slots import _wake_next_waiting
from jobs.signals import job_ended

logger = logging.getLogger(__name__)

Status = Job.Status


def _end(
    job_id: uuid.UUID,
    *,
    condition: Q,
    status: str,
    event: str,
    details: dict,
    from_status: str = Status.IN_PROGRESS,
    http_status: int | None = None,
    error_message: str = "",
    response_summary: str = "",
    outcomes: Sequence[upstream.CustomerResult] = (),
    answer: upstream.ClusterAnswer | None = None,
    customers: Sequence[tuple[int, str]] = (),
    job: Job | None = None,
    actor=None,
    ip_address: str | None = None,
) -> bool:
    """Move an IN_PROGRESS job (or one in `from_status`: PENDING_APPROVAL for a request that
    ends without approval) matching `condition` to `status`, with its audit entry by
    `actor`: None, the system (a worker or the reaper), unless a user did it.

    `outcomes` are recorded on the job's `customers` (their (pk, cid) rows), and the cluster's
    `answer` as received, when its call got one, on the job. `job`, when the
    caller has it, is the job as it read it with its cluster (what the job_ended receivers use:
    the cluster's name, the action, started_at); otherwise it is read here.

    Counts the job in the per-hour counts (jobs.services.counting), releases the job's
    customers and deletes its token in the same transaction. Returns
    False, changing nothing, when the job is no longer in `from_status` or no longer matches.
    """
    now = timezone.now()
    with transaction.atomic():
        ended = _set_ended(
            job_id,
            condition,
            from_status,
            {
                "status": status,
                "http_status": http_status,
                "error_message": error_message[:MAX_ERROR_LENGTH],
                "response_summary": response_summary,
                **_answer_fields(answer),
                "finished_at": now,
                "updated_at": now,
            },
        )
        if not ended:
            return False
        if outcomes:
            _record_outcomes(outcomes, customers)
        released = _release(job_id)
        if job is None:
            job = (
                Job.objects.select_related("cluster")
                .only(
                    "cluster__name",
                    "user",
                    "action",
                    "legacy_action_name",
                    "started_at",
                    "batch_id",
                )
                .get(pk=job_id)
            )
        count_jobs_added(
            [
                EndedJob(
                    status=status,
                    user_id=job.user_id,
                    cluster_id=job.cluster_id,
                    action=job.action,
                    created_at=now,
                    started_at=job.started_at,
                    finished_at=now,
                )
            ]
        )
        woke = bool(released) and _wake_next_waiting(job.cluster_id, now)
        job_ended.send(
            sender=Job,
            job=job,
            status=status,
            finished_at=now,
            reason=details.get("reason"),
            woke_waiting=woke,
        )
        # Last: the audit entry takes the chain's lock to the commit (audit.chain), so every
        # row lock comes before it; a job's end waking a job another transaction has locked
        # (cancelling it) then waits for that one to commit, never in a deadlock with it.
        audit_record(
            event=event,
            actor=actor,
            job_id=job_id,
            ip_address=ip_address,
            details=details,
        )
    logger.info(
        "job %s ended %s: %s",
        job_id,
        status,
        error_message or response_summary,
        extra={"job_id": str(job_id)},
    )
    return True


def _set_ended(job_id: uuid.UUID, condition: Q, from_status: str, values: dict) -> int:
    """The end's compare-and-set: the job, in `from_status` and matching `condition`, gets
    `values`; returns the rows changed (0 or 1). The condition of every run's end, and of the
    reaper's end of one call, is the start the claim wrote (`Q(started_at=...)`): that UPDATE
    is plain SQL through a cursor, its text built once per engine and set of fields, since
    the ORM's costs the worker ten times its CPU; any other condition goes through the ORM."""
    [(lookup, started)] = condition.children if len(condition.children) == 1 else [(None, None)]
    if lookup != "started_at" or condition.negated or not isinstance(started, datetime):
        return Job.objects.filter(condition, pk=job_id, status=from_status).update(**values)
    fields = [Job._meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    params += [
        Job._meta.pk.get_db_prep_value(job_id, connection),
        from_status,
        Job._meta.get_field("started_at").get_db_prep_save(started, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_set_ended_sql(connection.vendor, tuple(values)), params)
        return cursor.rowcount


@functools.cache
def _set_ended_sql(vendor: str, names: tuple[str, ...]) -> str:
    """`_set_ended`'s UPDATE of the fields `names` (`vendor` keys the cache: the quoting is
    the connection's)."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(Job._meta.get_field(name).column)} = %s" for name in names)
    return (
        f"UPDATE {quote(Job._meta.db_table)} SET {columns} "  # noqa: S608
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s AND {quote('started_at')} = %s"
    )


def _release(job_id: uuid.UUID) -> int:
    """Delete the job's token and give back its customers and its call slot; returns how many
    call slots it gave back (0 or 1). Plain DELETEs through a cursor: nothing cascades from
    these rows and no signal listens for their deletion, and the ORM's delete costs the worker
    ten times their CPU."""
    key = Job._meta.pk.get_db_prep_value(job_id, connection)
    with connection.cursor() as cursor:
        for sql in _release_sql(connection.vendor):
            cursor.execute(sql, [key])
        return cursor.rowcount


@functools.cache
def _release_sql(vendor: str) -> tuple[str, ...]:
    """The deletes of `_release`, the call slot's last; built once per engine (`vendor` keys
    the cache: the quoting is the connection's)."""
    quote = connection.ops.quote_name
    return tuple(
        f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote('job_id')} = %s"  # noqa: S608
        for model in (JobToken, InFlightCustomer, InFlightCall)
    )


def _answer_fields(answer: upstream.ClusterAnswer | None) -> dict:
    """The job's fields that keep the cluster's `answer` (none when no answer came)."""
    if answer is None:
        return {}
    return {
        "cluster_answer_status": answer.status,
        "cluster_answer_content_type": answer.content_type,
        "cluster_answer_body": answer.body,
        "cluster_answer_truncated": answer.truncated,
    }


def _keep_late_answer(job_id: uuid.UUID, started, answer: upstream.ClusterAnswer) -> bool:
    """Keep the answer of a call that came after its job was ended without it (the reaper
    made it UNKNOWN while the call was out) on the job, whose state stands; only on the job
    this call was for (started at `started`) and only when it keeps no answer yet. Returns
    whether it was kept."""
    return bool(
        Job.objects.filter(pk=job_id, started_at=started, cluster_answer_status__isnull=True)
        .exclude(status=Status.IN_PROGRESS)
        .update(**_answer_fields(answer))
    )


def _record_outcomes(
    outcomes: Sequence[upstream.CustomerResult], customers: Sequence[tuple[int, str]]
) -> None:
    """Record each customer's outcome on the job's `customers`, its (pk, cid) rows: when they
    all share one outcome and message (every customer of a job the cluster applied does), a
    plain UPDATE through a cursor, which costs the worker a fraction of the CPU of
    bulk_update's CASE per row (and of the ORM's UPDATE); otherwise bulk_update."""
    by_cid = {result.cid: result for result in outcomes}
    # Results for customers the job does not hold are ignored.
    values: dict[tuple[str, str], list[int]] = {}
    for pk, cid in customers:
        if cid in by_cid:
            result = by_cid[cid]
            outcome = JobCustomer.Outcome.SUCCESS if result.success else JobCustomer.Outcome.FAILED
            values.setdefault((outcome, result.message[:MAX_ERROR_LENGTH]), []).append(pk)
    if len(values) == 1:
        [((outcome, message), pks)] = values.items()
        table = connection.ops.quote_name(JobCustomer._meta.db_table)
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for start in range(0, len(pks), CHUNK):
                chunk = pks[start : start + CHUNK]
                cursor.execute(
                    f"UPDATE {table} SET {quote('outcome')} = %s, {quote('message')} = %s "  # noqa: S608
                    f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(chunk))})",
                    [outcome, message, *chunk],
                )
        return
    rows = [
        JobCustomer(pk=pk, outcome=outcome, message=message)
        for (outcome, message), pks in values.items()
        for pk in pks
    ]
    JobCustomer.objects.bulk_update(rows, ["outcome", "message"], batch_size=CHUNK)
