"""A full disk under SQLite costs time, never a job: a submit is refused with a clear error
and writes nothing, an answer the cluster gave while the disk was full is recorded once there
is room again, the worker stays up, and what was accepted runs.

The disk is a small tmpfs of the test's own, mounted for it (root only: CI runs as root);
"database or disk is full" comes from SQLite itself, as on a real disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.own_stack import own_stack
from tests.db_faults import BUSY_TIMEOUT
from tests.helpers import TOKEN, wait_until

FILLER = "filler"


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path.mkdir()
    mount = [shutil.which("mount"), "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    subprocess.run(mount, check=True)
    try:
        yield path
    finally:
        subprocess.run([shutil.which("umount"), "--lazy", str(path)], check=True)


def fill(disk: Path) -> None:
    """Fill the disk to its last byte."""
    descriptor = os.open(disk / FILLER, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    assert os.statvfs(disk).f_bavail == 0


def test_a_full_disk_costs_time_not_jobs(tmp_path, fake_cluster):
    with (
        small_disk(tmp_path / "disk", "32m") as disk,
        own_stack(
            f"sqlite:///{disk}/db.sqlite3", tmp_path, cluster_token=TOKEN, busy_timeout=BUSY_TIMEOUT
        ) as stack,
    ):
        stack.set_up(fake_cluster.url)
        worker = stack.start("worker", "run_worker", "--interval", "0.05", "--concurrency", "2")
        accepted = stack.submit("SLOW-disk")
        assert accepted.returncode == 0, accepted.stderr
        in_flight = accepted.stdout.strip()
        wait_until(lambda: fake_cluster.count(in_flight) == 1, timeout=60)

        fill(disk)
        before = stack.jobs()
        refused = stack.submit("C-while-full")
        assert refused.returncode != 0
        assert "database or disk is full" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert stack.jobs() == before
        # The cluster answers while the disk is full: the worker cannot record it yet.
        wait_until(lambda: "database unavailable" in stack.log("worker"), timeout=60)
        assert stack.jobs()[in_flight.replace("-", "")] == "IN_PROGRESS"

        (disk / FILLER).unlink()
        wait_until(lambda: stack.jobs()[in_flight.replace("-", "")] == "SUCCESS", timeout=60)
        later = stack.submit("C-after")
        assert later.returncode == 0, later.stderr
        after = later.stdout.strip()
        wait_until(lambda: stack.jobs()[after.replace("-", "")] == "SUCCESS", timeout=60)
        assert worker.poll() is None
        assert "database back" in stack.log("worker")
    assert fake_cluster.count(in_flight) == 1
    assert fake_cluster.count(after) == 1
