"""How long the dashboard takes to recover from each fault of the runbook (docs/runbook.md), on
the whole stack `make run` starts (run_dashboard: web server, worker, housekeeping) on a
database of its own, with a fake cluster answering SLOW calls after 4 s:

- postgres-restart: a PostgreSQL of its own restarted (`pg_ctl restart -m fast`) while 4 calls
  are in flight;
- sqlite-lock: SQLite held by another connection's BEGIN EXCLUSIVE for --lock-seconds (default
  40, beyond the 30 s busy timeout) while a job is queued and a call is in flight;
- full-disk: SQLite on a small tmpfs filled to its last byte for 25 s while a call is in flight
  (root only);
- kill-worker, kill-housekeeping: `kill -9` of that process under the runner.

For each: how long the API answered 503 (and whether anything answered 500), when /healthz said
so and when it was 200 again, and when every accepted job had ended. Times are from the end of
the fault (the server back, the lock released, the disk freed, the kill), except where said.

    .venv/bin/python bench/recovery.py [--only NAME] [--lock-seconds 40]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from scratch import scratch_django

scratch_django("recovery")

import requests  # noqa: E402

from devtools.fake_cluster import FakeCluster  # noqa: E402
from devtools.own_postgres import OwnPostgres  # noqa: E402
from devtools.own_stack import CLUSTER, OwnStack  # noqa: E402
from devtools.ports import free_port  # noqa: E402

SLOW_SECONDS = 4
# What the fake cluster is given as the operator's token.
TOKEN = "bench-cluster-token"  # noqa: S105


class Dashboard:
    """run_dashboard on `stack`, with an API client."""

    def __init__(self, stack: OwnStack, secret: str) -> None:
        self.stack = stack
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.keys = itertools.count()
        self.runner = stack.start(
            "dashboard",
            "run_dashboard",
            "--addrport",
            f"127.0.0.1:{self.port}",
            "--fake-cluster-port",
            str(free_port()),
            env={"TMS_API_SUBMITS_PER_MINUTE": "100000"},
        )
        since(time.monotonic(), lambda: self.health() == 200)

    def health(self) -> int:
        try:
            return requests.get(f"{self.base}/healthz", timeout=5).status_code
        except requests.RequestException:
            return 0

    def submit(self, cid: str) -> tuple[int, list[str]]:
        body = {"action": "T-Enable", "cluster": CLUSTER, "cids": [cid], "cluster_token": TOKEN}
        key = f"bench-{next(self.keys)}"
        try:
            answer = requests.post(
                f"{self.base}/api/v1/set-actions",
                json=body,
                headers={**self.headers, "Idempotency-Key": key},
                timeout=60,
            )
        except requests.RequestException:
            return 0, []
        jobs = [job["id"] for job in answer.json()["jobs"]] if answer.status_code == 201 else []
        return answer.status_code, jobs

    def child(self, name: str) -> int | None:
        """The pid of the runner's child running `name` (run_worker, housekeeping)."""
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if parent == self.runner.pid and name in command:
                    return int(proc.name)
        return None

    def ended(self, jobs: list[str]) -> bool:
        statuses = self.stack.jobs()
        return all(statuses.get(job.replace("-", "")) not in (None, "IN_PROGRESS") for job in jobs)


def since(start: float, condition, timeout: float = 180) -> float:
    """Seconds from `start` (a time.monotonic()) until `condition()` holds, polled every 50 ms."""
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)
    return time.monotonic() - start


def in_flight(dashboard: Dashboard, fake: FakeCluster, count: int) -> list[str]:
    jobs = []
    for n in range(count):
        status, ids = dashboard.submit(f"SLOW-{time.monotonic_ns()}-{n}")
        if status != 201:
            raise RuntimeError(f"the submit before the fault answered {status}")
        jobs += ids
    since(time.monotonic(), lambda: all(fake.count(job) == 1 for job in jobs))
    return jobs


