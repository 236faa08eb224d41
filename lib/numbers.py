"""The one way a number from outside (a form, a query parameter, a header, a JSON body, a
command's argument) becomes an int.

Python's `str.isdigit()` and `int()` both take digits of other scripts, and not the same ones:
"²".isdigit() is true but int("²") raises, and int("٣") is 3. A value that passed the first and
failed the second was a 500 in four places. Here only the ASCII digits 0-9 count, with no sign,
space, underscore or other script, and the value must lie within bounds, so that it also fits
the database's integer columns.
"""

from __future__ import annotations

import re

# The largest integer (and primary key) either database stores in a bigint column: a larger
# number names no row, and SQLite cannot even be asked about it (OverflowError).
LARGEST = 2**63 - 1

_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")


class NotANumber(ValueError):
    """A value that is not a whole number within the bounds asked for; its message says which
    numbers were expected."""


class OutOfBounds(NotANumber):
    """A whole number of ASCII digits, but outside the bounds asked for."""


def bounds_text(minimum: int, maximum: int) -> str:
    """The numbers within the bounds, in words: "from 1 to 200", "of at least 1"."""
    if maximum == LARGEST:
        return f"of at least {minimum}"
    return f"from {minimum} to {maximum}"


def whole_number(value: str | int, *, minimum: int = 0, maximum: int = LARGEST) -> int:
    """`value` as an int: a string of ASCII digits 0-9 only (or an int, not a bool), from
    `minimum` to `maximum` (at most LARGEST). Raises OutOfBounds for a number outside them,
    NotANumber for anything else."""
    expected = f"{str(value)[:30]!r} is not a whole number {bounds_text(minimum, maximum)}"
    if isinstance(value, str) and _ASCII_DIGITS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        # Compared as text first: int() of a megabyte of digits is slow, or refused outright.
        number = int(digits) if len(digits) <= len(str(LARGEST)) else None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise NotANumber(expected)
    if number is None or not minimum <= number <= min(maximum, LARGEST):
        raise OutOfBounds(expected)
    return number


def decimal_number(value: str, *, maximum: float) -> float:
    """`value` as a float: ASCII digits with an optional fraction ("2", "0.5"), without a
    sign, an exponent, "inf" or "nan", at most `maximum`. Raises NotANumber otherwise."""
    expected = f"{str(value)[:30]!r} is not a number from 0 to {maximum:g}"
    if not isinstance(value, str) or not _ASCII_DECIMAL.fullmatch(value):
        raise NotANumber(expected)
    number = float(value)
    if number > maximum:
        raise OutOfBounds(expected)
    return number
