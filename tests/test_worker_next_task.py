"""A worker thread's look for its next task (ops.worker._next_task, a read built once) takes
the task django-tasks-db's own look would, on the queues it does not pass over."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.models import DBTaskResult

from jobs.services.running import run_job
from ops.worker import _next_task


def queue(name: str, *, priority: int = 0, after: dt.timedelta | None = None) -> str:
    task = run_job.using(queue_name=name, priority=priority)
    if after is not None:
        task = task.using(run_after=timezone.now() + after)
    return task.enqueue(str(uuid.uuid4())).id


def library_look(excluded: list[str]) -> DBTaskResult | None:
    tasks = DBTaskResult.objects.ready().filter(backend_name=DEFAULT_TASK_BACKEND_ALIAS)
    if excluded:
        tasks = tasks.exclude(queue_name__in=excluded)
    return tasks.get_locked()


@pytest.mark.parametrize("excluded", [[], ["cluster-1"], ["cluster-1", "cluster-2"]])
def test_the_next_task_is_the_one_django_tasks_db_would_take(db, excluded):
    queue("default")
    queue("cluster-1")
    queue("cluster-2", after=dt.timedelta(seconds=-5))
    queue("cluster-1", priority=10)
    queue("cluster-2")
    # Not due yet: never taken.
    queue("default", after=dt.timedelta(hours=1))
    taken = []
    with transaction.atomic():
        while (expected := library_look(excluded)) is not None:
            task = _next_task(excluded)
            assert task is not None
            assert (task.pk, task.queue_name, task.args_kwargs) == (
                expected.pk,
                expected.queue_name,
                expected.args_kwargs,
            )
            task.claim("test")
            taken.append(task.queue_name)
        assert _next_task(excluded) is None
    due = ["default", "cluster-1", "cluster-2", "cluster-1", "cluster-2"]
    assert sorted(taken) == sorted(name for name in due if name not in excluded)
    assert DBTaskResult.objects.filter(status="RUNNING", worker_ids=["test"]).count() == len(taken)
