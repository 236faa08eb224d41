"""lib.argtypes: the management commands' shared argument types."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from lib import argtypes


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        (argtypes.positive_int, "1", 1),
        (argtypes.port, "0", 0),
        (argtypes.port, "65535", 65535),
        (argtypes.seconds(), "2.5", 2.5),
        (argtypes.seconds(maximum=3600), "3600", 3600.0),
    ],
)
def test_accepts_what_it_names(parse, raw, expected):
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (argtypes.positive_int, "0", "not a whole number of at least 1"),
        (argtypes.positive_int, "-3", "not a whole number of at least 1"),
        (argtypes.port, "65536", "not a port number"),
        (argtypes.seconds(), "-1", "not a number of seconds, 0 or more"),
        (argtypes.seconds(), "nan", "not a number of seconds"),
        (argtypes.seconds(), "inf", "not a number of seconds"),
        (argtypes.seconds(maximum=3600), "3601", "from 0 to 3600"),
        (argtypes.moment, "29/01/2026", "is not a date"),
        (argtypes.time_zone, "Mars/Olympus", "not an IANA time zone"),
    ],
)
def test_refuses_with_a_message_saying_what_was_expected(parse, raw, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(raw)


def test_a_moment_without_an_offset_is_in_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    value = argtypes.moment("2026-01-29")
    assert value.utcoffset() == dt.timedelta(hours=1)
    assert argtypes.moment("2026-01-29T10:00+00:00").utcoffset() == dt.timedelta(0)
