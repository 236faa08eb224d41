from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from lib.argtypes import seconds
from lib.outage import PASSING, ride_out
from ops.heartbeats import Heartbeat, Role, process_id
from ops.housekeeping import housekeeping_pass


class Command(BaseCommand):
    help = (
        "Every --interval seconds: reap stale jobs, expire the approval requests past their "
        "deadline and remind the approvers of those pending at half their wait (once per "
        "request), end the task rows of workers that died, prune finished task rows, and "
        "remove API tokens revoked or expired more than TMS_API_TOKENS_KEEP_DAYS ago "
        "(audited). Runs until SIGTERM or Ctrl-C (after the pass in hand), or once with "
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
        while True:
            try:
                # A database that blinks delays the pass; it does not end the process.
                report = ride_out(
                    housekeeping_pass, doing="housekeeping", giving_up=lambda: once or stop.is_set()
                )
            except PASSING as error:
                if once:
                    raise CommandError(f"The database refused the pass: {error}") from error
                return
            if verbosity > 1 or report.changed_anything:
                self.stdout.write(f"housekeeping: {report}")
            if once or stop.wait(interval):
                return
