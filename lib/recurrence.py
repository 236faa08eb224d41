"""Recurrences: RFC 5545 RRULEs in an IANA time zone, resolved to exact instants.

A rule is expanded by python-dateutil in the zone's local wall time, from an anchor (its
DTSTART: the schedule's start, read as a wall time in the zone), so "06:00 every weekday" stays
06:00 local through summer and winter. Each local time is then resolved to one instant through
`zoneinfo`, never by adding offsets by hand:

- a local time that does not exist that day (clocks jump forward over it: 02:30 in
  Europe/Berlin on 2027-03-28) runs at the first instant after the gap (03:00 local, 01:00
  UTC), or not at all when `missing_dst="skip"` (RFC 5545's rule for recurrence instances);
- a local time that happens twice (clocks fall back: 02:30 on 2027-10-31) runs once, at its
  first occurrence (00:30 UTC);
- two local times resolving to one instant (an hourly rule's 02:00 moved to 03:00 on the day
  clocks jump forward) run once.

An hourly rule therefore has no run in the repeated hour when clocks fall back, and one run
fewer on the day they jump forward: it follows the wall clock, as every other rule does.

python-dateutil does not stop looking for an occurrence until the year 9999, so rules that
could never occur, or would cost a long search to find none, are refused: sub-hourly
frequencies, and the combinations RFC 5545 forbids or that name a day no month has.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo, available_timezones

from dateutil.rrule import rrule, rrulestr

__all__ = [
    "MAX_RULE_LENGTH",
    "MISSING_DST_CHOICES",
    "RecurrenceError",
    "check_rule",
    "next_occurrences",
    "occurrences",
    "zone",
]

MAX_RULE_LENGTH = 300
MISSING_DST_CHOICES = ("run", "skip")
# The most one local time can be away from UTC's reading of it, and more: where an instant
# falls among a day's local times is looked for this far either side.
_MARGIN = dt.timedelta(days=2)
_FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_PARTS = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
_RULE_TEXT = re.compile(r"[A-Za-z0-9=;,+\-]+")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")
# The frequencies whose periods have one length in wall time.
_PERIODS = {
    "WEEKLY": dt.timedelta(weeks=1),
    "DAILY": dt.timedelta(days=1),
    "HOURLY": dt.timedelta(hours=1),
}
# The days each month can have at most (February: 29).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class RecurrenceError(ValueError):
    """A rule or a zone that cannot be used; its text is a message for users."""


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Berlin"), or RecurrenceError."""
    if not isinstance(name, str) or name not in _zone_names():
        raise RecurrenceError(f"Unknown time zone {str(name)[:64]!r}: use an IANA name.")
    return ZoneInfo(name)


def _numbers(value: str) -> list[int]:
    try:
        return [int(item) for item in value.split(",")]
    except ValueError:
        raise RecurrenceError(f"Not a list of numbers: {value!r}.") from None


def _parts(rule: str) -> dict[str, str]:
    """The rule's parts by name, checked against what this module accepts."""
    if not isinstance(rule, str):
        raise RecurrenceError("A recurrence rule is text, such as FREQ=DAILY;BYHOUR=6.")
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text or len(text) > MAX_RULE_LENGTH or not _RULE_TEXT.fullmatch(text):
        raise RecurrenceError(
            f"A recurrence rule is one RFC 5545 RRULE of up to {MAX_RULE_LENGTH} characters, "
            "such as FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0."
        )
    parts: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        name = name.upper()
        if not sep or not value or name not in _PARTS:
            raise RecurrenceError(f"Not a part of a recurrence rule: {part[:40]!r}.")
        if name in parts:
            raise RecurrenceError(f"{name} is given twice.")
        parts[name] = value.upper()
    _check_parts(parts)
    return parts


