from __future__ import annotations

import os
import socket

from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME

from lib.argtypes import seconds
from ops.worker import Worker


class Command(BaseCommand):
    help = (
        "Runs queued jobs, one cluster call at a time, until stopped. Run as many as the calls "
        "you want at once, on any host that reaches the database and the clusters. The first "
        "SIGTERM or Ctrl-C lets the call in hand finish, then exits; a second forces it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=seconds(maximum=60),
            default=1.0,
            help=(
                "Longest wait between looks at an empty queue (default: %(default)s); a task "
                "queued meanwhile wakes the worker at once."
            ),
        )
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")

    def handle(self, *, interval: float, batch: bool, **options) -> None:
        host = socket.gethostname()[:40]
        worker = Worker(
            queue_names=[DEFAULT_TASK_QUEUE_NAME],
            interval=interval,
            batch=batch,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=f"{host}-{os.getpid()}-{get_random_string(8)}",
            excluded_queue_names=[],
        )
        worker.configure_signals()
        worker.run()
