from __future__ import annotations

import os
import socket

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string

from lib.argtypes import positive_int, seconds
from ops.worker import Worker


class Command(BaseCommand):
    help = (
        "Runs queued jobs until stopped, --concurrency cluster calls at once (threads of this "
        "process). Run one on each host that reaches the database and the clusters. The first "
        "SIGTERM or Ctrl-C lets the calls in hand finish, then exits; a second forces it."
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
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")

    def handle(self, *, interval: float, concurrency: int, batch: bool, **options) -> None:
        host = socket.gethostname()[:40]
        worker = Worker(
            worker_id=f"{host}-{os.getpid()}-{get_random_string(8)}",
            concurrency=concurrency,
            interval=interval,
            batch=batch,
        )
        worker.configure_signals()
        worker.run()
