"""Template tags of the schedules pages, and the job page's line naming the schedule that
made the job (loaded by name from the job's template: jobs imports nothing of schedules)."""

from __future__ import annotations

import datetime as dt
import re

from django import template
from django.db.models import Q
from django.utils.html import format_html
from django.utils.safestring import SafeString

from lib.recurrence import RecurrenceError, zone
from schedules.forms import WEEKDAYS
from schedules.models import Occurrence, Schedule

register = template.Library()

_AT = r"BYHOUR=(?P<hour>\d{1,2});BYMINUTE=(?P<minute>\d{1,2});BYSECOND=0"

# The rules the new schedule form's presets write (schedules.forms.ScheduleForm.rule), read
# back as the words they were chosen by.
PRESETS = [
    (re.compile(r"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;" + _AT), "Every weekday"),
    (re.compile(r"FREQ=DAILY;" + _AT), "Every day"),
    (re.compile(r"FREQ=WEEKLY;BYDAY=(?P<day>MO|TU|WE|TH|FR|SA|SU);" + _AT), "Every {day}"),
]
DAYS = dict(WEEKDAYS)
STATES = {
    "active": "Active",
    "paused": "Paused",
    "ended": "Ended",
    "broken": "Broken",
}


@register.filter
def local_time(moment: dt.datetime | None) -> str:
    """A moment as its zone's wall clock reads it, with the zone's abbreviation:
    "Sun 2027-03-28 03:00 CEST"."""
    if moment is None:
        return "—"
    return f"{moment:%a %Y-%m-%d %H:%M} {moment:%Z}"


@register.filter
def utc_time(moment: dt.datetime | None) -> str:
    """A moment in UTC, as text (the page's zone switch leaves it in UTC)."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


@register.filter
def seconds_in_words(seconds: int) -> str:
    """900 as "15 minutes", 3600 as "1 hour", 90 as "90 seconds"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@register.simple_tag
def schedule_when(schedule: Schedule) -> SafeString:
    """When it runs, in words: once at a local time, a preset's words, or its rule."""
    if schedule.run_at is not None:
        try:
            local = schedule.run_at.astimezone(zone(schedule.timezone))
        except RecurrenceError:
            local = schedule.run_at
        return format_html("Once, {}", local_time(local))
    for pattern, words in PRESETS:
        if match := pattern.fullmatch(schedule.rrule):
            day = DAYS.get(match.groupdict().get("day"), "")
            at = f"{int(match['hour']):02}:{int(match['minute']):02}"
            return format_html("{} at {}", words.format(day=day), at)
    return format_html('<span class="mono rule">{}</span>', schedule.rrule)


@register.simple_tag
def schedule_state(state: str) -> SafeString:
    return format_html(
        '<span class="badge schedule-{}" data-schedule-state="{}">{}</span>',
        state,
        state,
        STATES.get(state, state),
    )


@register.simple_tag
def occurrence_badge(occurrence: Occurrence) -> SafeString:
    return format_html(
        '<span class="badge occurrence-{}" data-occurrence-state="{}">{}</span>',
        occurrence.state,
        occurrence.state,
        occurrence.get_state_display(),
    )


@register.inclusion_tag("schedules/_run_by_schedule.html")
def run_by_schedule(job) -> dict:
    """The occurrence that made `job` (or its batch), if a schedule made it: one query."""
    made = Q(job=job.pk) | Q(batch_id=job.batch_id) if job.batch_id else Q(job=job.pk)
    occurrence = (
        Occurrence.objects.filter(made)
        .select_related("schedule__saved_set_action")
        .order_by("-occurs_at")
        .first()
    )
    if occurrence is None:
        return {"occurrence": None}
    try:
        local = occurrence.occurs_at.astimezone(zone(occurrence.schedule.timezone))
    except RecurrenceError:
        local = None
    return {"occurrence": occurrence, "local": local}
