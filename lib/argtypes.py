"""Command-line argument types shared by the management commands.

Each is an argparse `type=`: it returns the parsed value or raises ArgumentTypeError with a
message that says what was expected, which Django shows as the command's error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import uuid
import zoneinfo
from collections.abc import Callable

from django.utils import timezone

from lib.numbers import NotANumber, whole_number


def positive_int(raw: str) -> int:
    """A whole number of at least 1."""
    try:
        return whole_number(raw, minimum=1)
    except NotANumber as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def job_id(raw: str) -> uuid.UUID:
    """A job's id (a UUID)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a job id") from None


def port(raw: str) -> int:
    """A TCP port, 0 to 65535 (0: the system picks a free one)."""
    try:
        return whole_number(raw, maximum=65535)
    except NotANumber:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0 to 65535)") from None


def seconds(maximum: float | None = None) -> Callable[[str], float]:
    """A type for a number of seconds, 0 or more, and at most `maximum` when given."""
    limit = "0 or more" if maximum is None else f"from 0 to {maximum:g}"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds, {limit}")
        return value

    return parse


def moment(raw: str) -> dt.datetime:
    """A date (midnight at its start) or a date and time; without an offset, in TIME_ZONE."""
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
        ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def time_zone(raw: str) -> zoneinfo.ZoneInfo:
    """An IANA time zone name."""
    try:
        return zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not an IANA time zone name such as UTC or Europe/Berlin"
        ) from None
