"""`manage.py run_dashboard` restarts a process that dies, as systemd does in production, and
stops everything only when one keeps dying right after its start."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request

import pytest

from jobs.models import Job
from jobs.services import job_submit
from ops.models import WorkerHeartbeat
from tests.dashboard import CONCURRENCY, Dashboard
from tests.helpers import TOKEN, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
WORKER = f"run_worker --concurrency {CONCURRENCY} "
HOUSEKEEPING = "manage.py housekeeping "


@pytest.fixture
def dashboard(request):
    """A running `run_dashboard`, given the options a test's indirect parameter holds."""
    run = Dashboard(*getattr(request, "param", ()))
    try:
        run.wait_ready()
        yield run
    finally:
        run.close()


def replacement(run: Dashboard, ending: str, old: int) -> int:
    """Wait for the one process ending `ending` to be a new one; its pid."""
    wait_until(lambda: run.pids_of(ending) not in ([], [old]), timeout=60)
    [new] = run.pids_of(ending)
    return new


def health(run: Dashboard) -> dict:
    """The web server's /healthz report, whatever its status."""
    try:
        with urllib.request.urlopen(run.url("/healthz"), timeout=10) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def test_a_killed_worker_is_started_again_and_runs_the_next_job(
    dashboard, operator, cluster, fake_cluster
):
    [old] = dashboard.pids_of(WORKER)

    os.kill(old, signal.SIGKILL)
    new = replacement(dashboard, WORKER, old)
    wait_until(lambda: WorkerHeartbeat.objects.filter(pid=new).exists(), timeout=60)
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C-after", token=TOKEN)
    wait_until(lambda: Job.objects.get(pk=job.pk).status != "IN_PROGRESS", timeout=60)

    assert dashboard.process.poll() is None
    job.refresh_from_db()
    assert job.status == "SUCCESS"
    assert fake_cluster.count(str(job.pk)) == 1
    assert f"The worker process (pid {old}) exited after" in dashboard.output
    assert "killed by SIGKILL. Starting it again in 1 s, at " in dashboard.output
    assert f"Started the worker process again (pid {new})." in dashboard.output


def test_a_killed_housekeeping_is_started_again_while_the_web_server_answers(dashboard):
    [old] = dashboard.pids_of(HOUSEKEEPING)

    os.kill(old, signal.SIGKILL)
    new = replacement(dashboard, HOUSEKEEPING, old)

    wait_until(
        lambda: WorkerHeartbeat.objects.filter(pid=new, role="housekeeping").exists(), timeout=60
    )
    assert dashboard.process.poll() is None
    wait_until(lambda: health(dashboard)["status"] == "ok", timeout=60)
    assert f"Started the housekeeping process again (pid {new})." in dashboard.output


def test_a_process_that_keeps_dying_right_after_its_start_stops_everything():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = Dashboard(
            # Short waits for a fast test; a start-up slowed by a busy machine still counts.
            *("--restart-delay", "0.05", "--start-limit-seconds", "60"),
            fake_cluster_port=taken.getsockname()[1],
        )
        try:
            output = run.wait(timeout=180)
        finally:
            run.close()

    assert run.process.returncode == 1, output
    assert output.count("Cannot listen on") == 5
    assert output.count("Started the fake cluster process again") == 4
    assert (
        "The fake cluster process exited 5 times in a row, each within 60 s of its start "
        "(last: exit status 1)" in output
    )
    assert "Look at its lines above for why" in output
    assert output.rstrip().splitlines()[-1].startswith("CommandError: The fake cluster process")
    assert run.processes() == {}


@pytest.mark.parametrize(
    "dashboard", [("--restart-delay", "600", "--max-restart-delay", "600")], indirect=True
)
def test_a_stop_while_a_process_waits_to_start_again_stops_without_starting_it(dashboard):
    [old] = dashboard.pids_of(HOUSEKEEPING)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: "Starting it again in 600 s" in dashboard.output, timeout=30)

    dashboard.interrupt()
    output = dashboard.wait(timeout=60)

    assert dashboard.process.returncode == 0, output
    assert "Started the housekeeping process again" not in output
    assert dashboard.processes() == {}
