from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lib.argtypes import port, positive_int

# After a forced stop, how long the processes get before they are killed.
FORCE_SECONDS = 10
PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """In a child, before it runs: SIGTERM it when this runner dies, however it dies (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = (
        "Runs the whole dashboard on one machine, the same processes as production: the web "
        "server (gunicorn), the worker (run_worker, TMS_WORKER_CONCURRENCY calls at once), "
        "housekeeping, and the "
        "fake cluster. One Ctrl-C or SIGTERM stops it gracefully: the web server finishes its "
        "requests, the worker finishes its calls in flight, then the fake cluster stops. A "
        "second Ctrl-C forces everything to stop at once. In production, run these under a "
        "process manager instead (see deploy/ and the README)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addrport", default=settings.TMS_WEB_BIND)
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=None,
            help="Cluster calls the worker makes at once (default: TMS_WORKER_CONCURRENCY).",
        )
        parser.add_argument("--fake-cluster-port", type=port, default=9100)

    def handle(self, *, addrport, concurrency, fake_cluster_port, **options) -> None:
        concurrency = concurrency or settings.TMS_WORKER_CONCURRENCY
        manage = [sys.executable, "manage.py"]
        gunicorn = [sys.executable, "-m", "gunicorn", "--config", "python:tmsdash.gunicorn"]
        stages = [
            {
                "web": [*gunicorn, "--bind", addrport],
                "worker": [*manage, "run_worker", "--concurrency", str(concurrency)],
                "housekeeping": [*manage, "housekeeping"],
            },
            # Stopped last: the worker's calls in flight go to it.
            {"fake cluster": [*manage, "fake_cluster", "--port", str(fake_cluster_port)]},
        ]
        presses = []
        wake = threading.Event()

        def on_signal(signum, frame) -> None:
            presses.append(signum)
            wake.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)

        # Each child in a session of its own: a Ctrl-C reaches this runner only, which then
        # stops each child once, in order.
        running = [
            {
                name: subprocess.Popen(argv, start_new_session=True, preexec_fn=_stop_with_parent)
                for name, argv in stage.items()
            }
            for stage in stages
        ]
        self.stdout.write(
            f"tmsdash on http://{addrport}/ with a worker making up to {concurrency} calls at "
            f"once and the fake cluster on "
            f"port {fake_cluster_port}. Ctrl-C stops everything."
        )
        failed = None
        while not presses and failed is None:
            wake.wait(1)
            failed = next(
                (n for stage in running for n, p in stage.items() if p.poll() is not None), None
            )
        if failed:
            self.stderr.write(f"The {failed} process exited; stopping everything.")
        self.stop(running, presses, wake)
        if failed:
            raise CommandError(f"The {failed} process exited; everything was stopped.")

    def stop(self, running: list[dict[str, subprocess.Popen]], presses: list, wake) -> None:
        self.stdout.write(
            "Stopping: the web server finishes its requests and the worker its calls in "
            "flight. Ctrl-C again to force."
        )
        forced = False
        for stage in running:
            for process in stage.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            while any(p.poll() is None for p in stage.values()):
                wake.clear()
                if len(presses) > 1 and not forced:
                    forced = True
                    self.stderr.write("Forcing the stop.")
                    for process in (p for s in running for p in s.values()):
                        if process.poll() is None:
                            process.send_signal(signal.SIGINT)
                if forced and not self.wait_all(stage, FORCE_SECONDS):
                    for process in stage.values():
                        process.kill()
                wake.wait(0.2)
        for stage in running:
            for process in stage.values():
                process.wait()

    @staticmethod
    def wait_all(stage: dict[str, subprocess.Popen], seconds: float) -> bool:
        try:
            for process in stage.values():
                process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
