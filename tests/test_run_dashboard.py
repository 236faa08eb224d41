"""`manage.py run_dashboard` (what `make run` starts) serves everything with the production
processes; one Ctrl-C stops it all gracefully, a second forces it."""

from __future__ import annotations

import socket

import pytest
from django_tasks_db.models import DBTaskResult

from jobs.models import Cluster
from jobs.services import job_submit
from ops.models import WorkerHeartbeat
from tests.dashboard import CONCURRENCY, Dashboard
from tests.helpers import TOKEN, answers, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def dashboard():
    """A running `run_dashboard` on the tests' database."""
    run = Dashboard()
    try:
        run.wait_ready()
        yield run
    finally:
        run.close()


def test_serves_with_gunicorn_workers_housekeeping_and_the_fake_cluster(dashboard):
    commands = list(dashboard.processes().values())
    assert any("gunicorn" in command for command in commands)
    assert not any("runserver" in command for command in commands)
    assert (
        sum(command.endswith(f"run_worker --concurrency {CONCURRENCY} ") for command in commands)
        == 1
    )
    assert sum(command.endswith("housekeeping ") for command in commands) == 1


def test_one_interrupt_lets_the_call_in_flight_finish_then_stops_everything(
    dashboard, operator, cluster, fake_cluster
):
    cluster.timeout_seconds = 30
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-stop", token=TOKEN)
    wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)

    dashboard.interrupt()
    output = dashboard.wait()

    assert dashboard.process.returncode == 0, output
    job.refresh_from_db()
    assert (job.status, job.http_status) == ("SUCCESS", 200)
    assert fake_cluster.count(str(job.pk)) == 1
    assert dashboard.processes() == {}
    assert not WorkerHeartbeat.objects.exists()
    assert not answers(dashboard.url("/accounts/login/"))


def test_a_second_interrupt_forces_the_stop(dashboard, operator, cluster, fake_cluster):
    cluster.timeout_seconds = 30
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-force", token=TOKEN)
    wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)

    dashboard.interrupt()
    # The first stop is under way: the web server has finished and gone.
    wait_until(lambda: not answers(dashboard.url("/accounts/login/")), timeout=30)
    dashboard.interrupt()
    dashboard.wait(timeout=30)

    assert dashboard.processes() == {}
    # Stopped mid-call: the job stays started, for the reaper to end as UNKNOWN, and its task
    # row was ended by the worker on its way out.
    job.refresh_from_db()
    assert job.status == "IN_PROGRESS" and job.started_at is not None
    assert not DBTaskResult.objects.filter(status="RUNNING").exists()


def test_one_interrupt_lets_the_web_server_finish_a_request_in_hand(dashboard):
    host, port = dashboard.web.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        # A request the server has begun to read, but not yet all of.
        connection.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        dashboard.interrupt()
        # The stop is under way: no new connection is accepted.
        wait_until(lambda: not answers(dashboard.url("/accounts/login/")), timeout=30)
        connection.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    assert b"</html>" in answer
    dashboard.wait()
    assert dashboard.process.returncode == 0


def test_the_demo_passwords_and_the_address_are_the_last_lines_before_the_processes_logs(
    monkeypatch,
):
    monkeypatch.delenv("TMS_DEMO_ADMIN_PASSWORD", raising=False)
    run = Dashboard("--migrate", "--seed-demo")
    try:
        run.wait_ready()
        run.interrupt()
        lines = run.wait().splitlines()
    finally:
        run.close()
    banner = next(n for n, line in enumerate(lines) if line.startswith("tmsdash on http://"))
    assert lines[banner].startswith(f"tmsdash on http://{run.web}/ ")
    assert lines[banner - 1].startswith("seed_demo: created operator, auditor, admin")
    assert any(line.startswith("Created user admin (generated password: ") for line in lines)
    # Nothing before the seeding's lines: the migrations ran quietly, and no process had begun.
    assert lines[0].startswith("Created user operator ")
    assert Cluster.objects.get(name="local").base_url == (
        f"http://127.0.0.1:{run.fake_cluster_port}"
    )


def test_a_longest_restart_wait_shorter_than_the_first_is_refused_before_anything_starts():
    run = Dashboard("--restart-delay", "5", "--max-restart-delay", "1")
    try:
        output = run.wait(timeout=60)
    finally:
        run.close()
    assert run.process.returncode == 1
    assert "--max-restart-delay (1) must be at least --restart-delay (5)." in output
    assert "tmsdash on http://" not in output
