"""Bounds on the long polls in progress (`GET /api/v1/jobs/{id}?wait=S`).

A waiting request holds one of gunicorn's threads for up to S seconds. Without a bound, a
script's twenty waits took every thread of both web processes and the pages and /healthz
stalled. So each web process admits at most TMS_API_WAITS_PER_TOKEN waits of one token and
TMS_API_WAITS_PER_PROCESS waits in all (by default a quarter of its TMS_WEB_THREADS), and
refuses the rest at once with 429 and `Retry-After`: the rest of its threads stay free.

Both bounds are counted in this process's memory, not in the database: the threads they
protect are this process's, a count in memory costs no query and no write per wait, and it
cannot outlive its process (a killed process leaves no slot held that would need expiring).
A token may therefore have TMS_API_WAITS_PER_TOKEN waits in each web process at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from rest_framework.exceptions import APIException

_lock = threading.Lock()
# Each wait in progress: its ticket -> (its token's id, when it ends at the latest).
_waits: dict[object, tuple[int, float]] = {}


class WaitsBusy(APIException):
    """429: one more wait would pass a bound. `wait` becomes `Retry-After` (DRF's handler)."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, detail: str, wait: int) -> None:
        super().__init__(detail)
        self.wait = wait


def _retry_after(deadlines: list[float], now: float) -> int:
    """Seconds until the first of these waits ends at the latest, so frees its slot."""
    return max(math.ceil(min(deadlines) - now), 1)


@contextmanager
def wait_slot(*, token_id: int, seconds: float) -> Iterator[None]:
    """Hold one of this process's wait slots for the token during the block, or raise
    WaitsBusy (naming the bound that refused it) without running it. The slot is given back
    however the block ends: the job ended, the time ran out, the job was deleted, or an
    error. A client that hangs up is noticed only when its answer is written (gunicorn does
    not interrupt a request), so its slot is held until the job ends or `seconds` pass."""
    now = time.monotonic()
    ticket = object()
    with _lock:
        mine = [end for token, end in _waits.values() if token == token_id]
        if len(mine) >= settings.TMS_API_WAITS_PER_TOKEN:
            raise WaitsBusy(
                f"This token already has {len(mine)} requests waiting here, the most allowed "
                "(TMS_API_WAITS_PER_TOKEN). Ask again without ?wait, or retry after "
                "Retry-After seconds.",
                _retry_after(mine, now),
            )
        if len(_waits) >= settings.TMS_API_WAITS_PER_PROCESS:
            everyone = [end for _token, end in _waits.values()]
            raise WaitsBusy(
                f"This server already has {len(everyone)} requests waiting, the most it "
                "allows (TMS_API_WAITS_PER_PROCESS). Ask again without ?wait, or retry after "
                "Retry-After seconds.",
                _retry_after(everyone, now),
            )
        _waits[ticket] = (token_id, now + seconds)
    try:
        yield
    finally:
        with _lock:
            del _waits[ticket]
