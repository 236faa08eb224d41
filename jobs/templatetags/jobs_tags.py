from __future__ import annotations

import datetime as dt
import json

from django import template

from jobs.badges import status_badge
from jobs.models import Job
from jobs.views.common import customer_history_url

register = template.Library()
register.simple_tag(status_badge)


@register.simple_tag
def customer_url(cid: str) -> str:
    """The customer history of `cid`, whatever characters it holds."""
    return customer_history_url(cid)


@register.filter
def duration(job: Job, now=None) -> str:
    """How long the job ran (or has been running), as 1.234 s or 2 min 5 s."""
    if job.started_at is None:
        return ""
    end = job.finished_at or now
    if end is None:
        return ""
    return period(end - job.started_at)


@register.filter
def period(length: dt.timedelta) -> str:
    """A length of time as 1.234 s or 2 min 5 s."""
    seconds = length.total_seconds()
    if seconds < 60:
        return f"{seconds:.3f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@register.filter
def as_json(value) -> str:
    """Indented JSON, for showing payloads and details (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def in_words(period: dt.timedelta) -> str:
    """A period as "15 minutes", "1 hour" or "90 seconds"."""
    seconds = int(period.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
