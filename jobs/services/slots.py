"""A cluster's call slots (its `max_concurrent_calls`): taking a free one for a claim, and,
when a call ends and frees one, waking the oldest job waiting for it."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
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

    Two workers may both see a slot free; the unique (cluster, slot) lets one have it, and the
    other tries the next. When every slot that looked free was taken meanwhile, it looks
    again: a slot released in the meantime is not missed.
    """
    for _ in range(SLOT_ROUNDS):
        taken = set(
            InFlightCall.objects.filter(cluster_id=cluster_id).values_list("slot", flat=True)
        )
        free = [slot for slot in range(limit) if slot not in taken]
        if not free:
            return False
        for slot in free:
            try:
                with transaction.atomic():
                    InFlightCall.objects.create(
                        cluster_id=cluster_id, slot=slot, job_id=job_id, started_at=now
                    )
            except IntegrityError:
                continue
            return True
    return False


def _wake_next_waiting(cluster_id: int, now: datetime) -> bool:
    """A call to the cluster ended: bring forward the task of its oldest waiting job not
    already woken, so that a worker tries it next; True when it woke one. Taking the task id
    off the job is the compare-and-set that keeps two ending calls from waking the same job."""
    waiting = (
        Job.objects.filter(cluster_id=cluster_id, status=Status.IN_PROGRESS)
        .filter(waiting_since__isnull=False, waiting_task_id__isnull=False)
        .order_by("created_at")
        .values_list("pk", "waiting_task_id")
    )
    for job_id, task_id in waiting[:WAKE_LOOKAHEAD]:
        if not Job.objects.filter(pk=job_id, waiting_task_id=task_id).update(waiting_task_id=None):
            continue
        if DBTaskResult.objects.filter(pk=task_id, status=TaskResultStatus.READY).update(
            run_after=now
        ):
            return True
    return False