def _check_parts(parts: dict[str, str]) -> None:
    freq = parts.get("FREQ")
    if freq not in _FREQUENCIES:
        raise RecurrenceError(
            "FREQ is one of " + ", ".join(_FREQUENCIES) + " (nothing runs more often than hourly)."
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("A rule has COUNT or UNTIL, not both.")
    for name, low, high in (("COUNT", 1, 10_000), ("INTERVAL", 1, 1_000)):
        value = parts.get(name, str(low))
        if not value.isdigit() or not low <= int(value) <= high:
            raise RecurrenceError(f"{name} is a number from {low} to {high}.")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise RecurrenceError("BYWEEKNO is only for FREQ=YEARLY.")
    if "BYYEARDAY" in parts and freq not in ("YEARLY", "HOURLY"):
        raise RecurrenceError("BYYEARDAY is not for FREQ=MONTHLY, WEEKLY or DAILY.")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise RecurrenceError("BYMONTHDAY is not for FREQ=WEEKLY.")
    if "BYSETPOS" in parts and freq not in ("YEARLY", "MONTHLY"):
        raise RecurrenceError("BYSETPOS is only for FREQ=MONTHLY or YEARLY.")
    if "BYMONTHDAY" in parts:
        months = _numbers(parts["BYMONTH"]) if "BYMONTH" in parts else range(1, 13)
        longest = max((_MONTH_DAYS[m - 1] for m in months if 1 <= m <= 12), default=31)
        if all(abs(day) > longest for day in _numbers(parts["BYMONTHDAY"])):
            raise RecurrenceError("BYMONTHDAY names no day the months of the rule have.")


def _until(value: str, tz: ZoneInfo) -> dt.datetime:
    """UNTIL as a local wall time: a date means its end; a time ending in Z is UTC."""
    match = _UNTIL.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        date, time, utc = match.groups()
        if time is None:
            return dt.datetime.strptime(date, "%Y%m%d").replace(hour=23, minute=59, second=59)
        until = dt.datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        raise RecurrenceError(
            "UNTIL is a date (20271231) or a date and time (20271231T235959, or in UTC "
            "20271231T225959Z)."
        ) from None
    if utc:
        return until.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)
    return until


def _rule(rule: str, tz: ZoneInfo, anchor: dt.datetime, near: dt.datetime | None = None) -> rrule:
    """The rule as dateutil's, expanding in wall time from `anchor` (naive, local); or, with
    `near`, from the last whole number of the rule's periods after `anchor` not after `near`:
    the same occurrences from there on, without walking every period since `anchor`."""
    parts = _parts(rule)
    until = _until(parts.pop("UNTIL"), tz) if "UNTIL" in parts else None
    text = ";".join(f"{name}={value}" for name, value in parts.items())
    step = _PERIODS.get(parts["FREQ"])
    # COUNT counts from the anchor, and a month or a year has no one length: those walk.
    if near is not None and near > anchor and step and "COUNT" not in parts:
        period = step * int(parts.get("INTERVAL", "1"))
        # Wall-clock arithmetic on naive times: the hour, minute and weekday the anchor
        # gives the rule stay what they were.
        anchor += (near - anchor) // period * period
    try:
        parsed = rrulestr(text, dtstart=anchor)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RecurrenceError(f"Not a valid recurrence rule: {exc}.") from None
    return parsed.replace(until=until) if until else parsed


def check_rule(rule: str) -> None:
    """Raise RecurrenceError unless `rule` is an RRULE this module accepts."""
    _rule(rule, ZoneInfo("UTC"), dt.datetime(2000, 1, 1))


def _resolve(wall: dt.datetime, tz: ZoneInfo, missing_dst: str) -> dt.datetime | None:
    """The UTC instant of local time `wall` (naive): its first when it happens twice; for one
    that does not exist, the first instant after the gap, or None to skip it."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    if missing_dst == "skip":
        return None
    # In a gap, fold=1 reads the wall time with the offset from after the change, fold=0
    # with the one from before: the change lies between the two instants they give.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    high = first
    after = high.astimezone(tz).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def occurrences(
    rule: str,
    tz: str | ZoneInfo,
    start: dt.datetime,
    *,
    after: dt.datetime,
    missing_dst: str = "run",
) -> Iterator[dt.datetime]:
    """The rule's occurrences strictly after `after`, as increasing UTC instants, none twice.

    `start` anchors the rule (its DTSTART), read as a wall time in `tz`: parts the rule does
    not give (the hour of a daily rule without BYHOUR, say) are the start's.
    """
    if start.tzinfo is None or after.tzinfo is None:
        raise ValueError("start and after are aware datetimes")
    if missing_dst not in MISSING_DST_CHOICES:
        raise RecurrenceError("missing_dst is run or skip.")
    tz = zone(tz) if isinstance(tz, str) else tz
    anchor = start.astimezone(tz).replace(tzinfo=None, microsecond=0)
    earliest = after.astimezone(tz).replace(tzinfo=None) - _MARGIN
    expanded = _rule(rule, tz, anchor, near=earliest)
    last = after
    try:
        for wall in expanded.xafter(max(earliest, anchor), inc=True):
            instant = _resolve(wall, tz, missing_dst)
            if instant is not None and instant > last:
                last = instant
                yield instant
    except (OverflowError, ValueError):
        # Past the last year a datetime holds: the rule has no more occurrences.
        return


def next_occurrences(
    rule: str,
    tz: str | ZoneInfo,
    start: dt.datetime,
    *,
    after: dt.datetime,
    count: int,
    missing_dst: str = "run",
) -> list[dt.datetime]:
    """The first `count` of `occurrences`."""
    found = occurrences(rule, tz, start, after=after, missing_dst=missing_dst)
    return list(itertools.islice(found, count))
