from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lib.argtypes import positive_int, seconds
from ops.heartbeats import process_id
from ops.worker import Supervisor, Worker


class Command(BaseCommand):
    help = (
        "Runs queued jobs until stopped, --concurrency cluster calls at once, in threads of "
        "--processes worker processes that share them (a process runs one thread's Python at a "
        "time; more processes use more cores). Run one on each host that reaches the database "
        "and the clusters. The first SIGTERM or Ctrl-C lets the calls in hand finish, then "
        "exits; a second forces it. A worker process that dies stops the rest, with an error."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=seconds(maximum=60),
            default=5.0,
            help=(
                "Longest wait between looks at an empty queue (default: %(default)s); a task "
                "queued meanwhile wakes the worker at once."
            ),
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=settings.TMS_WORKER_CONCURRENCY,
            help="Cluster calls at once (default: TMS_WORKER_CONCURRENCY, %(default)s).",
        )
        parser.add_argument(
            "--processes",
            type=positive_int,
            default=settings.TMS_WORKER_PROCESSES,
            help=(
                "Worker processes sharing the --concurrency calls, at most one per call "
                "(default: TMS_WORKER_PROCESSES, %(default)s)."
            ),
        )
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")

    def handle(
        self, *, interval: float, concurrency: int, processes: int, batch: bool, **options
    ) -> None:
        if processes > concurrency:
            raise CommandError(
                f"--processes ({processes}) must be at most --concurrency ({concurrency}): "
                "each worker process makes at least one call at a time."
            )
        if processes > 1:
            command = [
                sys.executable,
                str(settings.BASE_DIR / "manage.py"),
                "run_worker",
                "--processes",
                "1",
                "--interval",
                str(interval),
                *(["--batch"] if batch else []),
            ]
            supervisor = Supervisor(
                processes=processes, concurrency=concurrency, command=command, batch=batch
            )
            supervisor.configure_signals()
            sys.exit(supervisor.run())
        worker = Worker(
            worker_id=process_id(),
            concurrency=concurrency,
            interval=interval,
            batch=batch,
        )
        worker.configure_signals()
        worker.run()
