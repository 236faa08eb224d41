"""devtools/supervision.py: when a process that exited is started again, and when not."""

from __future__ import annotations

import signal
import sys

from devtools.supervision import Backoff, RestartPolicy, Supervisor


def test_a_process_waiting_to_start_again_is_not_started_once_a_stop_was_asked_for():
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    supervisor = Supervisor([{"sleeper": sleeper}], policy=RestartPolicy(), say=lambda _: None)
    supervisor.start()
    [child] = supervisor.children
    try:
        child.process.kill()
        child.process.wait()
        supervisor.restart(child)
        second = child.process
        assert second.poll() is None

        second.kill()
        second.wait()
        supervisor.press(signal.SIGTERM)
        supervisor.restart(child)
        assert child.process is second
    finally:
        supervisor.stop()


def quick_exit(backoff: Backoff, at: float, ran: float) -> float | None:
    backoff.started(at)
    return backoff.exited(at + ran)


def test_the_wait_before_a_restart_doubles_up_to_its_longest():
    backoff = Backoff(RestartPolicy(delay=1, max_delay=30, stable_seconds=60))
    # Each ran 20 s: past the start limit, short of stable.
    delays = [quick_exit(backoff, at=100.0 * n, ran=20) for n in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_the_wait_is_short_again_after_a_process_stayed_up():
    backoff = Backoff(RestartPolicy(delay=1, max_delay=30, stable_seconds=60))
    assert [quick_exit(backoff, at=100.0 * n, ran=20) for n in range(3)] == [1, 2, 4]
    assert quick_exit(backoff, at=1000, ran=60) == 1
    assert quick_exit(backoff, at=2000, ran=20) == 2


def test_only_starts_in_a_row_that_end_within_the_start_limit_give_up():
    backoff = Backoff(RestartPolicy(burst=3, start_limit_seconds=10, max_delay=30))
    assert quick_exit(backoff, at=0, ran=1) == 1
    assert quick_exit(backoff, at=100, ran=9.9) == 2
    # A run past the limit starts the count again.
    assert quick_exit(backoff, at=200, ran=10) == 4
    assert quick_exit(backoff, at=300, ran=1) == 8
    assert quick_exit(backoff, at=400, ran=1) == 16
    assert quick_exit(backoff, at=500, ran=1) is None
