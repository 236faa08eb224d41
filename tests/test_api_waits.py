"""The bounds on long polls (`GET /api/v1/jobs/{id}?wait=S`, api.waits): per token and per web
process, refused beyond them with a 429 problem and Retry-After, each slot given back however
its wait ends; and, on the production server, pages and /healthz still answered while clients
wait as much as they may."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from api.waits import WaitsBusy, wait_slot
from jobs.models import Job
from jobs.services import job_cancel
from ops.models import WorkerHeartbeat
from tests.admin_helpers import make_job
from tests.helpers import database_url, make_user, wait_until
from tests.live_web import web_server

# Far longer than anything the tests wait for: a wait that answers ended for another reason.
WAIT = 60
# Generous: a page or /healthz waiting for a thread would wait for a whole WAIT.
ANSWER_SECONDS = 10


def refused(token_id: int) -> bool:
    """Whether one more wait of this token would be refused in this process now."""
    try:
        with wait_slot(token_id=token_id, seconds=1):
            return False
    except WaitsBusy:
        return True


def test_a_slot_is_given_back_when_the_wait_raises(settings):
    settings.TMS_API_WAITS_PER_TOKEN = 1
    with pytest.raises(ConnectionError), wait_slot(token_id=1, seconds=WAIT):
        raise ConnectionError("the database went away")
    assert not refused(1)


def test_beyond_either_bound_a_wait_is_refused_until_a_slot_frees(settings):
    settings.TMS_API_WAITS_PER_TOKEN = 2
    settings.TMS_API_WAITS_PER_PROCESS = 3
    with wait_slot(token_id=1, seconds=40), wait_slot(token_id=1, seconds=50):
        with pytest.raises(WaitsBusy) as by_token, wait_slot(token_id=1, seconds=5):
            pass
        assert "TMS_API_WAITS_PER_TOKEN" in str(by_token.value.detail)
        # Retry-After: when the token's first wait ends at the latest.
        assert 30 < by_token.value.wait <= 40
        with (
            wait_slot(token_id=2, seconds=20),
            pytest.raises(WaitsBusy) as by_process,
            wait_slot(token_id=2, seconds=5),
        ):
            pass
    assert "TMS_API_WAITS_PER_PROCESS" in str(by_process.value.detail)
    assert 10 < by_process.value.wait <= 20
    assert not refused(1) and not refused(2)


def test_a_wait_beyond_the_bound_is_a_429_problem_but_a_plain_read_is_answered(
    client, operator, settings
):
    settings.TMS_API_WAITS_PER_TOKEN = 1
    job = make_job(user=operator, status="IN_PROGRESS")
    ended = make_job(user=operator, status="SUCCESS")
    new = token_create(user=operator, name="script", read_only=True)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {new.secret}"}
    with wait_slot(token_id=new.token.pk, seconds=30):
        response = client.get(f"/api/v1/jobs/{job.pk}", {"wait": WAIT}, **auth)
        assert response.status_code == 429
        assert response["Content-Type"] == "application/problem+json"
        assert 1 <= int(response["Retry-After"]) <= 30
        body = json.loads(response.content)
        assert body["status"] == 429 and "TMS_API_WAITS_PER_TOKEN" in body["detail"]
        assert "without ?wait" in body["detail"]
        # Without a wait, or on a job that has ended (answered at once), no slot is needed.
        assert client.get(f"/api/v1/jobs/{job.pk}", **auth).status_code == 200
        response = client.get(f"/api/v1/jobs/{ended.pk}", {"wait": WAIT}, **auth)
        assert response.status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_job_deleted_while_waited_on_answers_404_and_gives_back_the_slot(settings):
    settings.TMS_API_WAITS_PER_TOKEN = 1
    operator = make_user("op1", "Operators")
    job = make_job(user=operator, status="IN_PROGRESS")
    new = token_create(user=operator, name="script", read_only=True)
    answered: list[int] = []

    def wait() -> None:
        try:
            response = Client().get(
                f"/api/v1/jobs/{job.pk}",
                {"wait": WAIT},
                HTTP_AUTHORIZATION=f"Bearer {new.secret}",
            )
            answered.append(response.status_code)
        finally:
            connections.close_all()

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        wait_until(lambda: refused(new.token.pk))
        Job.objects.filter(pk=job.pk).delete()
        wait_until(lambda: answered == [404], timeout=WAIT / 2)
    finally:
        waiter.join()
    assert not refused(new.token.pk)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The production web server (gunicorn as tmsdash/gunicorn.py configures it) on the
    tests' database: one process of 4 threads that admits 3 waits, 2 of them of one token."""
    with web_server(
        database_url(),
        tmp_path / "web.log",
        TMS_WEB_THREADS="4",
        TMS_API_WAITS_PER_TOKEN="2",
        TMS_API_WAITS_PER_PROCESS="3",
    ) as url:
        yield url


