"""Jobs run by real `manage.py run_worker` processes, including one killed mid-call."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone
from django_tasks.signals import task_started
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import InFlightCustomer, Job, JobToken
from jobs.services import INTERRUPTED, job_reap_stale, job_submit
from jobs.tasks import run_job
from lib.connections import keep_connections
from ops.housekeeping import WORKER_LOST_MESSAGE, housekeeping_pass
from ops.models import WorkerHeartbeat
from ops.wakeups import QueueWatch
from ops.worker import FORCED, Worker, _Loop
from tests.helpers import TOKEN, database_url, wait_until, worker

ROOT = Path(__file__).resolve().parent.parent
# How long the fake cluster takes to answer the calls a forced stop cuts off.
FORCED_CALL_SECONDS = 15
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def run_batch() -> str:
    """Run a worker until the queue is empty; return its output."""
    process = worker("--batch")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


def test_worker_runs_a_submitted_job_once(operator, cluster, fake_cluster):
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1 C2", token=TOKEN)
    output = run_batch()
    job.refresh_from_db()
    assert (job.status, job.http_status) == ("SUCCESS", 200)
    assert fake_cluster.count(str(job.pk)) == 1
    assert TOKEN not in output


def test_task_delivered_twice_calls_the_cluster_once(operator, cluster, fake_cluster):
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    run_job.enqueue(str(job.pk))
    run_batch()
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.count(str(job.pk)) == 1
    assert AuditEntry.objects.filter(job_id=job.pk, event="job.succeeded").count() == 1


def killed_mid_call(operator, cluster, fake_cluster, cid: str) -> Job:
    """A job whose worker was killed (SIGKILL) while the cluster held its call (a SLOW CID
    answers after the fake's delay)."""
    cluster.timeout_seconds = 60
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cid, token=TOKEN)
    process = worker()
    try:
        wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    return job


def test_worker_killed_mid_call_leaves_a_job_the_reaper_makes_unknown(
    operator, cluster, fake_cluster
):
    job = killed_mid_call(operator, cluster, fake_cluster, "SLOW-kill")

    job.refresh_from_db()
    assert job.status == "IN_PROGRESS" and job.started_at is not None
    # Not yet past the cluster's timeout plus the grace: left alone.
    assert job_reap_stale().unknown == []
    later = job.started_at + dt.timedelta(seconds=cluster.timeout_seconds + 61)
    assert job_reap_stale(now=later).unknown == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.error_message, job.http_status) == ("UNKNOWN", INTERRUPTED, None)
    assert not JobToken.objects.filter(job=job).exists()
    assert not InFlightCustomer.objects.filter(job=job).exists()

    # Another worker finds nothing to run: the cluster still received exactly one request.
    run_batch()
    assert fake_cluster.count(str(job.pk)) == 1
    assert Job.objects.get(pk=job.pk).status == "UNKNOWN"


def test_a_process_that_dies_right_after_the_submit_commits_leaves_no_job_without_a_task(
    operator, cluster, fake_cluster
):
    # The submitting process dies the moment its transaction commits: whatever would have
    # happened after the commit never does.
    script = (
        "import os, django; django.setup()\n"
        "from django.db import transaction\n"
        "from jobs.services import job_submit\n"
        "from django.contrib.auth.models import User\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(17))\n"
        "    job_submit(user=User.objects.get(username='op1'), action=1, cluster='eu1',\n"
        "               cids='C1 C2', token=os.environ['TMS_TOKEN'])\n"
    )
    env = {**os.environ, "DATABASE_URL": database_url(), "TMS_TOKEN": TOKEN}
    died = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=60)
    assert died.returncode == 17
    job = Job.objects.get()
    assert DBTaskResult.objects.filter(args_kwargs__args=[str(job.pk)]).count() == 1
    run_batch()
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.count(str(job.pk)) == 1


