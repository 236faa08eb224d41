"""Running a job, the task's body: claim it with one of its cluster's call slots (or put it
back to wait its turn), call the cluster once outside any transaction, record the outcome.

The task (`run_job`) and the one way to queue it (`_enqueue`, on the job's cluster's queue)
live here, beside the body they run: a claim that must wait puts the job back in the queue, so
the task, its body and its queueing are one knot that no split into modules can untie without
a module importing one that imports it back. Submitting queues jobs through `_enqueue` too,
approving and reaping (jobs of any clusters) through `_enqueue_on_clusters`.
"""

from __future__ import annotations

import enum
import functools
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_tasks import task

from audit.models import AuditEntry
from audit.services import audit_record
from jobs import upstream
from jobs.lanes import lane_queue, lane_release, lane_take, releasing_lane
from jobs.models import (
    ApprovalDecision,
    ApprovalRequest,
    ClusterCredential,
    Job,
    JobCustomer,
    JobToken,
)
from jobs.services.digests import part_digest, request_digest
from jobs.services.ending import _end, _keep_late_answer
from jobs.services.freezes import hold_annotations, job_hold
from jobs.services.limits import MAX_ERROR_LENGTH
from jobs.services.slots import _take_call_slot
from jobs.tokens import InvalidToken, token_decrypt
from lib.outage import ride_out
from lib.prepared import PreparedRead

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
Status = Job.Status

# A job whose cluster is at its limit of calls is woken when a call to the cluster ends; it
# looks again after this long anyway (a wake-up lost to a race costs no more than this).
WAIT_RECHECK = timedelta(seconds=15)
# A job held by a freeze or a closed maintenance window is looked at again when the hold ends,
# or after this long if sooner: a freeze removed or a window changed meanwhile is noticed then.
HOLD_RECHECK = timedelta(seconds=60)
KEY_CHANGED_MESSAGE = (
    "The operator's token could not be decrypted (TMS_TOKEN_KEY or SECRET_KEY changed "
    "since the job was submitted); the cluster was not called."
)
NO_CREDENTIAL_MESSAGE = (
    "The cluster has no stored credential any more (it was removed after the job was "
    "submitted); the cluster was not called."
)
CREDENTIAL_UNREADABLE_MESSAGE = (
    "The cluster's stored credential could not be decrypted (TMS_TOKEN_KEY changed without "
    "rotate_token_key since it was set); the cluster was not called."
)
NOT_AS_APPROVED_MESSAGE = (
    "Not sent: what this job would send (its action, cluster endpoint, customers or payload) "
    "is not what was approved; the cluster was not called."
)


def _enqueue(
    job_ids: list[uuid.UUID],
    *,
    cluster_id: int | None = None,
    run_after: datetime | None = None,
) -> list[str]:
    """Queue each job's task; returns the tasks' ids. Jobs of one cluster, given as
    `cluster_id`, are queued on its queue (jobs.lanes.lane_queue), which a worker whose share
    of calls to it is taken passes over; others on the default queue, which every worker
    thread looks at."""
    queued = run_job.using(queue_name=lane_queue(cluster_id), run_after=run_after)
    return [queued.enqueue(str(job_id)).id for job_id in job_ids]


def _enqueue_on_clusters(jobs: Iterable[tuple[uuid.UUID, int]]) -> None:
    """Queue the task of each (job id, cluster id) on its cluster's queue, as `_enqueue` does
    for jobs of one cluster."""
    for job_id, cluster_id in jobs:
        _enqueue([job_id], cluster_id=cluster_id)


class Claim(enum.Enum):
    STARTED = "started"
    WAITING = "waiting for the cluster"
    HELD = "held by a change freeze or a closed maintenance window"
    NOT_RUNNABLE = "already started or ended"


