"""Riding out a database that blinks, for the processes that run for days (the worker,
housekeeping).

A dropped connection, a server restarting, SQLite's "database is locked" and "database or disk
is full" all reach Django as `OperationalError` or `InterfaceError`, and all pass: `ride_out`
runs a piece of work again until the database takes it, dropping the thread's broken
connection and backing off (doubling up to LONGEST_WAIT_SECONDS, with full jitter, so that the
processes of many hosts do not come back in step). Other database errors (a constraint, a
programming error) are raised at once: trying again would not help.

The process logs an outage once when it starts and once when it ends, however many threads and
attempts it spanned, and sends `outage_ended` then, for the metrics to count it once the
database can be written again.

Only a whole transaction can be tried again: work already inside a transaction (a caller's
`atomic`, a test's) is run once, and its caller's transaction decides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.dispatch import Signal
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_never,
    wait_random_exponential,
)

logger = logging.getLogger(__name__)

PASSING = (OperationalError, InterfaceError)
FIRST_WAIT_SECONDS = 0.1
LONGEST_WAIT_SECONDS = 5.0

T = TypeVar("T")

# Sent by the thread that found the database back: `seconds` the outage lasted, and
# `retried` attempts that failed during it, across the process's threads.
outage_ended = Signal()


class _Outage:
    """The process's current outage, if any, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._retried = 0

    def failed(self, error: BaseException, doing: str) -> None:
        with self._lock:
            self._retried += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        logger.warning(
            "database unavailable while %s (%s: %s); retrying until it is back",
            doing,
            type(error).__name__,
            _first_line(error),
        )

    def recovered(self) -> None:
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            seconds = time.monotonic() - self._since
            retried, self._since, self._retried = self._retried, None, 0
        logger.warning(
            "database back after %.1f s (%d attempt(s) retried meanwhile)", seconds, retried
        )
        outage_ended.send(sender=_Outage, seconds=seconds, retried=retried)


OUTAGE = _Outage()


def _first_line(error: BaseException) -> str:
    return str(error).strip().partition("\n")[0][:200]


def outage_failed(error: BaseException, doing: str) -> None:
    """Note a passing database error met while `doing` something (logged once an outage)."""
    OUTAGE.failed(error, doing)


def outage_recovered() -> None:
    """Note that the database took work again (ends the outage, if one was on)."""
    OUTAGE.recovered()


def ride_out(
    work: Callable[[], T],
    *,
    doing: str,
    giving_up: Callable[[], bool] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> T:
    """`work()`, run again after each passing database error until it succeeds, for as long as
    the process lives, or until `giving_up()` says so (the error is then raised).

    `work` must be a whole transaction, or statements each their own, and safe to run again:
    a compare-and-set, or a read. `doing` names it in the outage's log line.
    """
    if connections[using].in_atomic_block:
        return work()

    def before_sleep(state: RetryCallState) -> None:
        OUTAGE.failed(state.outcome.exception(), doing)
        # This thread's connection may be broken: the next attempt opens a new one.
        connections[using].close()

    retrying = Retrying(
        retry=retry_if_exception_type(PASSING),
        wait=wait_random_exponential(multiplier=FIRST_WAIT_SECONDS, max=LONGEST_WAIT_SECONDS),
        stop=(lambda state: giving_up()) if giving_up else stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
    result = retrying(work)
    OUTAGE.recovered()
    return result
