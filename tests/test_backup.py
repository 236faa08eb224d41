"""`manage.py backup`: on SQLite a consistent, checked copy made while another process
writes, and nothing half-written when it is refused or fails; on PostgreSQL the pg_dump and
pg_restore commands, and nothing written.

Each test has a SQLite database of its own (migrated once by a real `manage.py migrate`, then
copied), so the tests run the same whichever engine the suite runs on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ops.backup import BackupError, sqlite_backup
from tests.helpers import ROOT, wait_until
from tests.test_full_disk import small_disk

# Run by `manage.py shell`: commit one job at a time until the stop file appears, printing
# each job's id once its transaction has committed.
WRITER = """
import pathlib
from model_bakery import baker
from jobs.models import Job
stop = pathlib.Path({stop!r})
while not stop.exists():
    print(baker.make(Job).pk.hex, flush=True)
"""


def manage(database: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment(f"sqlite:///{database}"),
        capture_output=True,
        text=True,
        timeout=300,
    )


def environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
        "ENV_FILE": "/dev/null",
    }


def job_ids(database: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT id FROM jobs_job")}


def integrity(database: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute("PRAGMA integrity_check")]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    database = tmp_path_factory.mktemp("migrated") / "db.sqlite3"
    done = manage(database, "migrate", "--no-input")
    assert done.returncode == 0, done.stderr
    return database


@pytest.fixture
def database(migrated, tmp_path) -> Path:
    """A migrated SQLite database of the test's own."""
    path = tmp_path / "live" / "db.sqlite3"
    path.parent.mkdir()
    shutil.copy(migrated, path)
    return path


def test_a_backup_under_concurrent_writes_holds_every_job_committed_before_it(database, tmp_path):
    stop = tmp_path / "stop"
    log = (tmp_path / "writer.log").open("w+")
    writer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", WRITER.format(stop=str(stop))],
        cwd=ROOT,
        env=environment(f"sqlite:///{database}"),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )

    pool = ThreadPoolExecutor(max_workers=1)

    def committed() -> list[str]:
        return (tmp_path / "writer.log").read_text().split("\n")[:-1]

    try:
        wait_until(lambda: len(committed()) >= 20 or writer.poll() is not None, timeout=60)
        before = set(committed())
        # One page a step: the copy takes hundreds of steps, with the writer committing between.
        # A copy that restarted at each commit would not end while the writer runs.
        copying = pool.submit(sqlite_backup, source=database, to=tmp_path / "copy.sqlite3", pages=1)
        backup = copying.result(timeout=60)
        during = set(committed()) - before
    finally:
        stop.touch()
        writer.wait(timeout=60)
        pool.shutdown()
        log.close()
    assert writer.returncode == 0, (tmp_path / "writer.log").read_text()
    assert during, "the writer committed nothing while the backup ran"
    assert integrity(backup.path) == ["ok"]
    copied = job_ids(backup.path)
    assert before <= copied
    # The copy is the database as the backup began: what committed while it ran is not in it.
    assert copied < set(committed())
    assert backup.size == backup.path.stat().st_size


def test_the_command_copies_and_the_copy_restores(database, tmp_path):
    manage(database, "shell", "-c", "from model_bakery import baker; baker.make('jobs.Job')")
    target = tmp_path / "backups" / "db.sqlite3"
    target.parent.mkdir()

    done = manage(database, "backup", "--to", str(target))

    assert done.returncode == 0, done.stderr
    assert f"Backed up to {target}: " in done.stdout
    assert f"({target.stat().st_size} bytes) in " in done.stdout
    assert "integrity_check ok" in done.stdout
    assert os.listdir(target.parent) == ["db.sqlite3"]
    assert target.stat().st_mode & 0o077 == 0
    restored = tmp_path / "restored.sqlite3"
    shutil.copy(target, restored)
    check = manage(restored, "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert job_ids(restored) == job_ids(database) != set()


def test_an_existing_file_is_refused_without_force(database, tmp_path):
    target = tmp_path / "db.sqlite3"
    target.write_bytes(b"an older backup")

    refused = manage(database, "backup", "--to", str(target))

    assert refused.returncode == 1
    assert f"{target} exists; give --force to replace it" in refused.stderr
    assert target.read_bytes() == b"an older backup"
    assert sorted(os.listdir(tmp_path)) == ["db.sqlite3", "live"]

    forced = manage(database, "backup", "--to", str(target), "--force")

    assert forced.returncode == 0, forced.stderr
    assert integrity(target) == ["ok"]


def test_a_file_put_at_the_target_while_the_backup_runs_is_kept(database, tmp_path):
    target = tmp_path / "db.sqlite3"
    with ThreadPoolExecutor(max_workers=1) as pool:
        copying = pool.submit(sqlite_backup, source=database, to=target, pages=1)
        wait_until(lambda: list(tmp_path.glob(".db.sqlite3.*.partial")))
        target.write_bytes(b"another backup")
        with pytest.raises(BackupError, match="exists; give --force to replace it"):
            copying.result(timeout=60)
    assert target.read_bytes() == b"another backup"
    assert sorted(os.listdir(tmp_path)) == ["db.sqlite3", "live"]


def test_a_missing_directory_is_a_clear_error_and_writes_nothing(database, tmp_path):
    done = manage(database, "backup", "--to", str(tmp_path / "missing" / "db.sqlite3"))

    assert done.returncode == 1
    assert f"The directory {tmp_path / 'missing'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["live"]


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(database, tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        assert database.stat().st_size > 256 * 1024
        with pytest.raises(BackupError, match=r"failed .*full.*; nothing was written"):
            sqlite_backup(source=database, to=disk / "db.sqlite3")
        assert os.listdir(disk) == []


def test_the_backup_cannot_replace_its_own_database(database):
    before = database.read_bytes()
    with pytest.raises(BackupError, match="cannot replace the database it copies"):
        sqlite_backup(source=database, to=database, force=True)
    assert database.read_bytes() == before


def test_on_postgresql_it_prints_pg_dump_without_the_password_and_writes_nothing(tmp_path):
    target = tmp_path / "tms dash.dump"
    url = "postgres://tms:s3cret-pw@db.example:6543/tmsdash"

    done = subprocess.run(
        [sys.executable, "manage.py", "backup", "--to", str(target)],
        cwd=ROOT,
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    connection = "--host db.example --port 6543 --username tms"
    assert f"pg_dump --format=custom {connection} --dbname tmsdash --file '{target}'" in done.stdout
    assert f"createdb {connection} tmsdash_restored" in done.stdout
    assert (
        f"pg_restore {connection} --dbname tmsdash_restored --no-owner --exit-on-error "
        f"'{target}'" in done.stdout
    )
    assert "PGPASSWORD or ~/.pgpass" in done.stdout
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert os.listdir(tmp_path) == []
