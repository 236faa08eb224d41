"""ops.task_rows: the worker's claim and end of a task row through a cursor write what
django-tasks-db's own saves write, and the worker uses them."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.db.models.signals import post_save
from django_tasks_db.models import DBTaskResult

from jobs.models import Job
from jobs.services import job_submit
from jobs.tasks import run_job
from ops.task_rows import cursor_saves
from ops.wakeups import QueueWatch
from ops.worker import _Loop
from tests.helpers import TOKEN

# What a task row holds once the worker is done with it (its id and times aside).
KEPT = ("status", "worker_ids", "return_value", "exception_class_path", "traceback")


def two_tasks() -> tuple[DBTaskResult, DBTaskResult]:
    for key in ("a", "b"):
        run_job.enqueue(f"00000000-0000-4000-8000-00000000000{ord(key) - 96}")
    return tuple(DBTaskResult.objects.order_by("enqueued_at", "id"))


def stored(task: DBTaskResult) -> dict:
    row = DBTaskResult.objects.get(pk=task.pk)
    return {name: getattr(row, name) for name in (*KEPT, "started_at", "finished_at")}


def as_the_orm_wrote_it(by_orm: DBTaskResult, by_cursor: DBTaskResult) -> None:
    orm, ours = stored(by_orm), stored(by_cursor)
    assert {k: orm[k] for k in KEPT} == {k: ours[k] for k in KEPT}
    assert ours["started_at"] == by_cursor.started_at
    assert ours["finished_at"] == by_cursor.finished_at


@pytest.fixture
def claimed(db) -> tuple[DBTaskResult, DBTaskResult]:
    """Two task rows claimed: the first by django-tasks-db's save, the second through the
    cursor."""
    by_orm, by_cursor = two_tasks()
    cursor_saves(by_cursor)
    for task in (by_orm, by_cursor):
        task.claim("worker-1")
    return by_orm, by_cursor


def test_a_claim_and_a_success_write_what_the_orm_writes(claimed):
    by_orm, by_cursor = claimed
    as_the_orm_wrote_it(by_orm, by_cursor)
    assert stored(by_cursor)["worker_ids"] == ["worker-1"]
    for task in (by_orm, by_cursor):
        task.set_successful({"kept": [1, "two", None]})
    as_the_orm_wrote_it(by_orm, by_cursor)
    assert stored(by_cursor)["status"] == "SUCCESSFUL"
    assert stored(by_cursor)["return_value"] == {"kept": [1, "two", None]}


def test_a_failure_writes_what_the_orm_writes(claimed):
    by_orm, by_cursor = claimed
    for task in (by_orm, by_cursor):
        try:
            raise ValueError("the same error")
        except ValueError as exc:
            task.set_failed(exc)
    orm, ours = stored(by_orm), stored(by_cursor)
    assert ours["status"] == "FAILED" and ours["return_value"] is None
    assert ours["exception_class_path"] == orm["exception_class_path"] == "builtins.ValueError"
    assert "the same error" in ours["traceback"]
    assert ours["traceback"] == by_cursor.traceback


@pytest.mark.django_db
def test_a_save_that_finds_no_row_raises_and_writes_nothing():
    gone, other = two_tasks()
    DBTaskResult.objects.filter(pk=gone.pk).delete()
    cursor_saves(gone)
    with pytest.raises(DatabaseError):
        gone.claim("worker-1")
    assert list(DBTaskResult.objects.values_list("pk", "status")) == [(other.pk, "READY")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_claims_and_ends_its_tasks_through_the_cursor(operator, cluster, fake_cluster):
    """The ORM's save sends post_save; the cursor's does not: a worker running a job saves its
    task row twice (its claim and its end) and sends none."""
    job_submit(user=operator, action=1, cluster=cluster, cids="T1", token=TOKEN)
    saved = []

    def record(sender, instance, created, **kwargs) -> None:
        saved.append(created)

    post_save.connect(record, sender=DBTaskResult)
    try:
        _Loop(worker_id="test", watch=QueueWatch(), idle_wait=1, once=True).run()
    finally:
        post_save.disconnect(record, sender=DBTaskResult)
    assert Job.objects.get().status == "SUCCESS"
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    assert saved == []
