"""Real `manage.py run_worker` processes hold jobs in a change freeze or outside their cluster's
maintenance windows and send them when the freeze ends or a window opens; an admin's override
is sent during the freeze; a held job is cancelled. No sleeps: each test waits on the job."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import ChangeFreeze, Job, MaintenanceWindow
from jobs.services import job_cancel, job_run, job_submit
from jobs.services.freezes import freeze_create, window_create
from tests.helpers import TOKEN, make_user, wait_until, worker

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# The held jobs are released this long after the test sets up its freeze or window.
AHEAD = dt.timedelta(seconds=4)


@pytest.fixture
def start_worker():
    """Starts a worker when called; stops it after the test."""
    processes = []

    def start() -> None:
        processes.append(worker())

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert TOKEN not in output


@pytest.fixture
def running_worker(start_worker):
    start_worker()


def state(job: Job) -> Job:
    job.refresh_from_db()
    return job


def submit(user, cluster, cid: str, **extra) -> Job:
    [job] = job_submit(user=user, action=1, cluster=cluster, cids=cid, token=TOKEN, **extra)
    return job


def freeze(cluster, ends_at: dt.datetime) -> ChangeFreeze:
    return freeze_create(
        freeze=ChangeFreeze(
            cluster=cluster,
            starts_at=timezone.now() - dt.timedelta(minutes=1),
            ends_at=ends_at,
            reason="Release night",
        )
    )


def test_jobs_queued_when_a_freeze_starts_wait_and_are_sent_when_it_ends(
    operator, cluster, fake_cluster, start_worker
):
    # Queued before the freeze starts: a freeze refuses new submits.
    jobs = [submit(operator, cluster, f"F{n}") for n in range(2)]
    frozen = freeze(cluster, timezone.now() + AHEAD)
    # Held now, whatever time the worker takes to start: its claim is the one tried here.
    assert not any(job_run(job_id=job.pk) for job in jobs)
    start_worker()

    wait_until(lambda: all(state(job).status == "SUCCESS" for job in jobs), timeout=60)
    for job in jobs:
        # Held until the end, and sent once after it.
        assert job.started_at >= frozen.ends_at
        assert fake_cluster.count(str(job.pk)) == 1
        assert (job.waiting_for, job.waiting_until) == ("", None)
        held = AuditEntry.objects.get(event="job.held", job_id=job.pk)
        assert held.details["until"] == frozen.ends_at.isoformat()
        assert AuditEntry.objects.filter(event="job.released", job_id=job.pk).count() == 1


def test_an_admins_override_is_sent_during_the_freeze_while_other_jobs_wait(
    operator, cluster, fake_cluster, running_worker
):
    admin = make_user("boss", "Operators", is_superuser=True)
    waiting = submit(operator, cluster, "F-wait")
    freeze(cluster, timezone.now() + dt.timedelta(hours=1))
    overridden = submit(admin, cluster, "F-override", freeze_override_reason="Incident INC-7")

    wait_until(lambda: state(overridden).status == "SUCCESS", timeout=60)
    wait_until(lambda: state(waiting).waiting_for == "freeze", timeout=60)
    assert (waiting.status, waiting.started_at) == ("IN_PROGRESS", None)
    assert fake_cluster.count(str(waiting.pk)) == 0
    assert fake_cluster.count(str(overridden.pk)) == 1


def test_a_held_job_is_cancelled_and_never_sent(operator, cluster, fake_cluster, running_worker):
    job = submit(operator, cluster, "F-cancel")
    freeze(cluster, timezone.now() + dt.timedelta(hours=1))
    wait_until(lambda: state(job).waiting_for == "freeze", timeout=60)

    assert job_cancel(job_ids=[job.pk], user=operator).cancelled == [job.pk]
    # The freeze removed: its task, looking again, finds nothing to send.
    ChangeFreeze.objects.all().delete()
    assert state(job).status == "CANCELLED"
    assert fake_cluster.count(str(job.pk)) == 0


def test_a_window_holds_a_job_and_releases_it_when_it_opens(
    operator, cluster, fake_cluster, start_worker
):
    # Opens daily at an instant a few seconds ahead (its first opening a day before, closed
    # long since), for a minute.
    opening = (timezone.now() + AHEAD).replace(microsecond=0)
    window_create(
        window=MaintenanceWindow(
            cluster=cluster,
            rrule="FREQ=DAILY",
            timezone="Europe/Berlin",
            starts_at=opening - dt.timedelta(days=1),
            duration_seconds=60,
        )
    )
    job = submit(operator, cluster, "W-1")
    assert not job_run(job_id=job.pk)
    assert state(job).waiting_until == opening
    start_worker()

    wait_until(lambda: state(job).status == "SUCCESS", timeout=60)
    assert job.started_at >= opening
    assert fake_cluster.count(str(job.pk)) == 1
    held = AuditEntry.objects.get(event="job.held", job_id=job.pk)
    assert held.details == {"waiting_for": "window", "until": opening.isoformat()}
