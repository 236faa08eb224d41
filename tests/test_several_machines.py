"""Several machines on one database: two web hosts (gunicorn) and four workers (`run_worker`),
with operators submitting Set Actions to both hosts at once, some of them the same form twice,
once to each host, as a double click behind a load balancer would.

It proves that every submitted form makes exactly one job (no duplicate), that every form has
its job (none lost), that every job ends SUCCESS (none stuck), that the cluster is called
exactly once per job, and that the cluster's `max_concurrent_calls` holds across all workers
(the fake cluster keeps the most calls it answered at once), with no server error on either host,
and that every web process of both hosts reports the same metrics, counting every worker's jobs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devtools.fake_cluster import FakeCluster
from jobs.models import Cluster, InFlightCall, InFlightCustomer, Job
from ops.models import WorkerHeartbeat
from tests.helpers import (
    THREADS,
    TOKEN,
    answers,
    database_url,
    free_port,
    run_concurrently,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
WEB_HOSTS = 2
WORKERS = 4
SUBMITS_PER_CLIENT = 3
LIMIT = 2
# Each call takes this long at the cluster, so that calls overlap and the limit is reached.
ANSWER_SECONDS = 0.2
PASSWORD = "several-Machines-4-tests"
START_SECONDS = 60
JOBS_SECONDS = 30
STOP_SECONDS = 30
HTTP_SECONDS = 30
METRICS_TOKEN = "several-machines-metrics-token"
JOB_PATH = re.compile(r"^/jobs/([0-9a-f-]{36})/$")

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@dataclass
class Submission:
    """One filled-in Set Action form, and the job each POST of it was sent to."""

    key: str
    cid: str
    job_ids: list[str] = field(default_factory=list)


@dataclass
class Machines:
    web: list[str]
    processes: list[subprocess.Popen]


def start(command: list[str], log: Path) -> subprocess.Popen:
    # Output goes to a file: a pipe nobody reads would block a chatty process when full.
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TMS_WEB_PROCESSES": "2",
        "TMS_METRICS_TOKEN": METRICS_TOKEN,
    }
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True
        )


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to all at once, so that they stop in parallel; SIGKILL what outlives it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    """Two gunicorn web hosts and four workers on the tests' database."""
    ports = [free_port() for _ in range(WEB_HOSTS)]
    processes: list[subprocess.Popen] = []
    try:
        for port in ports:
            command = [sys.executable, "-m", "gunicorn", "--config", "python:tmsdash.gunicorn"]
            command += ["--bind", f"127.0.0.1:{port}"]
            processes.append(start(command, tmp_path / f"web-{port}.log"))
        for n in range(WORKERS):
            command = [sys.executable, "manage.py", "run_worker", "--interval", "0.05"]
            processes.append(start(command, tmp_path / f"worker-{n}.log"))
        web = [f"http://127.0.0.1:{port}" for port in ports]
        for url in web:
            wait_until(lambda url=url: answers(f"{url}/accounts/login/"), timeout=START_SECONDS)
        wait_until(lambda: WorkerHeartbeat.objects.count() == WORKERS, timeout=START_SECONDS)
        yield Machines(web=web, processes=processes)
    finally:
        stop(processes)
        # Shown by pytest when the test fails.
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-5000:]}")


@pytest.fixture
def busy_cluster() -> Iterator[FakeCluster]:
    with FakeCluster(answer_seconds=ANSWER_SECONDS) as server:
        yield server


@pytest.fixture
def limited(db, busy_cluster: FakeCluster) -> Cluster:
    return Cluster.objects.create(
        name="shared",
        base_url=busy_cluster.url,
        timeout_seconds=30,
        max_concurrent_calls=LIMIT,
    )


class Browser:
    """One operator's browser: its cookies go to both hosts (cookies ignore the port), and
    every answer's status is kept in `statuses`, shared by all browsers."""

    def __init__(self, statuses: list[tuple[str, int]]) -> None:
        self.session = requests.Session()
        self.statuses = statuses

    def twin(self) -> Browser:
        """A second connection of the same browser, for a second click while the first waits."""
        other = Browser(self.statuses)
        other.session.cookies.update(self.session.cookies)
        return other

    def get(self, url: str) -> requests.Response:
        response = self.session.get(url, timeout=HTTP_SECONDS)
        self.statuses.append((f"GET {url}", response.status_code))
        return response

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        response = self.session.post(url, data=data, allow_redirects=False, timeout=HTTP_SECONDS)
        self.statuses.append((f"POST {url}", response.status_code))
        return response


def hidden(page: requests.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page.text)
    assert match, f"no {name} in the page {page.url} ({page.status_code})"
    return match[1]


def sign_in(browser: Browser, host: str, username: str) -> None:
    page = browser.get(f"{host}/accounts/login/")
    data = {
        "username": username,
        "password": PASSWORD,
        "csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken"),
    }
    response = browser.post(f"{host}/accounts/login/", data)
    assert (response.status_code, response.headers.get("Location")) == (302, "/")


