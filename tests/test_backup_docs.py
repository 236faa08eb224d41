"""docs/backup.md, tested as written: every `sh` block on the page is run by bash, with the
page's example names (the database file, the backup directory, PostgreSQL's user and
databases) replaced by a throwaway database's, and what comes back holds what was backed up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from tests.helpers import ROOT

PAGE = ROOT / "docs" / "backup.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Run by `manage.py shell`: three jobs, their ids.
JOBS = "from model_bakery import baker; print(*(baker.make('jobs.Job').pk.hex for _ in range(3)))"


def blocks(section: str) -> list[str]:
    """The `sh` blocks under the `## engine` / `### step` heading named `section`."""
    engine, step = section.split(" / ")
    text = PAGE.read_text().split(f"\n## {engine}\n", 1)[1].split("\n## ", 1)[0]
    text = text.split(f"\n### {step}\n", 1)[1].split("\n### ", 1)[0]
    found = BLOCK.findall(text)
    assert found, f"no sh block under {section}"
    return found


def run(script: str, names: dict[str, str], database_url: str, password: str = "") -> str:
    for example, name in names.items():
        script = script.replace(example, name)
    done = subprocess.run(
        [shutil.which("bash"), "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "ENV_FILE": "/dev/null",
            **({"PGPASSWORD": password} if password else {}),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def manage(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "ENV_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sqlite_jobs(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT id FROM jobs_job")}


def test_the_sqlite_steps_back_up_and_restore(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "backups").mkdir()
    url = f"sqlite:///{tmp_path}/var/db.sqlite3"
    manage(url, "migrate", "--no-input")
    backed_up = set(manage(url, "shell", "--no-imports", "-c", JOBS).split())
    names = {"/var/backups/tmsdash": f"{tmp_path}/backups", " var/": f" {tmp_path}/var/"}

    output = run(*blocks("SQLite / Backing up"), names, url)
    assert "integrity_check ok" in output
    later = set(manage(url, "shell", "--no-imports", "-c", JOBS).split())
    assert sqlite_jobs(tmp_path / "var" / "db.sqlite3") == backed_up | later

    for block in blocks("SQLite / Restoring"):
        run(block, names, url)
    assert sqlite_jobs(tmp_path / "var" / "db.sqlite3") == backed_up
    assert sqlite_jobs(tmp_path / "var" / "before-restore" / "db.sqlite3") == backed_up | later


def test_the_postgresql_commands_are_the_ones_backup_prints():
    printed = manage(
        "postgres://tmsdash:pw@127.0.0.1:5432/tmsdash",
        "backup",
        "--to",
        "/var/backups/tmsdash/tmsdash.dump",
    )
    commands = [*blocks("PostgreSQL / Backing up"), blocks("PostgreSQL / Restoring")[0]]
    for command in "".join(commands).splitlines():
        assert f"  {command}\n" in printed


def major(version: str) -> int:
    return int(re.search(r"(\d+)\.\d+", version).group(1))


@pytest.fixture
def scratch_databases():
    """Two PostgreSQL databases' names (the first created empty) on the tests' server, and
    its `SELECT version()`; both dropped afterwards."""
    settings = connection.settings_dict
    names = [f"{settings['NAME']}_docs", f"{settings['NAME']}_docs_restored"]
    server = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )

    def drop() -> None:
        for name in names:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    drop()
    server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names[0])))
    try:
        yield names, server.execute("SELECT version()").fetchone()[0]
    finally:
        drop()
        server.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL steps")
def test_the_postgresql_steps_back_up_and_restore(scratch_databases, tmp_path):
    settings = connection.settings_dict
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is missing: apt-get install postgresql-client-NN (.ci/run does)"
    client = subprocess.run([pg_dump, "--version"], capture_output=True, text=True).stdout
    (source, restored), server = scratch_databases
    assert major(client) == major(server), f"{client} for {server}: install its client"

    host, port, user = settings["HOST"], str(settings["PORT"] or 5432), settings["USER"]
    auth = f"{user}:{settings['PASSWORD']}" if settings["PASSWORD"] else user
    source_url = f"postgres://{auth}@{host}:{port}/{source}"
    restored_url = f"postgres://{auth}@{host}:{port}/{restored}"
    manage(source_url, "migrate", "--no-input")
    backed_up = set(manage(source_url, "shell", "--no-imports", "-c", JOBS).split())
    (tmp_path / "backups").mkdir()
    names = {
        "/var/backups/tmsdash": f"{tmp_path}/backups",
        "--host 127.0.0.1 --port 5432 --username tmsdash": (
            f"--host {host} --port {port} --username {user}"
        ),
        "tmsdash_restored": restored,
        "--dbname tmsdash ": f"--dbname {source} ",
    }
    password = settings["PASSWORD"]
    run(*blocks("PostgreSQL / Backing up"), names, source_url, password)
    later = set(manage(source_url, "shell", "--no-imports", "-c", JOBS).split())
    restore, check = blocks("PostgreSQL / Restoring")
    run(restore, names, source_url, password)
    run(check, names, restored_url)

    with psycopg.connect(restored_url.replace("postgres://", "postgresql://")) as db:
        copied = {row[0].hex for row in db.execute("SELECT id FROM jobs_job")}
    assert copied == backed_up
    assert not later & copied
