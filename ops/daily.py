"""Once a day across every host: a named housekeeping step runs on the first pass of the day
(in TIME_ZONE) whose compare-and-set on the step's DailyRun row moves it to today. A step
that is not done (a backlog left for the next pass) gives the day back, and the next pass, on
whichever host, claims it again."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from ops.models import DailyRun

ONE_DAY = dt.timedelta(days=1)


def daily_claim(name: str, *, now: dt.datetime) -> bool:
    """Take today's run of the step `name`: True for exactly one caller a day, whichever
    host asks."""
    today = timezone.localdate(now)
    DailyRun.objects.get_or_create(name=name, defaults={"last_day": today - ONE_DAY})
    return bool(DailyRun.objects.filter(name=name, last_day__lt=today).update(last_day=today))


def daily_release(name: str, *, now: dt.datetime) -> None:
    """Give today's run of the step `name` back: its next pass claims it again."""
    DailyRun.objects.filter(name=name).update(last_day=timezone.localdate(now) - ONE_DAY)
