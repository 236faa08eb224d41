from __future__ import annotations

import signal
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from devtools.supervision import STOP_SIGNALS, RestartPolicy, Supervisor
from lib.argtypes import port, positive_int, seconds

DEFAULTS = RestartPolicy()


class Command(BaseCommand):
    help = (
        "Runs the whole dashboard on one machine, the same processes as production: the web "
        "server (gunicorn), the worker (run_worker, TMS_WORKER_CONCURRENCY calls at once), "
        "housekeeping, and the fake cluster. A process that exits while no stop was asked for "
        "(a crash, kill -9) is started again, as systemd does in production: after "
        "--restart-delay seconds, doubled at each exit up to --max-restart-delay, and back to "
        f"--restart-delay once it had stayed up {DEFAULTS.stable_seconds:g} s; each restart is "
        "logged. A process that exits --start-limit-burst starts in a row, each within "
        "--start-limit-seconds of its start, makes the runner stop everything and exit with an "
        "error naming it. One Ctrl-C or SIGTERM stops it gracefully: the web server finishes "
        "its requests, the worker finishes its calls in flight, then the fake cluster stops. A "
        "second Ctrl-C forces everything to stop at once. In production, run these under a "
        "process manager instead (see deploy/ and docs/production.md)."
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
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="Apply the migrations first, quietly (an error still stops it).",
        )
        parser.add_argument(
            "--seed-demo",
            action="store_true",
            help="Run seed_demo first, with the cluster local at --fake-cluster-port: the demo "
            "users' passwords, when generated, are then the last lines before the processes' "
            "logs.",
        )
        parser.add_argument(
            "--restart-delay",
            type=seconds(maximum=3600),
            default=DEFAULTS.delay,
            help="Seconds before a process that exited is started again (default: %(default)s).",
        )
        parser.add_argument(
            "--max-restart-delay",
            type=seconds(maximum=3600),
            default=DEFAULTS.max_delay,
            help="The longest wait before a restart (default: %(default)s).",
        )
        parser.add_argument(
            "--start-limit-burst",
            type=positive_int,
            default=DEFAULTS.burst,
            help="Starts in a row ending within --start-limit-seconds that stop everything "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--start-limit-seconds",
            type=seconds(maximum=3600),
            default=DEFAULTS.start_limit_seconds,
            help="A process ending this soon after its start counts towards "
            "--start-limit-burst (default: %(default)s).",
        )

    def handle(
        self,
        *,
        addrport: str,
        concurrency: int | None,
        fake_cluster_port: int,
        migrate: bool,
        seed_demo: bool,
        restart_delay: float,
        max_restart_delay: float,
        start_limit_burst: int,
        start_limit_seconds: float,
        **options,
    ) -> None:
        if max_restart_delay < restart_delay:
            raise CommandError(
                f"--max-restart-delay ({max_restart_delay:g}) must be at least "
                f"--restart-delay ({restart_delay:g})."
            )
        # In this process rather than in two of their own before it: each would start Python
        # and Django again, a second of every `make run`.
        if migrate:
            call_command("migrate", interactive=False, verbosity=0)
        if seed_demo:
            call_command("seed_demo", fake_cluster_port=fake_cluster_port)
        connections.close_all()
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
        policy = RestartPolicy(
            delay=restart_delay,
            max_delay=max_restart_delay,
            burst=start_limit_burst,
            start_limit_seconds=start_limit_seconds,
        )
        supervisor = Supervisor(stages, policy=policy, say=self.say)
        for signum in STOP_SIGNALS:
            signal.signal(signum, supervisor.press)
        # Written before any process starts, so that the address to sign in at is the last line
        # above their logs, not lost among them.
        self.stdout.write(
            f"tmsdash on http://{addrport}/ with a worker making up to {concurrency} calls at "
            f"once and the fake cluster on port {fake_cluster_port}. A process that exits is "
            f"started again; Ctrl-C stops everything."
        )
        self.stdout.flush()
        supervisor.start()
        given_up = supervisor.supervise()
        if given_up:
            self.say(f"{given_up} Stopping everything.")
        else:
            self.say(
                "Stopping: the web server finishes its requests and the worker its calls in "
                "flight. Ctrl-C again to force."
            )
        supervisor.stop()
        if given_up:
            raise CommandError(given_up)

    def say(self, message: str) -> None:
        """The runner's own lines, on stderr among its processes' logs, written at once."""
        self.stderr.write(message)
        self.stderr.flush()
