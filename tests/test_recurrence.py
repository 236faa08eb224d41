"""Recurrences resolved to instants (lib.recurrence): the daylight-saving days, odd zones, and
the rules refused. No database: these are pure computations."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from lib.recurrence import RecurrenceError, check_rule, next_occurrences, occurrences, zone

BERLIN = "Europe/Berlin"
START = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def runs(rule: str, tz: str, after: dt.datetime, count: int, **options) -> list[dt.datetime]:
    return next_occurrences(rule, tz, START, after=after, count=count, **options)


def test_a_local_time_in_the_spring_gap_runs_once_at_the_first_instant_after_it():
    # 2027-03-28: Berlin's clocks jump from 02:00 to 03:00; 02:30 does not exist that day.
    found = runs("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", BERLIN, utc(2027, 3, 26, 12), 4)
    assert found == [
        utc(2027, 3, 27, 1, 30),
        utc(2027, 3, 28, 1),
        utc(2027, 3, 29, 0, 30),
        utc(2027, 3, 30, 0, 30),
    ]
    # 01:00 UTC is 03:00 local, the first instant after the gap.
    assert found[1].astimezone(zone(BERLIN)).strftime("%H:%M %Z") == "03:00 CEST"


def test_a_local_time_in_the_spring_gap_is_skipped_when_the_rule_says_so():
    found = runs(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", BERLIN, utc(2027, 3, 26, 12), 3, missing_dst="skip"
    )
    assert found == [utc(2027, 3, 27, 1, 30), utc(2027, 3, 29, 0, 30), utc(2027, 3, 30, 0, 30)]


def test_a_local_time_that_happens_twice_runs_once_at_its_first_occurrence():
    # 2027-10-31: Berlin's clocks fall back from 03:00 to 02:00; 02:30 happens twice.
    found = runs("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", BERLIN, utc(2027, 10, 29, 12), 4)
    assert found == [
        utc(2027, 10, 30, 0, 30),
        utc(2027, 10, 31, 0, 30),
        utc(2027, 11, 1, 1, 30),
        utc(2027, 11, 2, 1, 30),
    ]


def test_an_hourly_rule_follows_the_wall_clock_across_both_changes():
    spring = runs("FREQ=HOURLY;BYMINUTE=0", BERLIN, utc(2027, 3, 27, 22, 30), 4)
    # 02:00 local does not exist: it runs at 03:00 local (01:00 UTC), once with 03:00's own.
    assert spring == [
        utc(2027, 3, 27, 23),
        utc(2027, 3, 28, 0),
        utc(2027, 3, 28, 1),
        utc(2027, 3, 28, 2),
    ]
    autumn = runs("FREQ=HOURLY;BYMINUTE=0", BERLIN, utc(2027, 10, 30, 22, 30), 4)
    # 02:00 local happens twice: it runs at the first (00:00 UTC) and not in the repeated hour.
    assert autumn == [
        utc(2027, 10, 30, 23),
        utc(2027, 10, 31, 0),
        utc(2027, 10, 31, 2),
        utc(2027, 10, 31, 3),
    ]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Weekdays at 06:00 local: 05:00 UTC in winter, 04:00 UTC in summer.
        (utc(2027, 3, 25, 12), [utc(2027, 3, 26, 5), utc(2027, 3, 29, 4), utc(2027, 3, 30, 4)]),
        (utc(2027, 10, 28, 12), [utc(2027, 10, 29, 4), utc(2027, 11, 1, 5), utc(2027, 11, 2, 5)]),
    ],
)
def test_a_byhour_rule_keeps_its_local_hour_across_both_changes(after, expected):
    rule = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0"
    assert runs(rule, BERLIN, after, 3) == expected


def test_a_start_in_summer_time_computed_in_winter_keeps_its_local_hour():
    # Started 2027-07-01 06:00 CEST (04:00 UTC) with no BYHOUR: every day at 06:00 local.
    summer_start = utc(2027, 7, 1, 4)
    winter = next_occurrences("FREQ=DAILY", BERLIN, summer_start, after=utc(2027, 12, 1), count=2)
    assert winter == [utc(2027, 12, 1, 5), utc(2027, 12, 2, 5)]
    summer = next_occurrences("FREQ=DAILY", BERLIN, summer_start, after=utc(2027, 7, 1), count=2)
    assert summer == [utc(2027, 7, 1, 4), utc(2027, 7, 2, 4)]


def test_a_zone_that_changes_by_thirty_minutes():
    # Lord Howe Island moves from +10:30 to +11:00 at 02:00 local on 2027-10-03: 02:15 does
    # not exist that day and runs at 02:30 local; the days around keep 02:15.
    found = runs("FREQ=DAILY;BYHOUR=2;BYMINUTE=15", "Australia/Lord_Howe", utc(2027, 10, 1, 12), 3)
    assert found == [utc(2027, 10, 1, 15, 45), utc(2027, 10, 2, 15, 30), utc(2027, 10, 3, 15, 15)]
    # And back on 2028-04-02, 01:45 happens twice (at +11:00, then at +10:30): the first.
    found = runs("FREQ=DAILY;BYHOUR=1;BYMINUTE=45", "Australia/Lord_Howe", utc(2028, 3, 31, 12), 3)
    assert found == [utc(2028, 3, 31, 14, 45), utc(2028, 4, 1, 14, 45), utc(2028, 4, 2, 15, 15)]


def test_occurrences_are_strictly_after_and_never_the_same_instant_twice():
    found = list(
        occurrences("FREQ=HOURLY;COUNT=10000", BERLIN, utc(2027, 1, 1), after=utc(2027, 1, 1))
    )
    assert found == sorted(set(found))
    assert found[0] > utc(2027, 1, 1)
    assert len(found) < 10000  # The start itself, and the hours lost to the spring gap.


def test_until_in_utc_and_count_end_a_rule():
    assert runs("FREQ=DAILY;UNTIL=20270103T000000Z", "UTC", utc(2026, 12, 1), 9) == [
        utc(2027, 1, 1),
        utc(2027, 1, 2),
        utc(2027, 1, 3),
    ]
    assert runs("FREQ=DAILY;COUNT=2", "UTC", utc(2026, 12, 1), 9) == [
        utc(2027, 1, 1),
        utc(2027, 1, 2),
    ]
    assert runs("FREQ=DAILY;COUNT=2", "UTC", utc(2027, 6, 1), 9) == []


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=DAILY;FREQ=DAILY",
        "FREQ=DAILY\nDTSTART:20270101T000000",
        "DTSTART:20270101T000000",
        "BYHOUR=6",
        "FREQ=DAILY;BYHOUR=24",
        "FREQ=DAILY;BYHOUR=²",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=3;UNTIL=20280101",
        "FREQ=DAILY;INTERVAL=99999999999999999999",
        "FREQ=DAILY;UNTIL=2027",
        "FREQ=DAILY;UNTIL=20271340",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYWEEKNO=20",
        "FREQ=WEEKLY;BYSETPOS=1",
        "FREQ=WEEKLY;BYMONTHDAY=1",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=DAILY;" + "BYHOUR=1;" * 100,
    ],
)
def test_rules_that_cannot_be_used_are_refused_with_a_message(rule):
    with pytest.raises(RecurrenceError) as refused:
        check_rule(rule)
    assert str(refused.value)


def test_an_rrule_prefix_and_lower_case_are_accepted():
    check_rule("RRULE:freq=monthly;byday=mo,tu,we,th,fr;bysetpos=-1")


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../../etc/passwd", "Europe/Berlin\x00", 5])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(RecurrenceError):
        zone(name)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;BYMINUTE=0",
        "FREQ=HOURLY;INTERVAL=7;BYMINUTE=15",
        "FREQ=DAILY;INTERVAL=3;BYHOUR=2;BYMINUTE=30",
        "FREQ=WEEKLY;INTERVAL=2",
        "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=6;WKST=SU",
        "FREQ=DAILY;BYMONTH=3,10;BYDAY=SU",
    ],
)
def test_a_rule_started_long_ago_gives_what_walking_from_its_start_gives(rule):
    start = dt.datetime(2019, 5, 17, 13, 45, 10, tzinfo=dt.UTC)
    after = utc(2027, 3, 27, 20)
    walked = occurrences(rule, BERLIN, start, after=start)
    expected = [instant for instant in itertools.takewhile(lambda i: i < utc(2031, 1, 1), walked)]
    expected = [instant for instant in expected if instant > after][:20]
    assert next_occurrences(rule, BERLIN, start, after=after, count=20) == expected
