"""A person's mark on a job with an unknown outcome: they looked at what the cluster did."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.jobs import Job

MAX_REVIEW_NOTE = 1000


class JobReview(models.Model):
    """Someone looked at an UNKNOWN job (whether the cluster applied its action) and may say
    what they found. One per job: the first look stands (jobs.services.reviews)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="review")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=MAX_REVIEW_NOTE, blank=True)

    def __str__(self) -> str:
        return f"{self.job_id} looked at by {self.reviewed_by_id}"
