"""`manage.py run_dashboard` (what `make run` starts) serves everything; one Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import database_url, wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return response.status == 200
    except OSError:
        return False


def group_commands(pgid: int) -> list[str]:
    """The command lines of the live processes in a process group."""
    commands = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            commands.append(cmdline.replace(b"\0", b" ").decode())
    return commands


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_interrupt_stops_web_workers_and_fake_cluster():
    web, fake = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_dashboard",
            "--addrport",
            f"127.0.0.1:{web}",
            "--workers",
            "2",
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
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{web}/accounts/login/"), timeout=60)
        wait_until(lambda: answers(f"http://127.0.0.1:{fake}/_counts"), timeout=60)
        commands = group_commands(process.pid)
        assert sum("db_worker" in command for command in commands) == 2
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    wait_until(lambda: group_commands(process.pid) == [], timeout=30)
    assert not answers(f"http://127.0.0.1:{web}/accounts/login/")
    assert not answers(f"http://127.0.0.1:{fake}/_counts")