class Waits:
    """Waits sent at once, each in its own thread; answers are kept as they come."""

    def __init__(self, url: str, secret: str, count: int) -> None:
        self.answers: list[requests.Response] = []
        self.threads = [
            threading.Thread(target=self._get, args=(url, secret)) for _ in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _get(self, url: str, secret: str) -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        response = requests.get(url, params={"wait": WAIT}, headers=headers, timeout=2 * WAIT)
        self.answers.append(response)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


def idle_in_transaction() -> int:
    """PostgreSQL connections to the tests' database other than this one that sit in an open
    transaction (SQLite has no such view: there, a poll inside one transaction would keep
    reading the snapshot it began with and never see the job end)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_waits_beyond_the_bounds_are_refused_and_pages_still_answer(server):
    operator = make_user("op1", "Operators")
    # Queued and no worker running: it stays IN_PROGRESS until it is cancelled. A worker's and
    # housekeeping's heartbeats of a moment ago, so that /healthz reports this host healthy.
    job = make_job(user=operator, status="IN_PROGRESS")
    now = timezone.now()
    for role in WorkerHeartbeat.Role.values:
        baker.make(WorkerHeartbeat, role=role, started_at=now, last_seen=now)
    first = token_create(user=operator, name="poller", read_only=True).secret
    second = token_create(user=operator, name="other", read_only=True).secret
    job_url = f"{server}/api/v1/jobs/{job.pk}"

    # As many waits as the server has threads: without the bounds they would take them all.
    mine = Waits(job_url, first, 4)
    wait_until(lambda: len(mine.answers) == 2, timeout=ANSWER_SECONDS)
    others = Waits(job_url, second, 2)
    wait_until(lambda: len(others.answers) == 1, timeout=ANSWER_SECONDS)

    refusals = [(r, "TOKEN") for r in mine.answers] + [(r, "PROCESS") for r in others.answers]
    for response, bound in refusals:
        assert response.status_code == 429
        assert response.headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(response.headers["Retry-After"]) <= WAIT
        assert f"TMS_API_WAITS_PER_{bound}" in response.json()["detail"]

    # The fourth thread is free: the pages and /healthz answer long before any wait ends.
    health = requests.get(f"{server}/healthz", timeout=ANSWER_SECONDS)
    assert (health.status_code, health.json()["queued"]) == (200, 1)
    page = requests.get(f"{server}/accounts/login/", timeout=ANSWER_SECONDS)
    assert page.status_code == 200
    assert len(mine.answers) == 2 and len(others.answers) == 1
    assert idle_in_transaction() == 0

    # The waits hold no lock: the job is cancelled while they poll, and they answer with it.
    assert job_cancel(job_ids=[job.pk], user=operator).cancelled == [job.pk]
    wait_until(lambda: len(mine.answers) + len(others.answers) == 6, timeout=WAIT / 2)
    mine.join()
    others.join()
    ended = [r for r in mine.answers + others.answers if r.status_code == 200]
    assert [r.json()["status"] for r in ended] == ["CANCELLED"] * 3
