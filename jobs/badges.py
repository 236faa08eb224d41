"""The status badge: one look for a job's status, in the operator UI and in the admin.

Its colours are in static/css/badges.css, which both load.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.models import Job

KNOWN = set(Job.Status.values)


def status_badge(job: Job) -> SafeString:
    """The status as a coloured badge with its word; FAILED and UNKNOWN explain on hover."""
    status = job.status if job.status in KNOWN else "OTHER"
    title = ""
    if job.status in (Job.Status.FAILED, Job.Status.UNKNOWN):
        message = job.error_message or "No error message"
        title = f"HTTP {job.http_status} - {message}" if job.http_status else message
    return format_html(
        '<span class="badge badge-{}" data-status="{}" title="{}">{}</span>',
        status.lower(),
        job.status,
        title,
        job.status.replace("_", " "),
    )
