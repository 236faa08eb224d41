"""Notices are written where a job ends, an approval request changes, a scheduled run fails
or a break-glass user signs in, in the transaction that records it."""

from __future__ import annotations

from django.conf import settings
from django.dispatch import receiver

from accounts.signals import break_glass_signin
from jobs.signals import approval_decided, approval_reminder_due, approval_requested, job_ended
from notifications.approval_events import notices_record_approval
from notifications.event_names import EventName
from notifications.events import notices_record_job_end
from notifications.listening import endpoints_active
from notifications.schedule_events import notices_record_schedule_failure
from notifications.signin_events import notices_record_break_glass
from schedules.signals import occurrence_failed


@receiver(job_ended, dispatch_uid="notifications_job_ended")
def record_notices(sender, job, status, finished_at, reason, **kwargs) -> None:
    # Nobody to hear of a job alone when no endpoint is active and no e-mail is sent: nothing
    # is read (notifications.listening). A batch's part queues the look at its batch anyway.
    if job.batch_id is None and not settings.TMS_MAIL_ENABLED and not endpoints_active():
        return
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


@receiver(break_glass_signin, dispatch_uid="notifications_break_glass_signin")
def record_break_glass(sender, user, at, ip_address, audit_entry_id, **kwargs) -> None:
    notices_record_break_glass(
        user=user, at=at, ip_address=ip_address, audit_entry_id=audit_entry_id
    )