def _claim(job_id: uuid.UUID, started: datetime) -> tuple[Claim, Job | None]:
    """Start the job if it is not started and its cluster has a free call slot, in one
    transaction; when every slot is taken, put it back in the queue to try again shortly.
    A change freeze over its cluster (not overridden for it) or its cluster's maintenance
    windows all closed hold it alike, until the freeze ends or a window opens
    (jobs.services.freezes): every way a job reaches a cluster passes here.

    Returns, with the claim, the job once started: as submitted, with its cluster and its
    token's `ciphertext` (None when the token is gone), read in one query."""
    with transaction.atomic():
        # On PostgreSQL this locks the job's row until the transaction ends, so one delivery
        # of a task at a time gets past it.
        claimed = _start(job_id, started)
        if not claimed:
            logger.warning(
                "job %s not run: it was already started or has ended",
                job_id,
                extra={"job_id": str(job_id)},
            )
            return Claim.NOT_RUNNABLE, None
        job = _CLAIMED.first(job_id, started)
        if job.cluster_id is None:
            return Claim.STARTED, job
        if hold := job_hold(job, started):
            _hold(job, started, *hold)
            return Claim.HELD, None
        if job.waiting_for:
            _unhold(job)
        # This worker process's share of its threads for the cluster (jobs.lanes), then one of
        # the cluster's call slots, whichever hosts ask.
        if lane_take(job.cluster_id):
            if _take_call_slot(job_id, job.cluster_id, job.cluster.max_concurrent_calls, started):
                return Claim.STARTED, job
            lane_release()
        # Every slot is taken, or this process's share of them: undo the claim, which nobody
        # has seen, and wait, to be woken when a call to the cluster ends (or to look again
        # after WAIT_RECHECK anyway).
        [task_id] = _enqueue([job_id], cluster_id=job.cluster_id, run_after=started + WAIT_RECHECK)
        Job.objects.filter(pk=job_id).update(
            started_at=None,
            waiting_since=started,
            waiting_task_id=task_id,
            waiting_for=Job.WaitingFor.CLUSTER,
        )
    logger.info("job %s waiting for its cluster", job_id, extra={"job_id": str(job_id)})
    return Claim.WAITING, None


def _start(job_id: uuid.UUID, started: datetime) -> int:
    """The claim's compare-and-set: IN_PROGRESS and not started gets `started_at`; returns the
    rows it changed (0 or 1). A plain UPDATE through a cursor, its SQL built once per engine:
    the ORM's costs the worker ten times its CPU."""
    at = Job._meta.get_field("started_at").get_db_prep_save(started, connection)
    key = Job._meta.pk.get_db_prep_value(job_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_start_sql(connection.vendor), [at, at, key, Status.IN_PROGRESS])
        return cursor.rowcount


@functools.cache
def _start_sql(vendor: str) -> str:
    """`_start`'s UPDATE (`vendor` keys the cache: the quoting is the connection's)."""
    quote = connection.ops.quote_name
    started = quote("started_at")
    return (
        f"UPDATE {quote(Job._meta.db_table)} SET {started} = %s, "  # noqa: S608
        f"{quote('waiting_since')} = NULL, {quote('updated_at')} = %s "
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s AND {started} IS NULL"
    )


def _hold(job: Job, now: datetime, waiting_for: str, until: datetime | None) -> None:
    """Undo the claim, which nobody has seen, of a job a change freeze or its cluster's closed
    maintenance windows hold, and look again when the hold ends, or after HOLD_RECHECK anyway
    (a freeze removed or a window changed meanwhile is noticed then). It is not woken by calls
    to its cluster ending: no task id on the job. Audited when the hold begins."""
    recheck = now + HOLD_RECHECK
    _enqueue(
        [job.pk], cluster_id=job.cluster_id, run_after=min(until, recheck) if until else recheck
    )
    Job.objects.filter(pk=job.pk).update(
        started_at=None,
        # A worker looked at it now: the reaper's queue expiry counts from here.
        waiting_since=now,
        waiting_task_id=None,
        waiting_for=waiting_for,
        waiting_until=until,
    )
    if job.waiting_for != waiting_for:
        audit_record(
            event=Event.JOB_HELD,
            job_id=job.pk,
            details={
                "waiting_for": waiting_for,
                "until": until.isoformat() if until else None,
            },
        )
    logger.info(
        "job %s held: waiting for %s until %s",
        job.pk,
        Job.WaitingFor(waiting_for).label,
        until.isoformat() if until else "no window is due to open",
        extra={"job_id": str(job.pk)},
    )


def _unhold(job: Job) -> None:
    """Clear what the job waited for; audited when a freeze or a window had held it."""
    Job.objects.filter(pk=job.pk).update(waiting_for="", waiting_until=None)
    if job.waiting_for != Job.WaitingFor.CLUSTER:
        audit_record(
            event=Event.JOB_RELEASED,
            job_id=job.pk,
            details={"waited_for": job.waiting_for},
        )


