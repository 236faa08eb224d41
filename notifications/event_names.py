"""The events a user or a webhook endpoint can be told of.

Its own module, below both `notifications.models` and `notifications.validators`: the model's
field checks its value against these names, and the validator must know them.
"""

from __future__ import annotations

from django.db import models


class EventName(models.TextChoices):
    JOB_FAILED = "job.failed", "A job failed"
    JOB_UNKNOWN = "job.unknown", "A job's outcome is unknown"
    JOB_EXPIRED = "job.expired", "A job expired in the queue"
    BATCH_ENDED = "batch.ended", "A batch ended"
    JOB_SUCCEEDED = "job.succeeded", "A job succeeded"
    APPROVAL_REQUESTED = "approval.requested", "A request waits for approval"
    APPROVAL_REMINDER = "approval.reminder", "A request still waits for approval"
    APPROVAL_DECIDED = "approval.decided", "A request was decided, expired or withdrawn"
    SCHEDULE_FAILED = "schedule.failed", "A scheduled run failed"
    SIGNIN_BREAK_GLASS = "signin.break_glass", "A break-glass user signed in with a password"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "The audit trail's hash chain is broken"


# The events of jobs' failures: what a new webhook endpoint is sent unless chosen otherwise.
FAILURES = [
    EventName.JOB_FAILED,
    EventName.JOB_UNKNOWN,
    EventName.JOB_EXPIRED,
    EventName.BATCH_ENDED,
]
APPROVAL_EVENTS = [
    EventName.APPROVAL_REQUESTED,
    EventName.APPROVAL_REMINDER,
    EventName.APPROVAL_DECIDED,
]
