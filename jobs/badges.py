"""The status badge: one look for a job's status, in the operator UI and in the admin.

Its colours are in static/css/badges.css, which both load.
"""

from __future__ import annotations

import datetime as dt

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
    explain on hover (DENIED with who denied it and why). A queued job held back says what
    it waits for (`waiting_note`)."""
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
        return format_html('{} <span class="badge-note">{}</span>', badge, waiting_note(job))
    return badge


def waiting_note(job: Job) -> SafeString | str:
    """What a queued job that a worker put back waits for, as its last claim found: a free
    call to its cluster, a change freeze to end or its cluster's maintenance window to open
    (the moment in the viewer's zone, see `moment`)."""
    until = job.waiting_until
    if job.waiting_for == Job.WaitingFor.FREEZE:
        return format_html("held by the change freeze until {}", moment(until))
    if job.waiting_for == Job.WaitingFor.WINDOW and until:
        return format_html("waiting for the window (opens {})", moment(until))
    if job.waiting_for == Job.WaitingFor.WINDOW:
        return "waiting for the window (none is due to open)"
    return WAITING


def moment(at: dt.datetime | None) -> SafeString | str:
    """A moment as a <time> in UTC to the second, saying so ("—" for none). The page's zone
    switch (static/js/tmsdash.js) shows it in the browser's zone instead when asked."""
    if at is None:
        return "—"
    utc = at.astimezone(dt.UTC)
    return format_html(
        '<time datetime="{}">{} UTC</time>',
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
    )
