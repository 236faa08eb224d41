"""Task rows queued before the tasks moved beside their bodies still run.

A task row names the dotted path of the function it runs; rows queued by earlier releases
name `jobs.tasks` and `notifications.tasks`, which must still lead a worker to the task.
"""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.services import job_submit, run_job
from notifications.delivery import deliver_notice
from notifications.events import record_batch_end
from tests.helpers import TOKEN

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("old_path", "task"),
    [
        ("jobs.tasks.run_job", run_job),
        ("notifications.tasks.deliver_notice", deliver_notice),
        ("notifications.tasks.record_batch_end", record_batch_end),
    ],
)
def test_a_row_naming_the_old_path_finds_the_task(old_path, task):
    row = DBTaskResult(task_path=old_path, backend_name="default", queue_name="default")
    assert row.task.func is task.func


def test_a_job_queued_under_the_old_path_runs(operator, cluster):
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    queued = DBTaskResult.objects.filter(task_path=run_job.module_path)
    assert queued.update(task_path="jobs.tasks.run_job") == 1
    row = DBTaskResult.objects.get(task_path="jobs.tasks.run_job")
    row.task.call(*row.args_kwargs["args"])
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCESS
