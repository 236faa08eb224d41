from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from django.apps import apps
from django.db import connection

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
