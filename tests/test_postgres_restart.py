"""A PostgreSQL restart under the whole dashboard, as `make run` starts it (run_dashboard: web
server, worker, housekeeping), while calls are in flight and clients submit: it costs time,
never a job. Every click the clients made is one job (they send the same Idempotency-Key again
after a 503 or a lost answer), every job is called once and ends truthfully, no answer is a 500,
and every process is still up or was restarted.

The server is one of the test's own (devtools/own_postgres.py), so the test runs whichever engine
the suite is on.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import requests

from devtools.own_postgres import OwnPostgres
from devtools.own_stack import CLUSTER, own_stack
from tests.db_faults import BUSY_TIMEOUT
from tests.helpers import TOKEN, free_port, wait_until

CLIENTS = 4
IN_FLIGHT = 4
# How long the clients go on submitting after the restart.
AFTER_SECONDS = 3


class Clients:
    """Threads submitting one customer each time through the API, until stopped, each click
    sent again with its key until it is answered 201 (or 200, replayed)."""

    def __init__(self, base: str, secret: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.retry_after: list[str | None] = []
        self.jobs: dict[str, list[str]] = {}
        self.unexpected: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(CLIENTS)]

    def submit(self, key: str, cids: list[str]) -> list[str]:
        body = {"action": "T-Enable", "cluster": CLUSTER, "cids": cids, "cluster_token": TOKEN}
        while True:
            try:
                answer = requests.post(
                    f"{self.base}/api/v1/set-actions",
                    json=body,
                    headers={**self.headers, "Idempotency-Key": key},
                    timeout=60,
                )
            except requests.ConnectionError:
                continue
            with self.lock:
                self.statuses.append(answer.status_code)
                if answer.status_code == 503:
                    self.retry_after.append(answer.headers.get("Retry-After"))
            if answer.status_code in (200, 201):
                ids = [job["id"] for job in answer.json()["jobs"]]
                with self.lock:
                    self.jobs[key] = ids
                return ids
            if answer.status_code != 503:
                # Asserted by the test, once the clients stopped.
                with self.lock:
                    self.unexpected.append(f"{answer.status_code} {answer.text}")
                return []
            time.sleep(0.2)

    def run(self, n: int) -> None:
        for i in itertools.count():
            if self.stopping.is_set():
                return
            if not self.submit(f"client{n}-{i}", [f"C{n}-{i}"]):
                return

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)


def healthz(base: str) -> int:
    """The health check's status, 0 while the server does not answer (not listening yet, or
    still starting: under load its first answer can take longer than one try waits)."""
    try:
        return requests.get(f"{base}/healthz", timeout=5).status_code
    except (requests.ConnectionError, requests.Timeout):
        return 0


def test_a_postgres_restart_costs_time_not_jobs(tmp_path, fake_cluster):
    with (
        OwnPostgres() as server,
        own_stack(server.url, tmp_path, cluster_token=TOKEN, busy_timeout=BUSY_TIMEOUT) as stack,
    ):
        secret = stack.set_up(fake_cluster.url)
        port = free_port()
        runner = stack.start(
            "dashboard",
            "run_dashboard",
            "--addrport",
            f"127.0.0.1:{port}",
            "--concurrency",
            str(IN_FLIGHT + 2),
            "--fake-cluster-port",
            str(free_port()),
            env={"TMS_API_SUBMITS_PER_MINUTE": "100000", "TMS_WEB_PROCESSES": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthz(base) == 200, timeout=120)
        with Clients(base, secret) as clients:
            slow = [clients.submit(f"slow-{n}", [f"SLOW-{n}"])[0] for n in range(IN_FLIGHT)]
            wait_until(lambda: all(fake_cluster.count(job) == 1 for job in slow), timeout=60)
            server.restart()
            clients.stopping.wait(AFTER_SECONDS)
        wait_until(lambda: "IN_PROGRESS" not in stack.jobs().values(), timeout=120)
        # /healthz says so within 30 s of the server's return, with every process beating.
        wait_until(lambda: healthz(base) == 200, timeout=30)
        assert runner.poll() is None, stack.log("dashboard")
        ended = stack.jobs()

    accepted = [job.replace("-", "") for ids in clients.jobs.values() for job in ids]
    assert clients.unexpected == []
    assert all(seconds and seconds.isdigit() for seconds in clients.retry_after)
    # One click, one job, each called once and ended truthfully (the fake cluster answers 200).
    assert len(set(accepted)) == len(accepted)
    assert set(ended) == set(accepted)
    assert set(ended.values()) == {"SUCCESS"}
    assert all(fake_cluster.count(str(uuid.UUID(job))) == 1 for job in accepted)
