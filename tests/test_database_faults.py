"""While the database refuses work, pages and the API answer 503 with Retry-After (never 500),
write nothing, and serve again once it is back. Each engine meets its own real fault: SQLite a
file another process holds locked beyond the busy timeout, PostgreSQL a server that stops."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection
from django.test import Client

from api.tokens import token_create
from devtools.own_postgres import OwnPostgres
from ops.heartbeats import Role, heartbeat_start
from tests.db_locks import postgres_lock, sqlite_write_lock
from tests.helpers import ROOT, TOKEN, database_url, row_counts, wait_until
from tests.live_web import HTTP_SECONDS, reviewed_form, sign_in, sign_in_form, web_server
from tmsdash.faults import RETRY_AFTER_SECONDS, UNAVAILABLE
from tmsdash.security import PERMISSIONS_POLICY

PASSWORD = "faults-Test-pass-4"
JOB_PAGE = re.compile(r"^/jobs/[0-9a-f-]{36}/$")


def api_submit(url: str, secret: str, cluster: str, cid: str) -> requests.Response:
    body = {"action": "T-Enable", "cluster": cluster, "cids": [cid], "cluster_token": TOKEN}
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": f"key-{cid}"}
    return requests.post(
        f"{url}/api/v1/set-actions", json=body, headers=headers, timeout=HTTP_SECONDS
    )


def post(browser: requests.Session, url: str, form: dict) -> requests.Response:
    return browser.post(url, data=form, allow_redirects=False, timeout=HTTP_SECONDS)


def assert_unavailable_page(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>Try again in a moment</h1>" in response.text
    assert response.headers["Permissions-Policy"] == PERMISSIONS_POLICY


def assert_unavailable_problem(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": UNAVAILABLE,
    }


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's fault; PostgreSQL's is a server that stops"
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_writes_are_503_while_another_process_holds_the_sqlite_file_and_succeed_after(
    tmp_path: Path, operator, cluster
):
    operator.set_password(PASSWORD)
    operator.save()
    secret = token_create(user=operator, name="pipeline").secret
    heartbeat_start("worker-a")
    heartbeat_start("housekeeping-a", role=Role.HOUSEKEEPING)
    # A second's busy timeout instead of 30: the same fault, sooner.
    with web_server(database_url(), tmp_path / "web.log", TMS_SQLITE_BUSY_TIMEOUT="1") as url:
        browser = requests.Session()
        sign_in(browser, url, "op1", PASSWORD)
        confirm = reviewed_form(browser, url, cluster.pk, "C1")
        newcomer = requests.Session()
        signing_in = sign_in_form(newcomer, url, "op1", PASSWORD)
        before = row_counts()

        with sqlite_write_lock(connection.settings_dict["NAME"]):
            # Readers go on beside a writer (WAL): a page that only reads is served.
            assert browser.get(f"{url}/jobs/", timeout=HTTP_SECONDS).status_code == 200
            assert_unavailable_page(post(browser, f"{url}/", confirm))
            assert_unavailable_page(post(newcomer, f"{url}/accounts/login/", signing_in))
            assert_unavailable_problem(api_submit(url, secret, cluster.name, "C2"))
            health = requests.get(f"{url}/healthz", timeout=HTTP_SECONDS)
            assert (health.status_code, health.json()["database"]) == (503, "unwritable")
            assert row_counts() == before

        # The lock released, the very same requests succeed.
        submitted = post(browser, f"{url}/", confirm)
        assert submitted.status_code == 302
        assert JOB_PAGE.match(submitted.headers["Location"])
        signed_in = post(newcomer, f"{url}/accounts/login/", signing_in)
        assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/")
        assert api_submit(url, secret, cluster.name, "C2").status_code == 201
        assert requests.get(f"{url}/healthz", timeout=HTTP_SECONDS).status_code == 200
    log = (tmp_path / "web.log").read_text()
    assert "Traceback" not in log
    assert log.count("database fault: ") == 3
    assert TOKEN not in log and secret not in log and PASSWORD not in log


SETUP = """
from django.contrib.auth.models import Group, User
from api.tokens import token_create
from jobs.models import Cluster
from ops.heartbeats import Role, heartbeat_start
user = User.objects.create_user("op1", password=PASSWORD)
user.groups.add(Group.objects.get(name="Operators"))
cluster = Cluster.objects.create(name="eu1", base_url=CLUSTER_URL, timeout_seconds=2)
heartbeat_start("worker-a")
heartbeat_start("housekeeping-a", role=Role.HOUSEKEEPING)
print(cluster.pk, token_create(user=user, name="pipeline").secret)
"""


def manage(url: str, *args: str) -> str:
    """A manage.py command on the database at `url`; its output."""
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def table_rows(url: str) -> dict[str, int]:
    """Rows in every table of the database at `url`, read by a connection of the test's own."""
    with psycopg.connect(url) as db:
        tables = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        return {
            table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for (table,) in tables
        }


