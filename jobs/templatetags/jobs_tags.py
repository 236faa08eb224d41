from __future__ import annotations

import datetime as dt
import json

from django import template

from jobs.badges import moment, status_badge
from jobs.models import Job
from jobs.views.approvals import approvals_waiting
from jobs.views.common import customer_history_url
from jobs.views.recent import recent_context

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


@register.filter
def when(at: dt.datetime | None) -> str:
    """A moment as a <time> in UTC, in the viewer's zone when asked (jobs.badges.moment)."""
    return moment(at)


@register.filter
def ordinal_place(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st..."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


@register.inclusion_tag("jobs/_recent_jobs.html", takes_context=True)
def recent_jobs(context) -> dict:
    """The signed-in user's recent jobs, a live region (jobs.views.recent)."""
    return recent_context(context["request"].user)


@register.filter
def time_left(period: dt.timedelta | None) -> str:
    """What remains of a wait, to the minute: "2 d 3 h", "3 h 12 min", "5 min", "under a
    minute"."""
    if period is None:
        return ""
    minutes = int(period.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@register.inclusion_tag("jobs/_approvals_link.html", takes_context=True)
def approvals_link(context) -> dict:
    """The header's link to what waits for the user's decision, with its count: one query,
    for approvers only (jobs.views.approvals)."""
    request = context.get("request")
    return approvals_waiting(getattr(request, "user", None))
