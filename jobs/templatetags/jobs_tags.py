from __future__ import annotations

import json

from django import template
from django.utils.html import format_html

from jobs.models import Job

register = template.Library()

KNOWN = set(Job.Status.values)


@register.simple_tag
def status_badge(job: Job) -> str:
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


@register.filter
def duration(job: Job, now=None) -> str:
    """How long the job ran (or has been running), as 1.234 s or 2 min 5 s."""
    if job.started_at is None:
        return ""
    end = job.finished_at or now
    if end is None:
        return ""
    seconds = (end - job.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.3f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@register.filter
def as_json(value) -> str:
    """Indented JSON, for showing payloads and details (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