def beat_again(url: str) -> None:
    with psycopg.connect(url) as db:
        db.execute("UPDATE ops_workerheartbeat SET last_seen = now()")


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=HTTP_SECONDS).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's fault; SQLite's is a locked file"
)
def test_pages_and_the_api_are_503_while_postgresql_is_down_and_serve_again_once_it_is_back(
    tmp_path: Path, fake_cluster
):
    with OwnPostgres() as server:
        manage(server.url, "migrate", "--no-input", "--verbosity", "0")
        setup = SETUP.replace("PASSWORD", repr(PASSWORD)).replace(
            "CLUSTER_URL", repr(fake_cluster.url)
        )
        cluster_id, secret = manage(server.url, "shell", "--verbosity", "0", "-c", setup).split()
        with web_server(server.url, tmp_path / "web.log") as url:
            browser = requests.Session()
            sign_in(browser, url, "op1", PASSWORD)
            confirm = reviewed_form(browser, url, int(cluster_id), "C1")
            newcomer = requests.Session()
            signing_in = sign_in_form(newcomer, url, "op1", PASSWORD)
            assert healthy(url)
            before = table_rows(server.url)

            server.stop()
            assert_unavailable_page(browser.get(f"{url}/jobs/", timeout=HTTP_SECONDS))
            assert_unavailable_page(post(browser, f"{url}/", confirm))
            assert_unavailable_page(post(newcomer, f"{url}/accounts/login/", signing_in))
            assert_unavailable_problem(api_submit(url, secret, "eu1", "C2"))
            health = requests.get(f"{url}/healthz", timeout=HTTP_SECONDS)
            assert (health.status_code, health.json()["database"]) == (503, "unreachable")

            server.start()
            assert table_rows(server.url) == before
            beat_again(server.url)
            wait_until(lambda: healthy(url), timeout=30)
            submitted = post(browser, f"{url}/", confirm)
            assert submitted.status_code == 302
            assert JOB_PAGE.match(submitted.headers["Location"])
            signed_in = post(newcomer, f"{url}/accounts/login/", signing_in)
            assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/")
            assert api_submit(url, secret, "eu1", "C2").status_code == 201
            # A restart ends every session the web server had: its next requests open new ones.
            server.restart()
            assert browser.get(f"{url}/jobs/", timeout=HTTP_SECONDS).status_code == 200
            assert healthy(url)
    log = (tmp_path / "web.log").read_text()
    assert "Traceback" not in log
    assert log.count("database fault: ") == 4
    assert TOKEN not in log and secret not in log and PASSWORD not in log


@contextlib.contextmanager
def sessions_written_by_another(monkeypatch) -> Iterator[None]:
    """The sessions table readable but not writable: another connection holds the SQLite file's
    write lock, or PostgreSQL's sessions table in EXCLUSIVE mode (reads pass, writes wait). The
    request's wait for the lock is a second instead of the settings' 30 s (or unbounded)."""
    options = connection.settings_dict["OPTIONS"]
    if connection.vendor == "sqlite":
        monkeypatch.setitem(options, "timeout", 1)
        lock = sqlite_write_lock(connection.settings_dict["NAME"])
    else:
        monkeypatch.setitem(options, "options", "-c lock_timeout=1000")
        lock = postgres_lock(database_url(), "django_session", "EXCLUSIVE")
    connection.close()
    try:
        with lock:
            yield
    finally:
        connection.close()


@pytest.mark.urls("tests.session_urls")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_fault_in_a_middleware_after_the_view_is_503_too(operator, monkeypatch, caplog):
    browser = Client(raise_request_exception=False)
    browser.force_login(operator)
    before = row_counts()
    with sessions_written_by_another(monkeypatch):
        response = browser.get("/remember/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "<h1>Try again in a moment</h1>" in response.content.decode()
    assert row_counts() == before
    [fault] = [r for r in caplog.records if r.name == "tmsdash.faults"]
    assert fault.levelname == "WARNING"
    assert fault.getMessage().startswith("database fault: GET /remember/ answered 503: ")
    # Once the lock is gone, the same request goes through.
    assert browser.get("/remember/").status_code == 200
