"""`manage.py run_dashboard` (what `make run` starts) serves everything with the production
processes; one Ctrl-C stops it all gracefully, a second forces it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from jobs.services import job_submit
from ops.models import WorkerHeartbeat
from tests.helpers import TOKEN, answers, database_url, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 2
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def children_of(pid: int) -> dict[int, str]:
    """Every live descendant of a process, with its command line."""
    parents, commands = {}, {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            parents[int(proc.name)] = int(ppid)
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = commands[child].decode()
                frontier.append(child)
    return found


def alive(pids) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in state_of(pid)]


def state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


@pytest.fixture
def dashboard():
    """A running `run_dashboard` on the tests' database, its web address and its processes."""
    web, fake = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_dashboard",
            "--addrport",
            f"127.0.0.1:{web}",
            "--concurrency",
            str(CONCURRENCY),
            "--fake-cluster-port",
            str(fake),
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, like a terminal's foreground job that Ctrl-C signals.
        start_new_session=True,
    )
    login = f"http://127.0.0.1:{web}/accounts/login/"
    try:
        wait_until(lambda: answers(login), timeout=60)
        wait_until(lambda: answers(f"http://127.0.0.1:{fake}/_counts"), timeout=60)
        wait_until(lambda: WorkerHeartbeat.objects.count() == 1, timeout=60)
        yield process, login, children_of(process.pid)
    finally:
        if process.poll() is None:
            for pid in [process.pid, *children_of(process.pid)]:
                os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=30)


def test_serves_with_gunicorn_workers_housekeeping_and_the_fake_cluster(dashboard):
    _, _, children = dashboard
    commands = list(children.values())
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
    process, login, children = dashboard
    cluster.timeout_seconds = 30
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-stop", token=TOKEN)
    wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)

    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    job.refresh_from_db()
    assert (job.status, job.http_status) == ("SUCCESS", 200)
    assert fake_cluster.count(str(job.pk)) == 1
    assert alive(children) == []
    assert not WorkerHeartbeat.objects.exists()
    assert not answers(login)


def test_a_second_interrupt_forces_the_stop(dashboard, operator, cluster, fake_cluster):
    process, login, children = dashboard
    cluster.timeout_seconds = 30
    cluster.save()
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="SLOW-force", token=TOKEN)
    wait_until(lambda: fake_cluster.count(str(job.pk)) == 1, timeout=60)

    os.killpg(process.pid, signal.SIGINT)
    # The first stop is under way: the web server has finished and gone.
    wait_until(lambda: not answers(login), timeout=30)
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=30)

    assert alive(children) == []
    # Stopped mid-call: the job stays started, for the reaper to end as UNKNOWN, and its task
    # row was ended by the worker on its way out.
    job.refresh_from_db()
    assert job.status == "IN_PROGRESS" and job.started_at is not None
    assert not DBTaskResult.objects.filter(status="RUNNING").exists()


def test_one_interrupt_lets_the_web_server_finish_a_request_in_hand(dashboard):
    process, login, _ = dashboard
    port = int(login.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        # A request the server has begun to read, but not yet all of.
        connection.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        os.killpg(process.pid, signal.SIGINT)
        # The stop is under way: no new connection is accepted.
        wait_until(lambda: not answers(login), timeout=30)
        connection.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    assert b"</html>" in answer
    process.communicate(timeout=60)
    assert process.returncode == 0