def _started_job(job_id: uuid.UUID):
    """The job, as a claim returns it: with its cluster and its token's `ciphertext`."""
    return (
        Job.objects.select_related("cluster")
        .annotate(
            ciphertext=Subquery(JobToken.objects.filter(job_id=OuterRef("pk")).values("ciphertext"))
        )
        .filter(pk=job_id)
    )


# The claim's read of the job, built once per thread: its subqueries cost the ORM more to
# build than the database to run.
_CLAIMED = PreparedRead(lambda job_id, at: _started_job(job_id).annotate(**hold_annotations(at)))


def _claim_riding_out(job_id: uuid.UUID, started: datetime) -> tuple[Claim, Job | None]:
    """`_claim`, tried again through a database outage (lib.outage). A claim the database
    committed although its answer was lost with the connection is known on the next attempt
    by the start it wrote: the job is this delivery's, its call slot taken."""
    attempts = 0

    def claim() -> tuple[Claim, Job | None]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            mine = _started_job(job_id).filter(status=Status.IN_PROGRESS, started_at=started)
            if job := mine.first():
                return Claim.STARTED, job
        return _claim(job_id, started)

    return ride_out(claim, doing=f"claiming job {job_id}")


# Error reports hide every local of this call and of what it calls: the token is one.
@releasing_lane
@sensitive_variables()
def job_run(*, job_id: uuid.UUID) -> bool:
    """Run a job: claim it, call its cluster once, record the outcome. The task's body.

    Returns False without calling the cluster when the claim fails: the job was already
    started (a second delivery of the task), has ended, or was reaped; or its cluster has
    `max_concurrent_calls` calls in flight, or this worker process has its share of calls to
    it (jobs.lanes), and the job was put back in the queue.
    """
    started = timezone.now()
    claim, job = _claim_riding_out(job_id, started)
    if claim is not Claim.STARTED:
        return False
    logger.info("job %s started on %s", job_id, job.cluster_url, extra={"job_id": str(job_id)})
    token, credential, unreadable = _token(job)
    if token is None:
        message, reason = unreadable
        ride_out(
            lambda: _end(
                job_id,
                condition=Q(started_at=started),
                status=Status.FAILED,
                event=Event.JOB_FAILED,
                error_message=message,
                details={"reason": reason},
                job=job,
            ),
            doing=f"ending job {job_id}",
        )
        return True

    customers = _customers(job_id)
    cids = [cid for _, cid in customers]
    if job.approval_id and not _as_approved(job, cids):
        ride_out(
            lambda: _end(
                job_id,
                condition=Q(started_at=started),
                status=Status.FAILED,
                event=Event.JOB_FAILED,
                error_message=NOT_AS_APPROVED_MESSAGE,
                details={"reason": "not_as_approved", "approval_id": str(job.approval_id)},
                job=job,
            ),
            doing=f"ending job {job_id}",
        )
        return True
    if credential:
        ride_out(
            lambda: audit_record(
                event=Event.CREDENTIAL_USED,
                job_id=job_id,
                details={"cluster": job.cluster.name, "fingerprint": credential},
            ),
            doing=f"recording job {job_id}'s use of its cluster's credential",
        )
    # No transaction is open here: the claim is committed, and the result is recorded in a
    # new short transaction below.
    result = upstream.call_set_action(
        # What the job was submitted with, not what its cluster says now.
        base_url=job.cluster_url,
        action_path=job.action_path,
        job_id=str(job_id),
        action=job.action,
        action_name=job.action_label,
        cids=cids,
        token=token,
        timeout_seconds=job.timeout_seconds,
        verify_tls=job.verify_tls,
    )
    # The lane is given back when this returns (releasing_lane), once the end is recorded and
    # the call slot with it: given back before, it let another thread claim a job while every
    # slot was still taken, and put it back to wait (a third more claims in a drain of 32
    # calls at once).
    status = Status.SUCCESS if result.success else Status.FAILED
    details = {
        "http_status": result.http_status,
        "duration_ms": result.duration_ms,
        "error": result.error_message[:MAX_ERROR_LENGTH],
    }
    attempts = 0

    def record() -> bool:
        nonlocal attempts
        attempts += 1
        ended = _end(
            job_id,
            condition=Q(started_at=started),
            status=status,
            event=Event.JOB_SUCCEEDED if result.success else Event.JOB_FAILED,
            details=details,
            http_status=result.http_status,
            error_message=result.error_message,
            response_summary=result.summary,
            outcomes=result.customer_results,
            answer=result.answer,
            customers=customers,
            job=job,
        )
        # An earlier attempt the database committed, its answer lost with the connection.
        return ended or (
            attempts > 1
            and Job.objects.filter(
                pk=job_id, started_at=started, status=status, http_status=result.http_status
            ).exists()
        )

    # The cluster has answered: its answer is recorded, on a new connection if the one held
    # through the call was lost, however long the database takes to come back.
    recorded = ride_out(record, doing=f"recording job {job_id}'s result")
    if not recorded:
        # The reaper ended the job while the call was out; its state stands, and the late
        # result goes into the audit log so nothing the cluster said is lost.
        ride_out(
            lambda: audit_record(
                event=Event.JOB_LATE_RESULT,
                job_id=job_id,
                details={**details, "outcome": status, "summary": result.summary},
            ),
            doing=f"recording job {job_id}'s late result",
        )
        if result.answer:
            ride_out(
                lambda: _keep_late_answer(job_id, started, result.answer),
                doing=f"keeping job {job_id}'s late answer",
            )
        logger.warning(
            "job %s: result %s arrived after the job was reaped",
            job_id,
            status,
            extra={"job_id": str(job_id)},
        )
    return True


