"""purge_jobs while the dashboard works: a real web server (gunicorn) takes Set Actions and
lists jobs, and a real worker runs them against the fake cluster, all through the purge; no
request fails and nothing goes that should stay."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from api.tokens import token_create
from jobs.models import Job, JobCustomer
from jobs.services import count_jobs_added, ended_job, jobs_purge
from tests.helpers import TOKEN, database_url, make_user, worker
from tests.live_web import HTTP_SECONDS, web_server
from tests.test_purge_jobs import OLD, make_job

OLD_JOBS = 1500


def old_history(operator, cluster) -> list[Job]:
    """OLD_JOBS jobs that ended 40 days ago, two customers each, counted per hour."""
    jobs = Job.objects.bulk_create(
        Job(
            user=operator,
            cluster=cluster,
            action=Job.Action.T_ENABLE,
            cluster_url=cluster.base_url,
            status="FAILED" if n % 3 else "SUCCESS",
            created_at=OLD - dt.timedelta(minutes=n),
            started_at=OLD - dt.timedelta(minutes=n),
            finished_at=OLD - dt.timedelta(minutes=n) + dt.timedelta(seconds=2),
            customer_count=2,
        )
        for n in range(OLD_JOBS)
    )
    JobCustomer.objects.bulk_create(
        JobCustomer(job=job, cid=f"OLD-{n}-{c}") for n, job in enumerate(jobs) for c in (1, 2)
    )
    count_jobs_added(ended_job(job) for job in jobs)
    return jobs


class Load:
    """Threads that submit a Set Action and list the jobs, again and again, until stopped;
    every answer is kept."""

    def __init__(self, url: str, secret: str, cluster: str, threads: int = 3) -> None:
        self.answers: list[tuple[str, int]] = []
        self.submitted: list[str] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(url, secret, cluster, n))
            for n in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, url: str, secret: str, cluster: str, n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secret}"
        i = 0
        while not self.stopping.is_set():
            i += 1
            body = {"action": "T-Enable", "cluster": cluster, "cids": [f"L{n}-{i}"]}
            created = session.post(
                f"{url}/api/v1/set-actions",
                json={**body, "cluster_token": TOKEN},
                headers={"Idempotency-Key": f"load-{n}-{i}"},
                timeout=HTTP_SECONDS,
            )
            self.answers.append(("submit", created.status_code))
            if created.status_code == 201:
                self.submitted += [job["id"] for job in created.json()["jobs"]]
            listed = session.get(f"{url}/api/v1/jobs", timeout=HTTP_SECONDS)
            self.answers.append(("list", listed.status_code))

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_purge_under_load_fails_no_request_and_keeps_what_must_stay(
    cluster, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("jobs.services.retention.BATCH", 100)
    operator = make_user("op1", "Operators")
    secret = token_create(user=operator, name="load").secret
    old = {job.pk for job in old_history(operator, cluster)}
    stay = {
        make_job(operator, "IN_PROGRESS").pk,
        make_job(operator, "PENDING_APPROVAL").pk,
        make_job(operator, "IN_PROGRESS", waiting_for="freeze", waiting_since=OLD).pk,
    }
    retried = make_job(operator, "FAILED")
    stay |= {
        retried.pk,
        make_job(operator, "IN_PROGRESS", retry_of=retried, ended=timezone.now()).pk,
    }
    running = worker()
    try:
        with web_server(
            database_url(),
            tmp_path / "web.log",
            TMS_API_SUBMITS_PER_MINUTE="100000",
            TMS_API_READS_PER_MINUTE="100000",
        ) as url:
            load = Load(url, secret, cluster.name)
            try:
                report = jobs_purge(
                    cutoff=timezone.now() - dt.timedelta(days=30),
                    archive=tmp_path / "a.jsonl.gz",
                )
            finally:
                load.stop()
    finally:
        running.send_signal(signal.SIGTERM)
        output, _ = running.communicate(timeout=60)

    assert load.submitted, "no Set Action went through during the purge"
    failed = [answer for answer in load.answers if answer[1] not in (200, 201)]
    assert failed == []
    assert (report.archived, report.purged) == (OLD_JOBS, OLD_JOBS)
    left = set(Job.objects.values_list("pk", flat=True))
    assert left.isdisjoint(old)
    assert stay <= left
    assert {str(pk) for pk in left} >= set(load.submitted)
    # The worker ran Set Actions meanwhile.
    assert Job.objects.filter(status="SUCCESS").exists(), output
