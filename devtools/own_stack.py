"""A dashboard of a fault test's (or a benchmark's) own: its database (a SQLite file on a disk
the test fills, a PostgreSQL the test restarts), migrated and seeded by real `manage.py`
processes, and the processes the test starts on it. The tests' own database is never touched,
so a fault test runs the same whichever engine the suite runs on.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
from django.conf import settings

OPERATOR = "op1"
CLUSTER = "eu1"

# Run by `manage.py shell`: the operator, the cluster, and an API token, whose secret it prints.
_SEED = """
from django.contrib.auth.models import Group, User
from api.tokens import token_create
from jobs.clusters import cluster_save
from jobs.models import Cluster
user = User.objects.create_user(username={operator!r})
user.groups.add(Group.objects.get(name="Operators"))
cluster_save(cluster=Cluster(name={cluster!r}, base_url={url!r}, timeout_seconds=60))
print(token_create(user=user, name="fault test").secret)
"""


class OwnStack:
    """`busy_timeout`: the seconds SQLite's writers wait; `cluster_token`: the operator's token
    for the cluster, as `set_action` reads it (TMS_TOKEN)."""

    def __init__(
        self, database_url: str, *, logs: Path, cluster_token: str, busy_timeout: int = 30
    ) -> None:
        self.database_url = database_url
        self.logs = logs
        self.cluster_token = cluster_token
        self.busy_timeout = busy_timeout
        self.processes: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
            "ENV_FILE": "/dev/null",
            "TMS_DEVTOOLS": "true",
            "TMS_SQLITE_BUSY_TIMEOUT": str(self.busy_timeout),
            "TMS_TOKEN": self.cluster_token,
        }

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def set_up(self, cluster_url: str) -> str:
        """Migrate, seed; the operator's API token."""
        code = _SEED.format(operator=OPERATOR, cluster=CLUSTER, url=cluster_url)
        for step in (["migrate", "--no-input"], ["shell", "-c", code]):
            done = self.manage(*step, timeout=300)
            if done.returncode:
                raise RuntimeError(f"manage.py {step[0]} failed:\n{done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def submit(self, cids: str) -> subprocess.CompletedProcess:
        """`manage.py set_action` for the operator: prints the job's id, or refuses."""
        return self.manage(
            "set_action", "--user", OPERATOR, "--cluster", CLUSTER, "--action", "1", "--cids", cids
        )

    def start(self, name: str, *command: str, env: dict[str, str] | None = None):
        """A long-running `manage.py` process; its output goes to logs/NAME.log."""
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *command],
            cwd=settings.BASE_DIR,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> list[int]:
        """Stop every process started, gracefully, then by force; their exit statuses."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=60))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the stack's database directly, on a connection of the test's own."""
        if self.database_url.startswith("sqlite:"):
            path = self.database_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://")) as db:
            return db.execute(sql, params).fetchall()

    def jobs(self) -> dict[str, str]:
        """Every job's status, by id (as the database writes it, without dashes on SQLite)."""
        return {str(pk).replace("-", ""): status for pk, status in self.rows(JOBS)}


JOBS = "SELECT id, status FROM jobs_job"


@contextlib.contextmanager
def own_stack(database_url: str, logs: Path, **options) -> Iterator[OwnStack]:
    stack = OwnStack(database_url, logs=logs, **options)
    try:
        yield stack
    finally:
        stack.stop()