def test_sigterm_lets_the_call_in_hand_finish_and_takes_no_new_job(operator, cluster, fake_cluster):
    cluster.timeout_seconds = 30
    cluster.save()
    [slow] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-term", token=TOKEN)
    [after] = job_submit(user=operator, action=1, cluster=cluster, cids="C-after", token=TOKEN)
    process = worker()
    try:
        wait_until(lambda: fake_cluster.count(str(slow.pk)) == 1, timeout=60)
        # Alive and known to every host: its heartbeat is in the database.
        assert WorkerHeartbeat.objects.count() == 1
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    slow.refresh_from_db()
    after.refresh_from_db()
    assert (slow.status, slow.http_status) == ("SUCCESS", 200)
    assert (after.status, after.started_at) == ("IN_PROGRESS", None)
    assert fake_cluster.count(str(after.pk)) == 0
    # Gone cleanly: its heartbeat with it, and no task row left RUNNING.
    assert not WorkerHeartbeat.objects.exists()
    assert not DBTaskResult.objects.filter(status="RUNNING").exists()


def test_housekeeping_ends_the_task_rows_of_a_killed_worker_and_reruns_unstarted_jobs(
    operator, cluster, fake_cluster
):
    job = killed_mid_call(operator, cluster, fake_cluster, "SLOW-orphan")
    [orphan] = DBTaskResult.objects.filter(status="RUNNING")
    # A second job whose task row the same worker had claimed, but not yet its job.
    [unstarted] = job_submit(user=operator, action=1, cluster=cluster, cids="C-lost", token=TOKEN)
    DBTaskResult.objects.filter(args_kwargs__args=[str(unstarted.pk)]).update(
        status="RUNNING", worker_ids=orphan.worker_ids
    )

    # While the worker's heartbeat is recent, nothing is touched.
    report = housekeeping_pass()
    assert report.orphaned_tasks == 0
    assert DBTaskResult.objects.filter(status="RUNNING").count() == 2

    last_seen = WorkerHeartbeat.objects.get().last_seen
    silent = timezone.now() + dt.timedelta(seconds=31)
    report = housekeeping_pass(now=silent)
    assert (report.orphaned_tasks, report.requeued) == (2, [unstarted.pk])
    assert report.interrupted == [job.pk]
    assert not DBTaskResult.objects.filter(status="RUNNING").exists()
    assert set(
        DBTaskResult.objects.filter(status="FAILED").values_list("traceback", flat=True)
    ) == {WORKER_LOST_MESSAGE}
    assert not WorkerHeartbeat.objects.exists()
    # The started job's call was cut off with its worker: UNKNOWN at once (the cluster may have
    # applied it), saying how long the call had run by the worker's last heartbeat; the other
    # job runs.
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("UNKNOWN", INTERRUPTED)
    entry = AuditEntry.objects.get(job_id=job.pk, event="job.unknown")
    ran = (last_seen - job.started_at).total_seconds() * 1000
    assert entry.details == {"reason": "interrupted", "call_ran_ms": max(round(ran), 0)}
    assert entry.details["call_ran_ms"] < (job.finished_at - job.started_at).total_seconds() * 1000
    run_batch()
    unstarted.refresh_from_db()
    assert unstarted.status == "SUCCESS"
    assert fake_cluster.count(str(unstarted.pk)) == 1
    # A day later the ended task rows are pruned.
    assert housekeeping_pass(now=timezone.now() + dt.timedelta(days=2)).pruned >= 2
    assert not DBTaskResult.objects.filter(status="FAILED").exists()


