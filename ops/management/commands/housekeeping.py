from __future__ import annotations

import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from lib.argtypes import seconds
from lib.outage import PASSING, ride_out
from ops.heartbeats import Heartbeat, Role, process_id
from ops.housekeeping import housekeeping_pass
from schedules.services import scheduler_pass


class Command(BaseCommand):
    help = (
        "Every --interval seconds: reap stale jobs, expire the approval requests past their "
        "deadline and remind the approvers of those pending at half their wait (once per "
        "request), end the task rows of workers that died, prune finished task rows, and "
        "remove API tokens revoked or expired more than TMS_API_TOKENS_KEEP_DAYS ago "
        "(audited); and every TMS_SCHEDULER_SECONDS fire the schedules' due occurrences, each "
        "once whatever the number of housekeeping processes (schedules.services.scheduler). "
        "Runs until SIGTERM or Ctrl-C (after the pass in hand), or once with "
        "--once. While running it sends heartbeats (/healthz wants one alive). Safe to run on "
        "several hosts at once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=seconds(maximum=3600),
            default=30,
            help="Seconds between passes (default: %(default)s).",
        )
        parser.add_argument("--once", action="store_true", help="Make one pass, then exit.")

    def handle(self, *, interval: float, once: bool, **options) -> None:
        stop = threading.Event()
        if not once:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        passes = {
            "interval": interval,
            "once": once,
            "stop": stop,
            "verbosity": options["verbosity"],
        }
        if once:
            self.run_passes(**passes)
            return
        # /healthz tells when no housekeeping process is alive.
        heartbeat = Heartbeat(process_id(), role=Role.HOUSEKEEPING)
        heartbeat.start()
        try:
            self.run_passes(**passes)
        finally:
            heartbeat.stop()

    def run_passes(
        self, *, interval: float, once: bool, stop: threading.Event, verbosity: int
    ) -> None:
        # The schedules are looked at every TMS_SCHEDULER_SECONDS, the rest every `interval`.
        housekeeping_due = time.monotonic()
        while True:
            try:
                if time.monotonic() >= housekeeping_due:
                    housekeeping_due = time.monotonic() + interval
                    # A database that blinks delays the pass; it does not end the process.
                    report = ride_out(
                        housekeeping_pass,
                        doing="housekeeping",
                        giving_up=lambda: once or stop.is_set(),
                    )
                    if verbosity > 1 or report.changed_anything:
                        self.stdout.write(f"housekeeping: {report}")
                scheduled = ride_out(
                    lambda: scheduler_pass(now=timezone.now()),
                    doing="scheduling",
                    giving_up=lambda: once or stop.is_set(),
                )
            except PASSING as error:
                if once:
                    raise CommandError(f"The database refused the pass: {error}") from error
                return
            if verbosity > 1 or scheduled.changed_anything:
                self.stdout.write(f"schedules: {scheduled}")
            wait = min(settings.TMS_SCHEDULER_SECONDS, housekeeping_due - time.monotonic())
            if once or stop.wait(max(wait, 0)):
                return
