from __future__ import annotations

import argparse
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from devtools.fake_cluster import SET_ACTION_PATH, FakeCluster, loopback_host
from lib.argtypes import port, seconds


def _host(value: str) -> str:
    try:
        return loopback_host(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = (
        f"Serves a fake TMS cluster on a loopback address until Ctrl-C or SIGTERM. POST "
        f"{SET_ACTION_PATH} answers like a real cluster; customer IDs starting SLOW (answer "
        "after --slow-seconds), TRICKLE (body trickled over --slow-seconds), E500, REJECT, "
        "HTML, PARTIAL, REDIRECT or HUGE, and the token bad-token, produce each way a cluster "
        "can fail. GET /_counts (or /_counts/<job_id>) shows how many requests each job id "
        "sent. It refuses to listen on any address that is not loopback."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--host", type=_host, default="127.0.0.1", help="A loopback address (127.0.0.1)."
        )
        parser.add_argument(
            "--port", type=port, default=9100, help="The port (9100; 0 picks a free one)."
        )
        parser.add_argument(
            "--slow-seconds",
            type=seconds(maximum=3600),
            default=35.0,
            help="How long SLOW and TRICKLE answers take (35, past the default 30 s timeout).",
        )

    def handle(self, *, host: str, port: int, slow_seconds: float, **options) -> None:
        fake = FakeCluster(host=host, port=port, slow_seconds=slow_seconds)
        try:
            fake.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {fake.url}: {exc.strerror or exc}") from None
        stop_requested = []
        previous = signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
        try:
            self.stdout.write(
                f"Fake cluster listening on {fake.url} (Set Action at {SET_ACTION_PATH}, "
                f"slow answers take {slow_seconds:g}s); Ctrl-C or SIGTERM stops it."
            )
            self.stdout.flush()
            # Polled rather than blocked on, so that the signal handler only has to set a flag.
            while not stop_requested:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            fake.stop()
        counts = fake.counts()
        self.stdout.write(
            f"Fake cluster stopped after {sum(counts.values())} Set Action request(s) "
            f"for {len(counts)} job(s)."
        )
