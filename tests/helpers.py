from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection, connections
from django.urls import reverse

from devtools.ports import free_port as free_port

ROOT = Path(__file__).resolve().parent.parent
# A token the tests search for everywhere it must not be.
TOKEN = "tok-7Q2x-must-never-be-stored-or-logged"


def row_counts() -> dict[str, int]:
    """Rows in every table, to prove that something wrote nothing."""
    return {model._meta.label: model._base_manager.count() for model in apps.get_models()}


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for something another thread or process makes true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def database_url() -> str:
    """The URL of the database the tests run on, for processes the tests start."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def worker(*args: str) -> subprocess.Popen:
    """A real `manage.py run_worker` process on the tests' database, one call at a time
    unless `args` say otherwise, looking at the queue on its own every 50 ms."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_worker",
            "--interval",
            "0.05",
            "--concurrency",
            "1",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def make_user(username: str, group: str | None = None, **fields) -> User:
    """A user without a password (hashing one is slow), in `group` when given."""
    user = User.objects.create_user(username=username, **fields)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


THREADS = 8


def run_concurrently(work: Callable[[int], object]) -> tuple[list, list[BaseException]]:
    """Run work(0) .. work(THREADS - 1) in threads released at the same moment.

    Returns what the calls returned and what they raised. Each thread closes its database
    connections, as a request or a worker would.
    """
    barrier = threading.Barrier(THREADS)
    results: list = []
    errors: list[BaseException] = []

    def target(n: int) -> None:
        try:
            barrier.wait()
            results.append(work(n))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def database_text() -> str:
    """Every row of every table, as text: where a leaked secret would show up."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def answers(url: str) -> bool:
    """Whether a GET of this loopback URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return response.status == 200
    except OSError:
        return False


def confirm_review(client, review, **extra):
    """Confirm the review of a Set Action as the operator's browser would: post the review
    page's confirm form, with its hidden fields as the page holds them."""
    assert "jobs/set_action_review.html" in [t.name for t in review.templates], review
    confirm = review.context["confirm"]
    fields = {name: confirm[name].value() for name in confirm.fields}
    return client.post(reverse("set_action"), {**fields, "step": "confirm"}, **extra)


def retry_review_fields(review) -> dict:
    """The review page's confirm form of a retry, as the operator's browser posts it."""
    assert "jobs/retry_review.html" in [t.name for t in review.templates], review
    confirm = review.context["confirm"]
    return {**{name: confirm[name].value() for name in confirm.fields}, "step": "confirm"}


def confirm_retry(client, url: str, data: dict, **extra):
    """Send a retry form to `url` and confirm its review, as the operator's browser would."""
    review = client.post(url, data, **extra)
    return client.post(url, retry_review_fields(review), **extra)