def test_an_idle_worker_takes_a_new_job_at_once_not_at_its_next_look(
    operator, cluster, fake_cluster
):
    # It looks at the queue on its own only every 30 s: each job below reaches the cluster
    # within seconds only because queueing it wakes the worker.
    process = worker("--interval", "30")
    try:
        wait_until(lambda: WorkerHeartbeat.objects.exists())
        for n in range(3):
            [job] = job_submit(user=operator, action=1, cluster=cluster, cids=f"W{n}", token=TOKEN)
            wait_until(lambda job=job: fake_cluster.count(str(job.pk)) == 1, timeout=5)
            wait_until(lambda job=job: Job.objects.get(pk=job.pk).status == "SUCCESS")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def test_an_idle_worker_stops_at_once_on_sigterm_however_long_its_wait():
    process = worker("--interval", "30")
    try:
        wait_until(lambda: WorkerHeartbeat.objects.exists())
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=3)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert not WorkerHeartbeat.objects.exists()


def count_calls_afresh(fake_cluster) -> None:
    """Count the calls in flight from now on, once no earlier test's call is in the fake
    cluster's hands (a slow call of a worker an earlier test killed answers after SLOW_SECONDS):
    it would raise the most in flight above what the test's own worker made."""
    wait_until(lambda: fake_cluster.concurrency()["in_flight"] == 0, timeout=30)
    fake_cluster.reset_concurrency()


def clusters_like(cluster, count: int) -> list:
    """`cluster` and `count - 1` others on the same fake cluster: a worker process keeps some
    of its threads out of any one cluster's calls (jobs.lanes), so its whole concurrency is
    reached with jobs for several."""
    cluster.timeout_seconds = 30
    cluster.max_concurrent_calls = 8
    cluster.save()
    others = [
        baker.make(
            "jobs.Cluster",
            name=f"eu{n}",
            base_url=cluster.base_url,
            timeout_seconds=30,
            is_active=True,
        )
        for n in range(2, count + 1)
    ]
    return [cluster, *others]


def test_one_worker_process_makes_its_concurrency_of_calls_at_once(operator, cluster, fake_cluster):
    clusters = clusters_like(cluster, 2)
    count_calls_afresh(fake_cluster)
    jobs = [
        job_submit(
            user=operator, action=1, cluster=clusters[n % 2], cids=f"SLOW-c{n}", token=TOKEN
        )[0]
        for n in range(8)
    ]
    process = worker("--concurrency", "8")
    try:
        wait_until(lambda: fake_cluster.concurrency()["max_in_flight"] == 8, timeout=30)
        wait_until(lambda: Job.objects.filter(status="SUCCESS").count() == 8, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert all(fake_cluster.count(str(job.pk)) == 1 for job in jobs)
    assert WorkerHeartbeat.objects.count() == 0


def heartbeat_pids() -> set[int]:
    return set(WorkerHeartbeat.objects.values_list("pid", flat=True))


def read_until(process: subprocess.Popen, text: str, times: int, timeout: float = 30) -> str:
    """The worker's output up to the `times`-th line holding `text`; fails after `timeout`."""
    lines: list[str] = []

    def read() -> None:
        seen = 0
        for line in process.stdout:
            lines.append(line)
            seen += text in line
            if seen == times:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "".join(lines)
    return "".join(lines)


def test_a_worker_thread_keeps_its_database_connection_from_task_to_task(
    operator, cluster, fake_cluster, monkeypatch
):
    for alias in connections:
        for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):
            monkeypatch.setitem(
                connections.settings[alias], key, connections[alias].settings_dict[key]
            )
    for n in range(3):
        job_submit(user=operator, action=1, cluster=cluster, cids=f"K{n}", token=TOKEN)
    used = []

    def record(sender, **kwargs) -> None:
        used.append(connection.connection)

    task_started.connect(record)
    try:
        keep_connections()
        _Loop(worker_id="test", watch=QueueWatch(), idle_wait=1, once=True).run()
    finally:
        task_started.disconnect(record)
    assert Job.objects.filter(status="SUCCESS").count() == 3
    # One connection for the three tasks (Django's default would have made one each).
    assert len(used) == 3 and used[0] is used[1] is used[2] is not None


