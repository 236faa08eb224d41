"""The all-in-one runner's supervision (`manage.py run_dashboard`): its processes are restarted
as systemd restarts them in production (deploy/*.service), and stopped in stages.

A process that exits while no stop was asked for, however it exits (kill -9 included), is
started again after a back-off: `RestartPolicy.delay` at first, doubled at each exit up to
`max_delay`, and back to `delay` once the process had stayed up `stable_seconds`. A process
that keeps dying right after its start (`burst` starts in a row, each ending within
`start_limit_seconds` of it) has a fault a restart does not cure, such as a port already taken
or a setting it refuses: the runner then gives up, like systemd's StartLimitBurst, and stops
everything rather than run without it.

A stop (the first SIGINT or SIGTERM) ends the processes stage by stage, each let finish what it
has in hand; the second forces them. Nothing is started again once a stop was asked for.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# After a forced stop, how long the processes get before they are killed.
FORCE_SECONDS = 10
# How often the processes are looked at while nothing else wakes the runner.
POLL_SECONDS = 0.1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """In a child, before it runs: SIGTERM it when this runner dies, however it dies (Linux),
    and let it receive the stop signals the runner held back while starting it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back: one arriving meanwhile is handled on the way out, so that
    a stop is either asked for before a restart (and prevents it) or after (and ends it)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class RestartPolicy:
    """When a process that exited is started again. deploy/*.service say the same to systemd
    (tests/test_deploy.py holds them to it)."""

    delay: float = 1.0
    max_delay: float = 30.0
    stable_seconds: float = 60.0
    burst: int = 5
    start_limit_seconds: float = 10.0


class Backoff:
    """One process's restart record: the wait before its next start, and how many of its
    starts in a row ended within the start limit. Times are the caller's clock readings."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.next_delay = policy.delay
        self.quick_exits = 0
        self.started_at = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def exited(self, now: float) -> float | None:
        """Seconds to wait before starting the process again; None when it has now ended
        `burst` starts in a row within the start limit, and must not be started again."""
        ran = now - self.started_at
        if ran >= self.policy.stable_seconds:
            self.next_delay = self.policy.delay
        self.quick_exits = self.quick_exits + 1 if ran < self.policy.start_limit_seconds else 0
        if self.quick_exits >= self.policy.burst:
            return None
        delay = self.next_delay
        self.next_delay = min(delay * 2, self.policy.max_delay)
        return delay


class Child:
    """A supervised process: its command, the process that runs it or last ran it, and when it
    is due to start again if it is waiting to."""

    def __init__(self, name: str, argv: list[str], policy: RestartPolicy) -> None:
        self.name = name
        self.argv = argv
        self.backoff = Backoff(policy)
        self.process: subprocess.Popen | None = None
        self.restart_at: float | None = None

    def start(self, now: float) -> None:
        # A session of its own: a terminal's Ctrl-C reaches the runner only, which then stops
        # each child once, in order.
        self.process = subprocess.Popen(
            self.argv, start_new_session=True, preexec_fn=_stop_with_parent
        )
        self.backoff.started(now)
        self.restart_at = None

    def exited(self) -> bool:
        return self.restart_at is None and self.process.poll() is not None


class Supervisor:
    """The runner's processes, `stages` of {name: argv}, stopped in the stages' order."""

    def __init__(
        self,
        stages: list[dict[str, list[str]]],
        *,
        policy: RestartPolicy,
        say: Callable[[str], None],
    ) -> None:
        self.stages = [[Child(name, argv, policy) for name, argv in s.items()] for s in stages]
        self.policy = policy
        self.say = say
        self.presses: list[int] = []
        self.wake = threading.Event()

    @property
    def children(self) -> list[Child]:
        return [child for stage in self.stages for child in stage]

    def press(self, signum: int, frame: object = None) -> None:
        """A stop signal's handler: the first asks for a graceful stop, the second forces it."""
        self.presses.append(signum)
        self.wake.set()

    def start(self) -> None:
        with _stop_signals_held():
            for child in self.children:
                child.start(time.monotonic())

    def supervise(self) -> str | None:
        """Restart the processes that exit, until a stop is asked for (None) or one keeps
        dying right after its start (what to tell the operator)."""
        while not self.presses:
            for child in self.children:
                if child.restart_at is not None and time.monotonic() >= child.restart_at:
                    self.restart(child)
                elif child.exited():
                    given_up = self._schedule_restart(child)
                    if given_up:
                        return given_up
            self.wake.wait(self._seconds_to_next_look())
            self.wake.clear()
        return None

    def _schedule_restart(self, child: Child) -> str | None:
        now = time.monotonic()
        ran = now - child.backoff.started_at
        how = describe_exit(child.process.returncode)
        delay = child.backoff.exited(now)
        if delay is None:
            return (
                f"The {child.name} process exited {self.policy.burst} times in a row, each "
                f"within {self.policy.start_limit_seconds:g} s of its start (last: {how}); a "
                f"restart does not cure that. Look at its lines above for why (a port already "
                f"taken, a database it cannot reach, a setting it refuses)."
            )
        child.restart_at = now + delay
        at = (datetime.now() + timedelta(seconds=delay)).strftime("%H:%M:%S")
        self.say(
            f"The {child.name} process (pid {child.process.pid}) exited after {ran:.1f} s: "
            f"{how}. Starting it again in {delay:g} s, at {at}."
        )
        return None

    def restart(self, child: Child) -> None:
        """Start a process that is waiting to start again, unless a stop was asked for."""
        with _stop_signals_held():
            if self.presses:
                return
            child.start(time.monotonic())
        self.say(f"Started the {child.name} process again (pid {child.process.pid}).")

    def _seconds_to_next_look(self) -> float:
        due = [c.restart_at - time.monotonic() for c in self.children if c.restart_at is not None]
        return max(0.0, min([POLL_SECONDS, *due]))

    def stop(self) -> None:
        """Stop stage by stage: SIGTERM lets each process finish what it has in hand; a second
        press passes SIGINT to every process, which forces it, and kills what is still there
        FORCE_SECONDS later. A process waiting to start again is simply not started."""
        forced = False
        for stage in self.stages:
            processes = [child.process for child in stage]
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            while any(p.poll() is None for p in processes):
                self.wake.clear()
                if len(self.presses) > 1 and not forced:
                    forced = True
                    self.say("Forcing the stop.")
                    for child in self.children:
                        if child.process.poll() is None:
                            child.process.send_signal(signal.SIGINT)
                if forced and not _wait_all(processes, FORCE_SECONDS):
                    for process in processes:
                        process.kill()
                self.wake.wait(0.2)
        for child in self.children:
            child.process.wait()


def _wait_all(processes: list[subprocess.Popen], seconds: float) -> bool:
    try:
        for process in processes:
            process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True
