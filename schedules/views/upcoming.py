"""A schedule's next runs as its page shows them: in its own zone and in UTC, each run the
clocks moved or doubled said so in words.

Every instant comes from lib.recurrence (through schedules.services.schedule_next). Which
runs a gap moved is found by asking lib.recurrence again with the other missing-time choice:
a run that "skip" does not have was moved (with "run"), an instant only "run" has was
skipped (with "skip"). The local time the rule meant is found by expanding the same rule in
UTC, where every wall time exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lib.recurrence import RecurrenceError, next_occurrences, zone
from schedules.models import Schedule
from schedules.services import schedule_next

NEXT_RUNS = 10
UTC = ZoneInfo("UTC")
# More than a day of any rule's wall times (an hourly rule has 24).
WALLS_A_DAY = 60


@dataclass(frozen=True)
class Run:
    utc: dt.datetime
    local: dt.datetime
    note: str = ""
    skipped: bool = False


def _day(local: dt.datetime) -> str:
    return f"{local.day} {local:%b %Y}"


def _meant(schedule: Schedule, tz: ZoneInfo, moved_to: dt.datetime) -> list[str]:
    """The rule's local times that fall in the gap which ends at `moved_to` (its first
    instant after the clocks jumped), as HH:MM."""
    local = moved_to.astimezone(tz)
    gap_start = (moved_to - dt.timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None)
    gap_start += dt.timedelta(seconds=1)
    gap_end = local.replace(tzinfo=None)
    anchor = schedule.start.astimezone(tz).replace(tzinfo=UTC)
    after = dt.datetime.combine(gap_start.date(), dt.time.min, tzinfo=UTC) - dt.timedelta(seconds=1)
    walls = next_occurrences(schedule.rrule, UTC, anchor, after=after, count=WALLS_A_DAY)
    return [
        f"{wall:%H:%M}"
        for wall in (w.replace(tzinfo=None) for w in walls)
        if gap_start <= wall < gap_end
    ]


def _gap_note(schedule: Schedule, tz: ZoneInfo, moved_to: dt.datetime, *, skipped: bool) -> str:
    local = moved_to.astimezone(tz)
    meant = _meant(schedule, tz, moved_to)
    what = " and ".join(meant) if meant else "A time in the skipped hour"
    verb = "does" if len(meant) <= 1 else "do"
    outcome = "not run (the schedule skips it)" if skipped else f"runs at {local:%H:%M}"
    return f"{what} {verb} not exist on {_day(local)} (the clocks go forward): {outcome}"


def _twice_note(local: dt.datetime) -> str:
    """Said of a run at a local time that happens twice (the clocks go back)."""
    other = local.replace(fold=1 - local.fold)
    if other.astimezone(UTC) == local.astimezone(UTC):
        return ""
    return (
        f"{local:%H:%M} happens twice on {_day(local)} (the clocks go back): "
        "runs once, the first time"
    )


def upcoming(schedule: Schedule, *, after: dt.datetime, count: int = NEXT_RUNS) -> list[Run]:
    """The schedule's next `count` runs after `after`, with the instants the clocks skipped
    among them (skipped=True) when the schedule skips those. Raises RecurrenceError when its
    rule or zone no longer parses."""
    runs = schedule_next(schedule=schedule, after=after, count=count)
    tz = zone(schedule.timezone)
    if not schedule.recurring or not runs:
        return [Run(utc=r.utc, local=r.local, note=_twice_note(r.local)) for r in runs]
    other = "skip" if schedule.missing_dst == Schedule.MissingDst.RUN else "run"
    compared = next_occurrences(
        schedule.rrule, tz, schedule.start, after=after, count=count, missing_dst=other
    )
    instants = {r.utc for r in runs}
    if other == "skip":
        moved = instants - set(compared)
        return [
            Run(
                utc=r.utc,
                local=r.local,
                note=_gap_note(schedule, tz, r.utc, skipped=False)
                if r.utc in moved
                else _twice_note(r.local),
            )
            for r in runs
        ]
    rows = [Run(utc=r.utc, local=r.local, note=_twice_note(r.local)) for r in runs]
    last = runs[-1].utc
    rows += [
        Run(
            utc=instant,
            local=instant.astimezone(tz),
            note=_gap_note(schedule, tz, instant, skipped=True),
            skipped=True,
        )
        for instant in compared
        if instant not in instants and instant < last
    ]
    return sorted(rows, key=lambda row: row.utc)


def next_run(schedule: Schedule, *, after: dt.datetime) -> tuple[dt.datetime | None, str]:
    """The next run in the schedule's zone (None when there is none), or why it is not known."""
    try:
        runs = schedule_next(schedule=schedule, after=after, count=1)
    except RecurrenceError as exc:
        return None, str(exc)
    return (runs[0].local if runs else None), ""