def _customers(job_id: uuid.UUID) -> list[tuple[int, str]]:
    """The job's customers, (pk, cid) in the order they were recorded: a plain SELECT through
    a cursor, its SQL built once per engine (the ORM's building costs more than its run)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _customers_sql(connection.vendor), [Job._meta.pk.get_db_prep_value(job_id, connection)]
        )
        return [(pk, cid) for pk, cid in cursor.fetchall()]


@functools.cache
def _customers_sql(vendor: str) -> str:
    """`_customers`' SELECT (`vendor` keys the cache: the quoting is the connection's)."""
    quote = connection.ops.quote_name
    pk = quote("id")
    return (
        f"SELECT {pk}, {quote('cid')} FROM {quote(JobCustomer._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('job_id')} = %s ORDER BY {pk}"
    )


# Error reports hide every local of this call: the token is one.
@sensitive_variables()
def _token(job: Job) -> tuple[str | None, str | None, tuple[str, str] | None]:
    """The token to send `job` with: (token, None, None) for the operator's own, decrypted
    from the job's `ciphertext`; (token, its fingerprint, None) for the cluster's stored
    credential, read and decrypted now, at call time; (None, None, (message, reason)) when
    it cannot be had, and the job must fail without calling the cluster."""
    if not job.uses_stored_credential:
        try:
            return token_decrypt(job.ciphertext or ""), None, None
        except InvalidToken:
            return None, None, (KEY_CHANGED_MESSAGE, "token_unreadable")
    stored = ride_out(
        lambda: (
            ClusterCredential.objects.filter(cluster=job.cluster_id)
            .values_list("ciphertext", "fingerprint")
            .first()
        ),
        doing=f"reading job {job.pk}'s cluster credential",
    )
    if stored is None:
        return None, None, (NO_CREDENTIAL_MESSAGE, "credential_missing")
    ciphertext, fingerprint = stored
    try:
        return token_decrypt(ciphertext), fingerprint, None
    except InvalidToken:
        return None, None, (CREDENTIAL_UNREADABLE_MESSAGE, "credential_unreadable")


def _as_approved(job: Job, cids: list[str]) -> bool:
    """Whether the job, as its worker is about to send it (`cids` its customers in order), is
    what its approval request recorded and its approvers approved: the request APPROVED, the
    job's digest recomputed now equal to the request's for its place in the batch, and the
    request's digest over those equal to the one each approval was given on."""
    request = (
        ApprovalRequest.objects.filter(pk=job.approval_id)
        .values("status", "digest", "part_digests", "approvers_required")
        .first()
    )
    if request is None or request["status"] != ApprovalRequest.Status.APPROVED:
        return False
    approved = list(
        ApprovalDecision.objects.filter(
            request_id=job.approval_id, verdict=ApprovalDecision.Verdict.APPROVE
        ).values_list("digest", flat=True)
    )
    parts = request["part_digests"]
    place = (job.batch_seq or 1) - 1
    digest = part_digest(job, cids)
    return (
        len(approved) >= request["approvers_required"]
        and all(seen == request["digest"] for seen in approved)
        and request_digest(parts) == request["digest"]
        and place < len(parts)
        and parts[place] == digest
    )


@task()
def run_job(job_id: str) -> None:
    """Run one job. Delivered twice, it still calls the cluster at most once (see job_run)."""
    job_run(job_id=uuid.UUID(job_id))