def fill_in(browser: Browser, host: str, cluster: Cluster, cid: str) -> dict[str, str]:
    """The Set Action form as shown by `host`, filled in and reviewed: the review page's
    confirm form, whose hidden fields carry the form's key and the sealed token."""
    page = browser.get(f"{host}/")
    csrf = hidden(page, "csrfmiddlewaretoken")
    form = {
        "csrfmiddlewaretoken": csrf,
        "idempotency_key": hidden(page, "idempotency_key"),
        "action": "1",
        "cluster": str(cluster.pk),
        "cids": cid,
        "token": TOKEN,
    }
    review = browser.post(f"{host}/", form)
    assert review.status_code == 200, (host, review.status_code)
    carried = ("action", "cluster", "cids", "from_csv", "idempotency_key", "seal")
    return {
        "csrfmiddlewaretoken": csrf,
        "step": "confirm",
        **{name: hidden(review, name) for name in carried},
    }


def alerts(page: requests.Response) -> list[str]:
    """The errors a page shows, as text."""
    found = re.findall(r'role="alert">(.*?)</(?:p|div)>', page.text, re.DOTALL)
    return [re.sub(r"<[^>]+>", "", text).strip() for text in found]


def submit(browser: Browser, host: str, form: dict[str, str]) -> str:
    """POST the form; return the id of the job it redirects to."""
    response = browser.post(f"{host}/", form)
    location = response.headers.get("Location", "")
    assert response.status_code == 302, (host, response.status_code, alerts(response))
    match = JOB_PATH.match(location)
    assert match, location
    return match[1]


def double_click(browser: Browser, hosts: list[str], form: dict[str, str]) -> list[str]:
    """The same form POSTed to each host at the same moment; the job ids they redirect to."""
    twin = browser.twin()
    barrier = threading.Barrier(len(hosts), timeout=HTTP_SECONDS)
    job_ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def click(client: Browser, host: str) -> None:
        try:
            barrier.wait()
            job_ids[host] = submit(client, host, form)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=click, args=(client, host))
        for client, host in zip([browser, twin], hosts, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [job_ids[host] for host in hosts]


def operate(
    n: int, hosts: list[str], cluster: Cluster, username: str, statuses: list[tuple[str, int]]
) -> list[Submission]:
    """Client n: signs in on its own host and submits SUBMITS_PER_CLIENT Set Actions there,
    the first also to the other host at the same moment, the last also to the other host
    right after."""
    own, other = hosts[n % WEB_HOSTS], hosts[(n + 1) % WEB_HOSTS]
    browser = Browser(statuses)
    sign_in(browser, own, username)
    submissions = []
    for i in range(SUBMITS_PER_CLIENT):
        cid = f"M{n}-{i}"
        form = fill_in(browser, own, cluster, cid)
        submission = Submission(key=form["idempotency_key"], cid=cid)
        if i == 0:
            submission.job_ids += double_click(browser, [own, other], form)
        else:
            submission.job_ids.append(submit(browser, own, form))
        if i == SUBMITS_PER_CLIENT - 1:
            submission.job_ids.append(submit(browser, other, form))
        submissions.append(submission)
    return submissions


def test_two_web_hosts_and_four_workers_run_each_submit_once_within_the_cluster_limit(
    machines: Machines, operator, limited: Cluster, busy_cluster: FakeCluster
):
    operator.set_password(PASSWORD)
    operator.save()
    statuses: list[tuple[str, int]] = []

    results, errors = run_concurrently(
        lambda n: operate(n, machines.web, limited, operator.username, statuses)
    )

    assert errors == []
    submissions: list[Submission] = [s for client in results for s in client]
    assert len({s.key for s in submissions}) == THREADS * SUBMITS_PER_CLIENT
    wait_until(lambda: not Job.objects.in_progress().exists(), timeout=JOBS_SECONDS)
    # Every process is still up: none crashed under the load.
    assert [p.args for p in machines.processes if p.poll() is not None] == []

    jobs = {job.idempotency_key: job for job in Job.objects.prefetch_related("customers")}
    # One job per form, whichever host or hosts it was posted to.
    assert Job.objects.count() == len(submissions)
    assert sorted(jobs) == sorted(s.key for s in submissions)
    for submission in submissions:
        job = jobs[submission.key]
        assert set(submission.job_ids) == {str(job.pk)}
        assert [customer.cid for customer in job.customers.all()] == [submission.cid]
    assert {str(job.pk): job.status for job in jobs.values()} == {
        str(job.pk): "SUCCESS" for job in jobs.values()
    }
    assert busy_cluster.counts() == {str(job.pk): 1 for job in jobs.values()}
    # At the limit, never beyond: the load was concurrent, and the limit held.
    assert busy_cluster.concurrency()["max_in_flight"] == LIMIT
    assert [(request, status) for request, status in statuses if status >= 500] == []
    assert not InFlightCall.objects.exists()
    assert not InFlightCustomer.objects.exists()

    # Each host's processes answer the scrape alike, counting what every worker did.
    scrapes = {scrape(url) for url in machines.web for _ in range(4)}
    assert len(scrapes) == 1
    [text] = scrapes
    jobs_ended = f'tmsdash_jobs_total{{status="SUCCESS",cluster="{limited.name}",action='
    assert sum(
        int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(jobs_ended)
    ) == len(jobs)
    assert f"tmsdash_workers_alive {WORKERS}" in text.splitlines()


def scrape(url: str) -> str:
    """The metrics as one of a host's processes answers them."""
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=HTTP_SECONDS
    )
    assert response.status_code == 200
    return response.text
