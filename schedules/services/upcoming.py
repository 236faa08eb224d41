"""A schedule's next occurrences, in UTC and in its own time zone (lib.recurrence alone
computes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lib.recurrence import next_occurrences, zone
from schedules.models import Schedule

# The most occurrences asked for at once.
MAX_NEXT = 100


@dataclass(frozen=True)
class Upcoming:
    utc: datetime
    local: datetime


def schedule_next(*, schedule: Schedule, after: datetime, count: int) -> list[Upcoming]:
    """The first `count` (1 to MAX_NEXT) occurrences strictly after `after` (aware), each in
    UTC and in the schedule's zone. Raises lib.recurrence.RecurrenceError when its rule or
    zone no longer parses."""
    count = max(1, min(count, MAX_NEXT))
    tz = zone(schedule.timezone)
    if schedule.run_at is not None:
        instants = [schedule.run_at] if schedule.run_at > after else []
    else:
        instants = next_occurrences(
            schedule.rrule,
            tz,
            schedule.start,
            after=after,
            count=count,
            missing_dst=schedule.missing_dst,
        )
    return [Upcoming(utc=instant, local=instant.astimezone(tz)) for instant in instants]
