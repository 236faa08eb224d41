"""Cancelling queued jobs before they are sent to their cluster, racing the worker's claim:
exactly one of the two wins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import Job
from jobs.services.approving import ApprovalClosed, _withdraw
from jobs.services.ending import _end

Event = AuditEntry.Event
Status = Job.Status


@dataclass
class CancelReport:
    cancelled: list[uuid.UUID] = field(default_factory=list)
    # Why each job that was not cancelled was not, by job id.
    refused: dict[uuid.UUID, str] = field(default_factory=dict)


def job_cancel(
    *, job_ids: Sequence[uuid.UUID], user=None, ip_address: str | None = None
) -> CancelReport:
    """Cancel queued jobs: each one not yet sent to its cluster ends CANCELLED, its customers
    released and its token deleted, audited with who cancelled it (`user`; None for a
    maintainer at a shell). The compare-and-set against the worker's claim (both need the job
    not started) lets exactly one of them win: a job the worker claimed first is refused, and a
    cancelled job's task finds nothing to run. Only the job's operator or an admin
    (superuser) may cancel it: PermissionDenied otherwise, before anything changes.

    A job waiting for approval (PENDING_APPROVAL) is cancelled by withdrawing its approval
    request as a whole: every job of it (its whole batch) ends CANCELLED.
    """
    jobs = {
        job.pk: job
        for job in Job.objects.filter(pk__in=job_ids).only("pk", "user_id", "status", "approval")
    }
    others = any(job.user_id != getattr(user, "pk", None) for job in jobs.values())
    if user is not None and not user.is_superuser and others:
        raise PermissionDenied("Only the job's operator or an admin can cancel it.")
    who = user.get_username() if user is not None else "a maintainer"
    report = CancelReport()
    for job_id in dict.fromkeys(job_ids):
        if job_id in report.cancelled:
            continue
        if job_id in jobs and jobs[job_id].status == Status.PENDING_APPROVAL:
            try:
                report.cancelled.extend(
                    _withdraw(jobs[job_id].approval_id, user, ip_address, timezone.now())
                )
                continue
            except ApprovalClosed as exc:
                # Past its deadline, or decided since it was read: then cancelled as any
                # queued job is, or refused below.
                if Job.objects.filter(pk=job_id, status=Status.PENDING_APPROVAL).exists():
                    report.refused[job_id] = str(exc)
                    continue
        if job_id not in jobs:
            report.refused[job_id] = "No such job."
        elif _end(
            job_id,
            condition=Q(started_at__isnull=True),
            status=Status.CANCELLED,
            event=Event.JOB_CANCELLED,
            error_message=f"Cancelled by {who} before it was sent to the cluster.",
            details={"reason": "cancelled"},
            actor=user,
            ip_address=ip_address,
        ):
            report.cancelled.append(job_id)
        else:
            status = Job.objects.filter(pk=job_id).values_list("status", flat=True).get()
            report.refused[job_id] = (
                "It was already sent to the cluster: it can no longer be cancelled."
                if status == Status.IN_PROGRESS
                else f"It has already ended ({status})."
            )
    return report
