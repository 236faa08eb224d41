"""One fire per occurrence whatever the number of schedulers: scheduler passes racing in
threads (each with its own database connection, as housekeeping processes on several hosts
have) and two real `manage.py housekeeping --once` processes, the runs then sent by four real
worker processes to the fake cluster, each exactly once; and a running housekeeping process
firing a schedule that falls due, also across a database outage."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from jobs.models import Job
from jobs.services import credential_set
from lib.outage import ride_out
from schedules.models import Occurrence
from schedules.services import saved_set_action_create, schedule_create, scheduler_pass
from tests.db_faults import BUSY_TIMEOUT, database_down
from tests.helpers import ROOT, THREADS, database_url, run_concurrently, wait_until, worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UTC = dt.UTC
SCHEDULES = 3


@pytest.fixture
def schedules(operator, cluster):
    credential_set(cluster=cluster, token="svc-concurrency-credential")
    created = dt.datetime(2027, 1, 1, tzinfo=UTC)
    return [
        schedule_create(
            user=operator,
            saved_set_action=saved_set_action_create(
                user=operator, name=f"s{n}", action=1, cluster=cluster, cids=f"A{n} B{n} C{n}"
            ),
            rrule="FREQ=HOURLY;BYMINUTE=0",
            now=created,
        )
        for n in range(SCHEDULES)
    ]


def run_workers(count: int = 4) -> None:
    processes = [worker("--batch") for _ in range(count)]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output


def test_racing_passes_fire_each_occurrence_once_and_workers_send_each_run_once(
    schedules, fake_cluster
):
    for hour in (1, 2):
        now = dt.datetime(2027, 1, 1, hour, 0, 3, tzinfo=UTC)
        reports, errors = run_concurrently(
            lambda _n, now=now: ride_out(lambda: scheduler_pass(now=now), doing="test")
        )
        assert errors == []
        assert len(reports) == THREADS
        # Each occurrence decided by exactly one of the racing passes.
        assert sum(report.fired for report in reports) == SCHEDULES
        assert sum(report.skipped + report.failed for report in reports) == 0
        run_workers()
    fired = Occurrence.objects.filter(state="fired")
    assert fired.count() == 2 * SCHEDULES
    assert Occurrence.objects.count() == 2 * SCHEDULES
    jobs = list(Job.objects.all())
    assert len(jobs) == 2 * SCHEDULES
    assert {job.status for job in jobs} == {"SUCCESS"}
    assert set(fired.values_list("job_id", flat=True)) == {job.pk for job in jobs}
    assert all(fake_cluster.count(str(job.pk)) == 1 for job in jobs)


def test_two_housekeeping_processes_fire_a_due_occurrence_once(operator, cluster, fake_cluster):
    credential_set(cluster=cluster, token="svc-concurrency-credential")
    # Created ten seconds ago to run five seconds ago: due, and on time, when they look.
    now = dt.datetime.now(UTC)
    saved = saved_set_action_create(
        user=operator, name="soon", action=1, cluster=cluster, cids="S1"
    )
    sched = schedule_create(
        user=operator,
        saved_set_action=saved,
        run_at=now - dt.timedelta(seconds=5),
        now=now - dt.timedelta(seconds=10),
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
    }
    command = [sys.executable, "manage.py", "housekeeping", "--once"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
    [occurrence] = Occurrence.objects.filter(schedule=sched)
    assert occurrence.state == "fired"
    assert Job.objects.count() == 1
    run_workers()
    job = Job.objects.get()
    assert job.status == "SUCCESS"
    assert fake_cluster.count(str(job.pk)) == 1


def next_report(process: subprocess.Popen) -> str:
    """The command's next line of its own, past the log lines between them (the hourly check
    of the audit chain logs the head it reached)."""
    for line in iter(process.stdout.readline, ""):
        if " INFO " not in line:
            return line
    return ""


def test_housekeeping_looks_at_the_schedules_every_tms_scheduler_seconds(operator, cluster):
    """Between its other passes (every --interval, here an hour), housekeeping fires a
    schedule that falls due while it runs."""
    credential_set(cluster=cluster, token="svc-concurrency-credential")
    saved = saved_set_action_create(
        user=operator, name="soon", action=1, cluster=cluster, cids="L1"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
        "TMS_SCHEDULER_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "housekeeping", "--interval", "3600", "--verbosity", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Its first passes are done before the schedule exists.
        assert next_report(process).startswith("housekeeping: ")
        assert next_report(process).startswith("schedules: 0 scheduled run(s) fired")
        now = dt.datetime.now(UTC)
        sched = schedule_create(
            user=operator, saved_set_action=saved, run_at=now + dt.timedelta(seconds=1), now=now
        )
        wait_until(lambda: Occurrence.objects.filter(schedule=sched, state="fired").exists())
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "schedules: 1 scheduled run(s) fired" in output
    assert Job.objects.count() == 1


def test_a_schedule_due_while_the_database_is_down_fires_once_it_is_back(operator, cluster):
    """Housekeeping rides out the outage (lib.outage) and fires the occurrence, within its
    grace, once the database takes work again; the process keeps running."""
    credential_set(cluster=cluster, token="svc-concurrency-credential")
    saved = saved_set_action_create(
        user=operator, name="soon", action=1, cluster=cluster, cids="O1"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
        "TMS_SCHEDULER_SECONDS": "1",
        "TMS_SQLITE_BUSY_TIMEOUT": str(BUSY_TIMEOUT),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "housekeeping", "--interval", "3600", "--verbosity", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert next_report(process).startswith("housekeeping: ")
        now = dt.datetime.now(UTC)
        sched = schedule_create(
            user=operator, saved_set_action=saved, run_at=now + dt.timedelta(seconds=1), now=now
        )
        with database_down():
            # The outage lasts past the occurrence's time.
            time.sleep(4 * BUSY_TIMEOUT)
        connection.close()
        wait_until(lambda: Occurrence.objects.filter(schedule=sched, state="fired").exists())
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "database unavailable while scheduling" in output
    assert Occurrence.objects.filter(schedule=sched).count() == 1
    assert Job.objects.count() == 1
