from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from jobs.services import job_reap_stale
from lib.argtypes import positive_int

HOUSEKEEPING_SECONDS = 60
STOP_SECONDS = 15


class Command(BaseCommand):
    help = (
        "Runs the whole dashboard on one machine, for development and demos: the web server, "
        "one db_worker process per concurrent cluster call (TMS_WORKER_CONCURRENCY), the fake "
        "cluster, and every minute the reaper and the pruning of finished task rows. One "
        "Ctrl-C stops everything it started. In production run these under a process manager "
        "and cron instead (see the README)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=positive_int, default=None)
        parser.add_argument("--fake-cluster-port", type=positive_int, default=9100)

    def handle(self, *, addrport, workers, fake_cluster_port, **options) -> None:
        workers = workers or settings.TMS_WORKER_CONCURRENCY
        manage = [sys.executable, "manage.py"]
        commands = {
            "fake cluster": [*manage, "fake_cluster", "--port", str(fake_cluster_port)],
            **{f"worker {n}": [*manage, "db_worker", "--no-reload"] for n in range(1, workers + 1)},
            "web": [*manage, "runserver", "--noreload", addrport],
        }
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())

        children = {name: subprocess.Popen(argv) for name, argv in commands.items()}
        self.stdout.write(
            f"tmsdash on http://{addrport}/ with {workers} worker(s) and the fake cluster on "
            f"port {fake_cluster_port}. Ctrl-C stops everything."
        )
        failed = None
        next_housekeeping = time.monotonic()
        try:
            while not stop.wait(1):
                failed = next((n for n, p in children.items() if p.poll() is not None), None)
                if failed:
                    break
                if time.monotonic() >= next_housekeeping:
                    self.housekeeping()
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
        finally:
            self.stop(children)
        if failed:
            raise CommandError(f"The {failed} process exited; everything was stopped.")

    def housekeeping(self) -> None:
        report = job_reap_stale()
        if report.unknown or report.expired:
            self.stdout.write(
                f"reaper: {len(report.unknown)} UNKNOWN, {len(report.expired)} not started"
            )
        call_command("prune_db_task_results", min_age_days=1, verbosity=0)

    def stop(self, children: dict[str, subprocess.Popen]) -> None:
        for process in children.values():
            if process.poll() is None:
                process.terminate()
        for name, process in children.items():
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_SECONDS}s; killing it.")
                process.kill()
                process.wait()
