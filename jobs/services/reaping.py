"""Ending what nothing else will end, and never calling a cluster: jobs whose worker died
mid-call (UNKNOWN), jobs no worker picked up in time (FAILED), and queueing again the jobs
whose task was lost before they started."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import Job
from jobs.services.ending import _end
from jobs.services.running import _enqueue_on_clusters

logger = logging.getLogger(__name__)

Event = AuditEntry.Event
Status = Job.Status

INTERRUPTED = (
    "Interrupted: no result was recorded. The cluster may have applied the action; "
    "check before retrying."
)
NOT_STARTED = "Not started: no worker picked the job up in time"


@dataclass
class ReapReport:
    unknown: list[uuid.UUID] = field(default_factory=list)
    expired: list[uuid.UUID] = field(default_factory=list)


def job_reap_stale(*, now: datetime | None = None) -> ReapReport:
    """End the jobs nothing will end: never calls a cluster.

    A started job still IN_PROGRESS longer than its timeout (the cluster's when the job was
    submitted) plus TMS_REAP_GRACE
    becomes UNKNOWN (its worker died mid-call; the cluster may have applied it). A job no
    worker started within TMS_QUEUE_EXPIRY (of its submit, or of its approval) becomes FAILED,
    and its task, should it run later, does nothing.
    """
    now = now or timezone.now()
    report = ReapReport()
    grace = timedelta(seconds=settings.TMS_REAP_GRACE)
    running = Job.objects.in_progress().filter(started_at__isnull=False)
    # By the timeout each job was submitted with: one query per distinct timeout.
    for timeout in running.order_by().values_list("timeout_seconds", flat=True).distinct():
        cutoff = now - timedelta(seconds=timeout or 0) - grace
        for job_id in running.filter(timeout_seconds=timeout, started_at__lt=cutoff).values_list(
            "pk", flat=True
        ):
            if _end(
                job_id,
                condition=Q(started_at__lt=cutoff),
                status=Status.UNKNOWN,
                event=Event.JOB_UNKNOWN,
                error_message=INTERRUPTED,
                details={"reason": "interrupted"},
            ):
                report.unknown.append(job_id)

    # A job waiting for its cluster's free call was last looked at by a worker when it was
    # put back: it expires only once no worker has looked at it for the whole expiry.
    expiry = now - timedelta(seconds=settings.TMS_QUEUE_EXPIRY)
    forgotten = Q(started_at__isnull=True, created_at__lt=expiry) & (
        Q(waiting_since__isnull=True) | Q(waiting_since__lt=expiry)
    )
    # An approved job was queued when its approval was decided, not when it was submitted.
    # That time never changes once the job is IN_PROGRESS, so it chooses the candidates only:
    # the compare-and-set below reads the job's own row alone (on PostgreSQL a condition
    # through a join is not checked again on the row a concurrent claim just changed).
    queued = Job.objects.in_progress().filter(
        forgotten, Q(approval__isnull=True) | Q(approval__decided_at__lt=expiry)
    )
    for job_id in queued.values_list("pk", flat=True):
        if _end(
            job_id,
            condition=forgotten,
            status=Status.FAILED,
            event=Event.JOB_FAILED,
            error_message=NOT_STARTED,
            details={"reason": "not_started"},
        ):
            report.expired.append(job_id)
    return report


def job_requeue(*, job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Queue a task again for each of these jobs that is still not started: for jobs whose
    task row was lost with a killed worker before the job was claimed. Never calls a cluster,
    and a job delivered twice still runs once (the claim). Returns the jobs queued again."""
    with transaction.atomic():
        queued = list(
            Job.objects.in_progress()
            .filter(pk__in=job_ids, started_at__isnull=True)
            .values_list("pk", "cluster_id")
        )
        _enqueue_on_clusters(queued)
    requeued = [job_id for job_id, _cluster_id in queued]
    for job_id in requeued:
        logger.warning(
            "job %s queued again: its task was lost before it started the job",
            job_id,
            extra={"job_id": str(job_id)},
        )
    return requeued


def job_interrupted(*, job_id: uuid.UUID, last_seen: datetime) -> bool:
    """End as UNKNOWN a started job whose worker went silent, its last sign of life at
    `last_seen`: its call was cut off then, or within a heartbeat of it, so the job records how
    long the call had run (`call_ran_ms`) instead of waiting for the reaper's timeout. Never
    calls a cluster. Returns False, changing nothing, unless the job was started and is still
    IN_PROGRESS."""
    started_at = (
        Job.objects.in_progress()
        .filter(pk=job_id, started_at__isnull=False)
        .values_list("started_at", flat=True)
        .first()
    )
    if started_at is None:
        return False
    ran = max(last_seen - started_at, timedelta(0))
    return _end(
        job_id,
        condition=Q(started_at=started_at),
        status=Status.UNKNOWN,
        event=Event.JOB_UNKNOWN,
        error_message=INTERRUPTED,
        details={"reason": "interrupted", "call_ran_ms": round(ran.total_seconds() * 1000)},
    )
