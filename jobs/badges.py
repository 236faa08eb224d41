"""The status badge: one look for a job's status, in the operator UI and in the admin.

Its colours are in static/css/badges.css, which both load.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.models import Job

KNOWN = set(Job.Status.values)
WAITING = "waiting for the cluster"
EXPLAINED = {Job.Status.FAILED, Job.Status.UNKNOWN, Job.Status.DENIED, Job.Status.EXPIRED}


def shown_status(job: Job) -> str:
    """The status in words. A job in progress is QUEUED until a worker starts it, then
    RUNNING; the stored status stays IN_PROGRESS until the job ends. PENDING_APPROVAL is
    "PENDING APPROVAL"."""
    if job.status == Job.Status.IN_PROGRESS:
        return "RUNNING" if job.started_at else "QUEUED"
    return job.status.replace("_", " ")


def status_badge(job: Job) -> SafeString:
    """The status as a coloured badge with its word; FAILED, UNKNOWN, DENIED and EXPIRED
    explain on hover (DENIED with who denied it and why). A job held back by its cluster's
    `max_concurrent_calls` says it waits for the cluster."""
    status = job.status if job.status in KNOWN else "OTHER"
    title = ""
    if job.status in EXPLAINED:
        message = job.error_message or "No error message"
        title = f"HTTP {job.http_status} - {message}" if job.http_status else message
    badge = format_html(
        '<span class="badge badge-{}" data-status="{}" title="{}">{}</span>',
        status.lower(),
        job.status,
        title,
        shown_status(job),
    )
    if job.status == Job.Status.IN_PROGRESS and job.started_at is None and job.waiting_since:
        return format_html('{} <span class="badge-note">{}</span>', badge, WAITING)
    return badge
