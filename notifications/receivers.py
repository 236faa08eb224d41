"""Notices are written where a job ends, in the transaction that ends it."""

from __future__ import annotations

from django.dispatch import receiver

from jobs.signals import job_ended
from notifications.events import notices_record_job_end


@receiver(job_ended, dispatch_uid="notifications_job_ended")
def record_notices(sender, job, status, finished_at, reason, **kwargs) -> None:
    notices_record_job_end(job_id=job.pk, status=status, reason=reason)
