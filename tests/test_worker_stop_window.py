"""The worker's promise never to exit between taking a task row and running its job: a SIGTERM
that arrives in that window lets the job run, and the worker exits cleanly afterwards.

The window is a few milliseconds wide. To land the signal in it every time, another connection
holds the job's row (`SELECT ... FOR UPDATE`): the worker takes the task row, then waits on the
job's row for its claim, and the signal arrives while it waits. PostgreSQL locks rows; SQLite
locks the whole database, so there the worker could not take the task row either, and the
window cannot be held open: the test is PostgreSQL's.
"""

from __future__ import annotations

import signal

import psycopg
import pytest
from django.db import connection
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEntry
from jobs.models import Job
from jobs.services import job_submit
from tests.helpers import TOKEN, database_url, wait_until, worker

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs row locks to hold the window open"
    ),
]

REPEATS = 5
STOPPING = "finishing the tasks in hand"


def test_a_sigterm_between_taking_a_task_and_claiming_its_job_lets_the_job_run(
    operator, cluster, fake_cluster
):
    for _ in range(REPEATS):
        [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
        with psycopg.connect(database_url().replace("postgres://", "postgresql://")) as holder:
            holder.execute("SELECT 1 FROM jobs_job WHERE id = %s FOR UPDATE", [job.pk])
            process = worker()
            # The worker took the task row, and waits for the job's row to claim it.
            wait_until(
                lambda: DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).exists(),
                timeout=60,
            )
            process.send_signal(signal.SIGTERM)
            # Released once the worker has taken the signal: it is stopping, its job still due.
            heard = []
            while STOPPING not in (line := process.stdout.readline()):
                assert line, "the worker ended before it took the signal: " + "".join(heard)
                heard.append(line)
            holder.rollback()
        output, _ = process.communicate(timeout=60)
        output = "".join(heard) + output

        assert process.returncode == 0, output
        job.refresh_from_db()
        assert job.status == "SUCCESS", output
        assert fake_cluster.count(str(job.pk)) == 1
        assert AuditEntry.objects.filter(job_id=job.pk, event="job.succeeded").count() == 1
        assert not DBTaskResult.objects.exclude(status=TaskResultStatus.SUCCESSFUL).exists()
    assert Job.objects.filter(status="SUCCESS").count() == REPEATS
