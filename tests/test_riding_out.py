"""A database that blinks costs the long-running processes time, never a job: the worker and
housekeeping ride out a locked SQLite or a PostgreSQL that drops its connections (lib.outage),
an answer the cluster gave during the outage is recorded once the database is back, and a job
whose task failed before it could claim the job is queued again."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from django_tasks import task
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEntry
from jobs.lanes import lane_queue
from jobs.models import Job
from jobs.services import job_submit
from lib.outage import outage_ended, ride_out
from ops.heartbeats import workers_alive
from ops.housekeeping import TASK_CLAIM_SECONDS, housekeeping_pass
from ops.metrics import metrics_text
from ops.models import Counter
from ops.wakeups import QueueWatch
from ops.worker import _Loop
from tests.db_faults import BUSY_TIMEOUT, database_down
from tests.helpers import ROOT, TOKEN, database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def start(*command: str, log) -> subprocess.Popen:
    """A real `manage.py` process on the tests' database, its output in `log`, with the short
    busy timeout of the fault tests."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
        "TMS_SQLITE_BUSY_TIMEOUT": str(BUSY_TIMEOUT),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def lines(log, text: str) -> int:
    log.seek(0)
    return log.read().count(text)


@pytest.fixture
def short_busy_timeout():
    """This process's connection waits BUSY_TIMEOUT on a locked SQLite database, not 30 s."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    before = options.get("timeout")
    if connection.vendor == "sqlite":
        options["timeout"] = BUSY_TIMEOUT
        connection.close()
    yield
    if connection.vendor == "sqlite":
        options["timeout"] = before
        connection.close()


@pytest.fixture
def outages():
    """The outages lib.outage reports, as (seconds, retried)."""
    seen = []

    def receive(sender, seconds, retried, **kwargs):
        seen.append((seconds, retried))

    outage_ended.connect(receive)
    yield seen
    outage_ended.disconnect(receive)


@contextlib.contextmanager
def blinking(seconds: float) -> Iterator[None]:
    """The database down for `seconds`, from another thread, from the block's start; the block
    ends once it is back."""
    down = threading.Event()

    def hold() -> None:
        with database_down():
            down.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        down.wait(10)
        yield
    finally:
        thread.join()
        # On PostgreSQL this thread's connection was ended too.
        connection.close()


def test_ride_out_writes_once_the_database_is_back_and_logs_the_outage_once(
    operator, short_busy_timeout, outages, caplog
):
    caplog.set_level(logging.WARNING, logger="lib.outage")
    attempts = []

    def rename() -> int:
        attempts.append(1)
        return type(operator).objects.filter(pk=operator.pk).update(first_name="Back")

    connection.ensure_connection()
    with blinking(2 * BUSY_TIMEOUT + 0.5):
        assert ride_out(rename, doing="renaming") == 1
    operator.refresh_from_db()
    assert operator.first_name == "Back"
    assert len(attempts) > 1
    [(seconds, retried)] = outages
    assert seconds > 0
    assert retried == len(attempts) - 1
    messages = [record.getMessage() for record in caplog.records]
    assert sum("database unavailable while renaming" in m for m in messages) == 1
    assert sum("database back after" in m for m in messages) == 1
    # Counted for /metrics once the database took work again.
    text = metrics_text()
    assert "tmsdash_database_outages_total 1" in text
    assert f"tmsdash_database_retries_total {retried}" in text


def test_ride_out_does_not_retry_an_error_that_would_not_pass(operator):
    attempts = []

    def duplicate() -> None:
        attempts.append(1)
        type(operator).objects.create(username=operator.username)

    with pytest.raises(IntegrityError):
        ride_out(duplicate, doing="duplicating")
    assert len(attempts) == 1


def test_ride_out_gives_up_when_told(operator, short_busy_timeout):
    attempts = []

    def rename() -> None:
        attempts.append(1)
        type(operator).objects.filter(pk=operator.pk).update(first_name="Never")

    with database_down(), pytest.raises(Exception) as raised:
        ride_out(rename, doing="renaming", giving_up=lambda: len(attempts) >= 2)
    assert type(raised.value).__name__ in ("OperationalError", "InterfaceError")
    assert len(attempts) == 2
    operator.refresh_from_db()
    assert operator.first_name == ""
    # Giving up does not end the outage: the next work the database takes does.
    assert not Counter.objects.exists()
    ride_out(operator.refresh_from_db, doing="reading")
    assert "tmsdash_database_outages_total 1" in metrics_text()


def test_an_answer_given_while_the_database_was_down_is_recorded(operator, cluster, fake_cluster):
    """The cluster answers a SLOW call after a few seconds; the database goes down while the
    call is out and stays down after the answer: the worker records it once it is back, on a
    new connection, and is still running."""
    cluster.timeout_seconds = 60
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-1", token=TOKEN)
    with tempfile.TemporaryFile("w+") as log:
        process = start("run_worker", "--interval", "0.05", "--concurrency", "1", log=log)
        try:
            wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)
            # Down from before the answer until well after it.
            with blinking(fake_cluster.slow_seconds + 2 * BUSY_TIMEOUT):
                pass
            wait_until(lambda: Job.objects.filter(pk=job.pk, status="SUCCESS").exists(), timeout=60)
            assert process.poll() is None
            assert lines(log, "database unavailable") >= 1
        finally:
            assert stop(process) == 0
    job.refresh_from_db()
    assert (job.status, job.http_status) == ("SUCCESS", 200)
    assert fake_cluster.count(str(job.pk)) == 1
    assert AuditEntry.objects.filter(job_id=job.pk, event="job.succeeded").count() == 1
    # Its task row was ended too: nothing is left RUNNING by a live worker.
    assert not DBTaskResult.objects.running().exists()


def test_the_worker_and_housekeeping_outlive_an_outage(operator, cluster, fake_cluster):
    with tempfile.TemporaryFile("w+") as worker_log, tempfile.TemporaryFile("w+") as hk_log:
        worker = start("run_worker", "--interval", "0.05", "--concurrency", "2", log=worker_log)
        housekeeping = start("housekeeping", "--interval", "0.2", log=hk_log)
        try:
            wait_until(lambda: workers_alive() >= 1)
            # Twice, as a restart that follows a first one.
            for _ in range(2):
                with blinking(2 * BUSY_TIMEOUT + 1):
                    pass
            [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
            wait_until(lambda: Job.objects.get(pk=job.pk).status == "SUCCESS", timeout=60)
            assert (worker.poll(), housekeeping.poll()) == (None, None)
        finally:
            assert stop(worker) == 0
            assert stop(housekeeping) == 0
        # One line when the outage started and one when it ended, however many attempts.
        for log in (worker_log, hk_log):
            assert lines(log, "database unavailable") == lines(log, "database back") <= 2
    assert fake_cluster.count(str(job.pk)) == 1


def test_a_job_whose_task_failed_before_claiming_it_is_queued_again(
    operator, cluster, fake_cluster, run_queued_tasks
):
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    [task] = DBTaskResult.objects.all()
    # As a claim refused with "database is locked" left it.
    task.claim("gone-worker")
    task.set_failed(RuntimeError("database is locked"))
    report = housekeeping_pass()
    assert report.requeued == [job.pk]
    assert list(DBTaskResult.objects.ready().values_list("queue_name", flat=True)) == [
        lane_queue(cluster.pk)
    ]
    # Queued once: the next pass finds its task.
    assert housekeeping_pass().requeued == []
    run_queued_tasks()
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.count(str(job.pk)) == 1


def test_a_job_whose_task_a_worker_holds_is_left_alone_until_the_claim_is_overdue(
    operator, cluster
):
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    [task] = DBTaskResult.objects.all()
    task.claim("a-worker")
    assert housekeeping_pass().requeued == []
    overdue = timezone.now() - TASK_CLAIM_SECONDS - dt.timedelta(seconds=1)
    DBTaskResult.objects.filter(pk=task.pk).update(started_at=overdue)
    assert housekeeping_pass().requeued == [job.pk]


# The outage takes_the_database_down leaves behind it, for the test to wait out.
OUTAGES: list[contextlib.AbstractContextManager] = []


@task()
def takes_the_database_down() -> None:
    """A task that returns as the database goes down: the end of its task row meets the
    outage."""
    # Longer than django-tasks-db's own three tries to save the row, each waiting BUSY_TIMEOUT.
    outage = blinking(5 * BUSY_TIMEOUT)
    outage.__enter__()
    OUTAGES.append(outage)


def test_a_task_rows_end_is_written_through_an_outage(short_busy_timeout):
    row = DBTaskResult.objects.get(pk=takes_the_database_down.enqueue().id)
    row.claim("a-worker")
    try:
        _Loop(worker_id="a-worker", watch=QueueWatch(), idle_wait=1, once=True).run_task(row)
    finally:
        for outage in OUTAGES:
            outage.__exit__(None, None, None)
        OUTAGES.clear()
    row.refresh_from_db()
    assert row.status == TaskResultStatus.SUCCESSFUL
