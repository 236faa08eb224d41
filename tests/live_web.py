"""A real web server (gunicorn, as in production) on a loopback port, for tests of what its
clients see: a browser signing in and submitting the Set Action form, a script calling the API."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.helpers import ROOT, TOKEN, answers, free_port, wait_until

START_SECONDS = 60
HTTP_SECONDS = 30


@contextlib.contextmanager
def web_server(database_url: str, log: Path, **env: str) -> Iterator[str]:
    """gunicorn on `database_url` with these extra settings; yields its base URL. Its output
    goes to `log`, printed when the test fails."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--config", "python:tmsdash.gunicorn"]
    command += ["--bind", f"127.0.0.1:{port}"]
    environment = {**os.environ, "DATABASE_URL": database_url, "TMS_WEB_PROCESSES": "1", **env}
    with log.open("w") as output:
        server = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/accounts/login/"), timeout=START_SECONDS)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=HTTP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(f"--- {log.name}\n{log.read_text()[-5000:]}")


def hidden(page: requests.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page.text)
    assert match, f"no {name} in the page {page.url} ({page.status_code})"
    return match[1]


def sign_in_form(browser: requests.Session, url: str, username: str, password: str) -> dict:
    """The sign-in form filled in, ready to be posted to {url}/accounts/login/."""
    page = browser.get(f"{url}/accounts/login/", timeout=HTTP_SECONDS)
    csrf = hidden(page, "csrfmiddlewaretoken")
    return {"username": username, "password": password, "csrfmiddlewaretoken": csrf}


def sign_in(browser: requests.Session, url: str, username: str, password: str) -> None:
    form = sign_in_form(browser, url, username, password)
    response = browser.post(
        f"{url}/accounts/login/", data=form, allow_redirects=False, timeout=HTTP_SECONDS
    )
    assert (response.status_code, response.headers.get("Location")) == (302, "/")


def reviewed_form(browser: requests.Session, url: str, cluster_id: int, cid: str) -> dict:
    """The Set Action form filled in and reviewed: the review page's confirm form, which a
    POST to {url}/ submits."""
    page = browser.get(f"{url}/", timeout=HTTP_SECONDS)
    csrf = hidden(page, "csrfmiddlewaretoken")
    form = {
        "csrfmiddlewaretoken": csrf,
        "idempotency_key": hidden(page, "idempotency_key"),
        "action": "1",
        "cluster": str(cluster_id),
        "cids": cid,
        "token": TOKEN,
    }
    review = browser.post(f"{url}/", data=form, timeout=HTTP_SECONDS)
    assert review.status_code == 200, review.status_code
    carried = ("action", "cluster", "cids", "from_csv", "idempotency_key", "seal")
    return {
        "csrfmiddlewaretoken": csrf,
        "step": "confirm",
        **{name: hidden(review, name) for name in carried},
    }
