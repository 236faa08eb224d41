"""Marking a job with an unknown outcome as looked at: someone checked what the cluster did."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import MAX_REVIEW_NOTE, Job, JobReview


def may_mark_looked_at(user, job: Job) -> bool:
    """Whoever may retry the job may mark it: a user who may run Set Actions, on their own
    job or, when they may see every job, on anyone's. Auditors, who only read, may not."""
    return user.has_perm("jobs.run_set_action") and (
        job.user_id == user.pk or user.has_perm("jobs.view_all_jobs")
    )


def job_mark_looked_at(
    *, job: Job, user, note: str = "", ip_address: str | None = None
) -> JobReview:
    """Record that `user` looked at the UNKNOWN `job`, with what they found (`note`, at most
    MAX_REVIEW_NOTE characters), audited in the same transaction.

    PermissionDenied when the user may not (see may_mark_looked_at); ValidationError when the
    job's outcome is known, the note is too long, or someone already marked it (the first look
    stands; the unique job of JobReview decides between two at once). Nothing is written then.
    """
    if not may_mark_looked_at(user, job):
        raise PermissionDenied("Only someone who may retry this job can mark it as looked at.")
    note = note.strip()
    if len(note) > MAX_REVIEW_NOTE:
        raise ValidationError(f"The note is longer than {MAX_REVIEW_NOTE} characters.")
    try:
        with transaction.atomic():
            # Read under the transaction: a job whose status is not UNKNOWN is refused.
            if not Job.objects.filter(pk=job.pk, status=Job.Status.UNKNOWN).exists():
                raise ValidationError("Only a job with an unknown outcome can be looked at.")
            review = JobReview.objects.create(
                job=job, reviewed_by=user, reviewed_at=timezone.now(), note=note
            )
            audit_record(
                event=AuditEntry.Event.JOB_LOOKED_AT,
                actor=user,
                job_id=job.pk,
                ip_address=ip_address,
                details={"note": note},
            )
    except IntegrityError:
        first = JobReview.objects.select_related("reviewed_by").get(job=job)
        raise ValidationError(
            f"{first.reviewed_by.get_username()} already looked at this job."
        ) from None
    return review
