"""Measures the CPU of a task row's claim and end, as django-tasks-db saves them (the ORM's
`save(update_fields=...)`) and as the worker now does (ops.task_rows, through a cursor), one
after the other twice, ROUNDS of each, on one task row.

Run on SQLite (a scratch file is made afresh):
    .venv/bin/python bench/task_rows.py
Run on PostgreSQL (a scratch database whose name contains "bench"; it is migrated and emptied):
    createdb -h 127.0.0.1 -U postgres tms_bench_task_rows
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_task_rows \
        .venv/bin/python bench/task_rows.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid

from procstat import load
from scratch import scratch_django

scratch_django("task_rows", TMS_DEVTOOLS="true")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tasks_db.models import DBTaskResult  # noqa: E402

from jobs.tasks import run_job  # noqa: E402
from ops.task_rows import cursor_saves  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1000"))


def main() -> None:
    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    DBTaskResult.objects.all().delete()
    task_id = run_job.enqueue(str(uuid.uuid4())).id
    print(f"engine: {connection.vendor}, {ROUNDS} claims and ends each, CPU of this process")
    for how in ("the ORM's save", "through a cursor") * 2:
        task = DBTaskResult.objects.get(id=task_id)
        if how == "through a cursor":
            cursor_saves(task)
        started = time.process_time()
        for _ in range(ROUNDS):
            task.claim("bench-worker")
            task.worker_ids = []
        claimed = time.process_time()
        for _ in range(ROUNDS):
            task.set_successful(None)
        ended = time.process_time()
        print(
            f"{how:>17}: claim {(claimed - started) / ROUNDS * 1e6:.0f} us, "
            f"end {(ended - claimed) / ROUNDS * 1e6:.0f} us (load {load()})"
        )


if __name__ == "__main__":
    main()
