"""The production web server for a benchmark script, as `make run` starts it, on the scratch
database `scratch.scratch_django(name, **SERVER_ENV)` set up: operators with passwords and API
tokens, and gunicorn (tmsdash/gunicorn.py, TMS_WEB_PROCESSES x TMS_WEB_THREADS) in a child
process, which inherits the environment. For a script under bench/."""

from __future__ import annotations

import html
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests
from scratch import ROOT

PASSWORD = "bench-Pass-4-web-submits"  # noqa: S105 (a scratch database)
CLUSTER_TOKEN = "bench-cluster-token"  # noqa: S105
# BENCH_PORT: another, for benchmarks that run at the same time on one machine.
PORT = int(os.environ.get("BENCH_PORT", "8765"))
# The server's settings: production's (DEBUG off), without the limits a benchmark would
# otherwise measure instead of the server. For `scratch_django`.
SERVER_ENV = {
    "DEBUG": "false",
    "ENV_FILE": "/dev/null",
    "TMS_WEB_BIND": f"127.0.0.1:{PORT}",
    "TMS_API_SUBMITS_PER_MINUTE": "1000000",
    "TMS_API_READS_PER_MINUTE": "1000000",
    "TMS_SIGNIN_FAILURE_LIMIT": "1000",
}


def operators(names: list[str], max_cids_per_request: int = 500) -> list[tuple[str, str]]:
    """Migrate, empty the jobs, make the cluster `bench` and one operator per name with a
    password and an API token; returns (username, API token secret) of each."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from api.tokens import token_create
    from jobs.models import Cluster, InFlightCustomer, Job

    if "bench" not in str(connection.settings_dict["NAME"]):
        sys.exit("Refusing to run: the database's name must contain 'bench' (it is emptied).")
    call_command("migrate", verbosity=0)
    InFlightCustomer.objects.all().delete()
    Job.objects.all().delete()
    Cluster.objects.update_or_create(
        name="bench",
        defaults={"base_url": "http://127.0.0.1:9/", "max_cids_per_request": max_cids_per_request},
    )
    made = []
    for name in names:
        user, _ = User.objects.get_or_create(username=name)
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name="Operators"))
        made.append((name, token_create(user=user, name="bench").secret))
    return made


@contextmanager
def gunicorn(
    stderr: IO | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Collect the static files, start gunicorn (its log to `stderr`, `env` added to this
    process's environment), and yield its base URL and process once it answers; stop it
    gracefully after."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT, check=True
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:tmsdash.gunicorn"],
        cwd=ROOT,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    base = f"http://{os.environ['TMS_WEB_BIND']}"
    try:
        for _ in range(200):
            try:
                requests.get(f"{base}/accounts/login/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        if server.poll() is not None:
            sys.exit(f"gunicorn stopped at start (is {base} taken? BENCH_PORT chooses another)")
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def hidden(page: requests.Response, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page.text)[1]


def signed_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    login = session.get(f"{base}/accounts/login/")
    done = session.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": hidden(login, "csrfmiddlewaretoken"),
            "username": username,
            "password": PASSWORD,
        },
        allow_redirects=False,
    )
    if done.status_code != 302:
        sys.exit(f"{username} could not sign in: {done.status_code}")
    return session


def bench_cluster(form_page: requests.Response) -> str:
    """The id of the cluster `bench` in the Set Action form."""
    return re.search(r'<option value="(\d+)">bench</option>', form_page.text)[1]


def confirm_fields(review: requests.Response) -> dict[str, str]:
    """The fields the review's Confirm button sends."""
    form = re.search(
        r'<form method="post" id="confirm-set-action-form".*?</form>', review.text, re.S
    )
    if form is None:
        sys.exit(f"no review page: {review.status_code} {review.text[:500]}")
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form[0])
    }


def worker_pids(server: subprocess.Popen) -> list[int]:
    """gunicorn's master and its worker processes."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *map(int, children)]


def rss_mb(pid: int) -> float:
    """A process's resident memory now, in MB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024


@dataclass
class Load:
    """What `load` measured: requests (or submissions) done, per second, their durations."""

    label: str
    done: int
    seconds: float
    times: list[float]
    errors: list[str]
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    def line(self) -> str:
        return (
            f"{self.label}: {self.rate:.0f}/s ({self.done} in {self.seconds:.1f} s), "
            f"median {statistics.median(self.times) * 1000:.0f} ms, "
            f"p95 {percentile(self.times, 95):.0f} ms, errors {len(self.errors)} "
            f"{sorted(set(self.errors))[:5]}; the clients used {self.client_cpu:.0%} of a core"
        )


def load(label: str, seconds: float, clients: list, ask: Callable) -> Load:
    """Every client at once, each calling `ask(client, i)` for i = 0, 1, ... until `seconds`
    have passed (a call in hand finishes); `ask` returns "" or what went wrong. A connection
    that fails is an error too."""
    times: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(len(clients) + 1)
    deadline = 0.0

    def run(client) -> None:
        start.wait()
        i = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                wrong = ask(client, i)
            except requests.ConnectionError as error:
                # gunicorn closes a kept-alive connection idle for 2 s: on a saturated
                # machine a client may send on one just closed. Counted, not fatal.
                wrong = f"connection: {type(error.args[0]).__name__}"
            times.append(time.perf_counter() - began)
            if wrong:
                errors.append(wrong)
            i += 1

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    began, cpu = time.perf_counter(), time.process_time()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Load(label, len(times), elapsed, times, errors, (time.process_time() - cpu) / elapsed)


def percentile(times: list[float], p: int) -> float:
    """The p-th percentile of `times` (seconds), in milliseconds."""
    return statistics.quantiles(times, n=100)[p - 1] * 1000 if len(times) > 1 else 0.0


def bearer(secret: str) -> requests.Session:
    """A session that sends the API token `secret`."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    return session


def api_nothing(session: requests.Session, base: str) -> str:
    """The API's authenticated no-op: an unknown job, 404 after the token, the rate window
    and the permission are checked. "" or what went wrong."""
    answer = session.get(f"{base}/api/v1/jobs/{uuid.uuid4()}")
    return "" if answer.status_code == 404 else f"api {answer.status_code}"


def page_nothing(session: requests.Session, base: str) -> str:
    """A signed-in page that finds nothing: an unknown job's page, 404."""
    answer = session.get(f"{base}/jobs/{uuid.uuid4()}/", allow_redirects=False)
    return "" if answer.status_code == 404 else f"page {answer.status_code}"
