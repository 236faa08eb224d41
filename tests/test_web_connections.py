"""The production web server's threads keep their database connections from one request to the
next (lib.connections.keep_connections, called by tmsdash.wsgi), where Django's default opened
one per request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from django.db import connection

from api.tokens import token_create
from tests.helpers import database_url, make_user
from tests.live_web import HTTP_SECONDS, web_server

THREADS = 2


def others_connected() -> int:
    """Connections to the tests' database other than this process's: PostgreSQL's sessions,
    or the processes that hold SQLite's file open."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]
    database = Path(connection.settings_dict["NAME"]).resolve()
    holders = 0
    for process in Path("/proc").iterdir():
        if not process.name.isdigit() or int(process.name) == os.getpid():
            continue
        try:
            files = {(process / "fd" / fd).readlink() for fd in os.listdir(process / "fd")}
        except OSError:
            continue
        holders += database in files
    return holders


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_web_servers_threads_keep_their_connections_between_requests(tmp_path):
    secret = token_create(user=make_user("op1", "Operators"), name="t").secret
    with web_server(database_url(), tmp_path / "web.log", TMS_WEB_THREADS=str(THREADS)) as url:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secret}"
        for _ in range(10):
            answer = session.get(f"{url}/api/v1/jobs", timeout=HTTP_SECONDS)
            assert answer.status_code == 200
        # Each request closed its connection at its end with CONN_MAX_AGE 0: none would be left.
        assert 1 <= others_connected() <= THREADS
