"""Notices are written where a job ends, an approval request changes or a scheduled run
fails, in the transaction that records it."""

from __future__ import annotations

from django.dispatch import receiver

from jobs.signals import approval_decided, approval_reminder_due, approval_requested, job_ended
from notifications.approval_events import notices_record_approval
from notifications.event_names import EventName
from notifications.events import notices_record_job_end
from notifications.schedule_events import notices_record_schedule_failure
from schedules.signals import occurrence_failed


@receiver(job_ended, dispatch_uid="notifications_job_ended")
def record_notices(sender, job, status, finished_at, reason, **kwargs) -> None:
    notices_record_job_end(job_id=job.pk, status=status, reason=reason)


@receiver(approval_requested, dispatch_uid="notifications_approval_requested")
def record_approval_requested(sender, request, at, **kwargs) -> None:
    notices_record_approval(request_id=request.pk, event=EventName.APPROVAL_REQUESTED, at=at)


@receiver(approval_reminder_due, dispatch_uid="notifications_approval_reminder")
def record_approval_reminder(sender, request, at, **kwargs) -> None:
    notices_record_approval(request_id=request.pk, event=EventName.APPROVAL_REMINDER, at=at)


@receiver(approval_decided, dispatch_uid="notifications_approval_decided")
def record_approval_decided(sender, request, at, status, actor, comment, **kwargs) -> None:
    notices_record_approval(
        request_id=request.pk,
        event=EventName.APPROVAL_DECIDED,
        at=at,
        status=status,
        actor_id=actor.pk if actor is not None else None,
        comment=comment,
    )


@receiver(occurrence_failed, dispatch_uid="notifications_occurrence_failed")
def record_schedule_failure(sender, occurrence, at, **kwargs) -> None:
    notices_record_schedule_failure(occurrence=occurrence, at=at)