class During:
    """While the fault lasts: submits one after another, and asks /healthz every 0.1 s, each in
    a thread of its own (a submit may wait out SQLite's busy timeout)."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.stopping = threading.Event()
        self.answers: set[int] = set()
        self.accepted: list[str] = []
        self.health_503_after: float | None = None
        self.threads = [threading.Thread(target=self.submit), threading.Thread(target=self.ask)]

    def submit(self) -> None:
        while not self.stopping.wait(0.05):
            status, jobs = self.dashboard.submit(f"C{time.monotonic_ns()}")
            self.answers.add(status)
            self.accepted += jobs

    def ask(self) -> None:
        started = time.monotonic()
        while self.health_503_after is None and not self.stopping.wait(0.1):
            if self.dashboard.health() == 503:
                self.health_503_after = round(time.monotonic() - started, 1)

    def __enter__(self) -> During:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def report(name: str, during: During | None, recovered: dict[str, float]) -> None:
    seen = (
        f"API answers during the fault {sorted(during.answers)}, /healthz 503 after "
        f"{during.health_503_after} s; "
        if during
        else ""
    )
    print(f"{name}: {seen}after it: " + ", ".join(f"{k} {v:.1f} s" for k, v in recovered.items()))


def recovery(dashboard: Dashboard, back: float, jobs: list[str], during: During | None):
    """Seconds from `back` until the calls in flight were recorded, the jobs accepted during the
    fault ended, a submit was answered 201, and /healthz said 200: all looked at together every
    50 ms, each timed when first seen."""
    accepted = during.accepted if during else []
    conditions = {
        "calls in flight recorded": lambda: dashboard.ended(jobs),
        "jobs accepted during it ended": lambda: dashboard.ended(accepted),
        "a submit answered 201": lambda: dashboard.submit("C-after")[0] == 201,
        "/healthz 200": lambda: dashboard.health() == 200,
    }
    times: dict[str, float] = {}
    while len(times) < len(conditions):
        if time.monotonic() - back > 180:
            raise TimeoutError(f"not recovered: {sorted(set(conditions) - set(times))}")
        for name, condition in conditions.items():
            if name not in times and condition():
                times[name] = time.monotonic() - back
        time.sleep(0.05)
    return times


def postgres_restart(fake: FakeCluster, logs: Path, **_) -> None:
    with OwnPostgres() as server:
        stack = OwnStack(server.url, logs=logs, cluster_token=TOKEN)
        try:
            dashboard = Dashboard(stack, stack.set_up(fake.url))
            jobs = in_flight(dashboard, fake, 4)
            with During(dashboard) as during:
                restarting = time.monotonic()
                server.restart()
                back = time.monotonic()
            times = {"the restart itself": back - restarting}
            report("postgres-restart", during, times | recovery(dashboard, back, jobs, during))
        finally:
            stack.stop()


def sqlite_lock(fake: FakeCluster, logs: Path, lock_seconds: float, **_) -> None:
    path = logs / "db.sqlite3"
    stack = OwnStack(f"sqlite:///{path}", logs=logs, cluster_token=TOKEN)
    try:
        dashboard = Dashboard(stack, stack.set_up(fake.url))
        jobs = in_flight(dashboard, fake, 1)
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
            holder.execute("BEGIN EXCLUSIVE")
            with During(dashboard) as during:
                during.stopping.wait(lock_seconds)
                holder.execute("ROLLBACK")
                back = time.monotonic()
        report("sqlite-lock", during, recovery(dashboard, back, jobs, during))
    finally:
        stack.stop()


def full_disk(fake: FakeCluster, logs: Path, **_) -> None:
    disk = logs / "disk"
    disk.mkdir()
    mount = [shutil.which("mount"), "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)]
    subprocess.run(mount, check=True)
    stack = OwnStack(f"sqlite:///{disk / 'db.sqlite3'}", logs=logs, cluster_token=TOKEN)
    try:
        dashboard = Dashboard(stack, stack.set_up(fake.url))
        jobs = in_flight(dashboard, fake, 1)
        filler = disk / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(descriptor, b"\0" * 65536)
        os.close(descriptor)
        with During(dashboard) as during:
            during.stopping.wait(25)
            filler.unlink()
            back = time.monotonic()
        report("full-disk", during, recovery(dashboard, back, jobs, during))
    finally:
        stack.stop()
        subprocess.run([shutil.which("umount"), "--lazy", str(disk)], check=True)


def killed(fake: FakeCluster, logs: Path, which: str, **_) -> None:
    stack = OwnStack(f"sqlite:///{logs / 'db.sqlite3'}", logs=logs, cluster_token=TOKEN)
    try:
        dashboard = Dashboard(stack, stack.set_up(fake.url))
        jobs = in_flight(dashboard, fake, 1) if which == "run_worker" else []
        before = dashboard.child(which)
        os.kill(before, signal.SIGKILL)
        back = time.monotonic()
        times = {"started again": since(back, lambda: dashboard.child(which) not in (None, before))}
        report(f"kill -9 {which}", None, times | recovery(dashboard, back, jobs, None))
    finally:
        stack.stop()


SCENARIOS = {
    "postgres-restart": postgres_restart,
    "sqlite-lock": sqlite_lock,
    "full-disk": full_disk,
    "kill-worker": lambda **kw: killed(which="run_worker", fake=kw["fake"], logs=kw["logs"]),
    "kill-housekeeping": lambda **kw: killed(
        which="housekeeping", fake=kw["fake"], logs=kw["logs"]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--lock-seconds", type=float, default=40)
    options = parser.parse_args()
    with FakeCluster(slow_seconds=SLOW_SECONDS) as fake:
        for name, scenario in SCENARIOS.items():
            if options.only in (None, name):
                with tempfile.TemporaryDirectory(prefix=f"tms-{name}-") as logs:
                    scenario(fake=fake, logs=Path(logs), lock_seconds=options.lock_seconds)


if __name__ == "__main__":
    main()