def test_worker_processes_share_its_calls_and_stop_together(operator, cluster, fake_cluster):
    # One cluster a job: whichever process takes which, none is held back by its share.
    clusters = clusters_like(cluster, 4)
    count_calls_afresh(fake_cluster)
    jobs = [
        job_submit(user=operator, action=1, cluster=clusters[n], cids=f"SLOW-p{n}", token=TOKEN)[0]
        for n in range(4)
    ]
    process = worker("--concurrency", "4", "--processes", "2")
    try:
        # Four calls at once from two processes of two threads each: each has its heartbeat.
        wait_until(lambda: fake_cluster.concurrency()["max_in_flight"] == 4, timeout=30)
        pids = heartbeat_pids()
        assert len(pids) == 2 and process.pid not in pids
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    # The calls in hand when the signal came finished and were recorded.
    assert set(Job.objects.values_list("status", flat=True)) == {"SUCCESS"}
    assert all(fake_cluster.count(str(job.pk)) == 1 for job in jobs)
    assert not WorkerHeartbeat.objects.exists()
    assert not DBTaskResult.objects.filter(status="RUNNING").exists()


def test_a_second_sigterm_forces_every_worker_process_out(
    operator, cluster, fake_cluster, monkeypatch
):
    # The calls answer long after the force, and the process must be gone well before: a
    # slow machine gets seconds to stop, and an answer still cannot arrive before the end.
    monkeypatch.setattr(fake_cluster, "slow_seconds", FORCED_CALL_SECONDS)
    cluster.timeout_seconds = 30
    cluster.save()
    for n in range(2):
        job_submit(user=operator, action=1, cluster=cluster, cids=f"SLOW-f{n}", token=TOKEN)
    process = worker("--concurrency", "2", "--processes", "2")
    try:
        wait_until(lambda: fake_cluster.concurrency()["in_flight"] == 2, timeout=30)
        process.send_signal(signal.SIGTERM)
        # Each worker process took the first signal: both are finishing their calls.
        output = read_until(process, "finishing the tasks in hand", times=2)
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=FORCED_CALL_SECONDS - 5)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, output + rest
    # Cut off mid-call: left started for the reaper, their task rows ended as forced.
    assert [(job.status, job.started_at is not None) for job in Job.objects.all()] == [
        ("IN_PROGRESS", True)
    ] * 2
    assert set(DBTaskResult.objects.values_list("exception_class_path", flat=True)) == {FORCED}


def test_a_second_signal_handled_inside_the_first_still_forces():
    """A signal can run its handler again inside the handling of the one before (Python runs
    handlers between bytecodes): the second must force even so, not be taken for the first."""
    worker = Worker(worker_id="nested", concurrency=1, interval=1)
    nested: list[str] = []

    class SecondSignalMeanwhile(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "finishing the tasks in hand" in record.getMessage() and not nested:
                nested.append(record.getMessage())
                worker.shutdown(signal.SIGTERM, None)

    handler = SecondSignalMeanwhile()
    before = {
        signum: signal.getsignal(signum)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
    }
    logging.getLogger("ops.worker").addHandler(handler)
    try:
        with pytest.raises(SystemExit) as forced:
            worker.shutdown(signal.SIGTERM, None)
    finally:
        logging.getLogger("ops.worker").removeHandler(handler)
        for signum, previous in before.items():
            signal.signal(signum, previous)
    assert nested and forced.value.code == 1


def test_a_worker_process_that_dies_stops_the_others_and_fails_the_worker():
    process = worker("--concurrency", "2", "--processes", "2", "--interval", "30")
    try:
        wait_until(lambda: len(heartbeat_pids()) == 2)
        victim = min(heartbeat_pids())
        os.kill(victim, signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, output
    assert f"worker process {victim} ended with status -9" in output
    # The other stopped cleanly, its heartbeat with it; the killed one's is housekeeping's.
    assert heartbeat_pids() == {victim}


def test_more_worker_processes_than_calls_are_refused():
    with pytest.raises(CommandError, match="at most --concurrency"):
        call_command("run_worker", "--concurrency", "2", "--processes", "3")
