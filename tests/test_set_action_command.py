from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job
from tests.helpers import TOKEN, row_counts, worker


@pytest.fixture
def command(operator, cluster, monkeypatch):
    """Run set_action and return what it printed."""
    monkeypatch.setenv("TMS_TOKEN", TOKEN)

    def command(*args: str, stdout: io.StringIO | None = None) -> str:
        out = stdout or io.StringIO()
        call_command("set_action", "--user", "op1", "--cluster", "eu1", *args, stdout=out)
        return out.getvalue()

    return command


@pytest.fixture
def running_worker():
    """A real worker process, which runs the jobs that --wait waits for."""
    process = worker()
    yield process
    process.terminate()
    process.communicate(timeout=30)


# --wait polls the database for the end of jobs, so their submit must really commit.
committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_prints_the_job_id(command):
    output = command("--action", "PE-Enable", "--cids", "A,B C")
    job = Job.objects.get()
    assert output.splitlines() == [str(job.pk)]
    assert job.customer_count == 3


@committing
def test_wait_exits_0_when_all_succeeded(command, running_worker):
    with pytest.raises(SystemExit) as excinfo:
        command("--action", "1", "--cids", "C1", "--wait")
    assert excinfo.value.code == 0


@committing
def test_wait_exits_1_and_prints_the_error_when_a_job_failed(command, running_worker):
    out = io.StringIO()
    with pytest.raises(SystemExit) as excinfo:
        command("--action", "1", "--cids", "E500", "--wait", stdout=out)
    assert excinfo.value.code == 1
    job = Job.objects.get()
    assert f"{job.pk} FAILED HTTP 500 API returned status 500" in out.getvalue()


def test_csv_file_is_read(command, tmp_path, cluster):
    cluster.max_cids_per_request = 2
    cluster.save()
    path = tmp_path / "cids.csv"
    path.write_text("customer_id\nA\nB\nC\n")
    output = command("--action", "T-Enable", "--csv", str(path))
    assert len(output.splitlines()) == 2
    assert Job.objects.count() == 2


def test_same_idempotency_key_again_prints_the_same_job(command):
    first = command("--action", "1", "--cids", "C1", "--idempotency-key", "nightly-1")
    assert command("--action", "1", "--cids", "C1", "--idempotency-key", "nightly-1") == first
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--action", "9", "--cids", "C1"], "Unknown action"),
        (["--action", "1", "--cids", "bad/cid"], "invalid customer ID"),
        (["--action", "1", "--csv", "/nonexistent/cids.csv"], "Cannot read"),
    ],
)
def test_refused_input_exits_3_and_writes_nothing(command, args, message):
    before = row_counts()
    with pytest.raises(CommandError, match=message) as excinfo:
        command(*args)
    assert excinfo.value.returncode == 3
    assert row_counts() == before


def test_unknown_user_exits_3(command):
    with pytest.raises(CommandError, match="No active user") as excinfo:
        call_command(
            "set_action", "--user", "ghost", "--cluster", "eu1", "--action", "1", "--cids", "C1"
        )
    assert excinfo.value.returncode == 3


def test_without_tms_token_and_without_a_terminal_it_refuses(command, monkeypatch):
    monkeypatch.delenv("TMS_TOKEN")
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(CommandError, match="Set TMS_TOKEN") as excinfo:
        command("--action", "1", "--cids", "C1")
    assert excinfo.value.returncode == 3
    assert Job.objects.count() == 0


def test_token_cannot_be_given_as_an_argument(command):
    with pytest.raises(CommandError, match="unrecognized arguments"):
        command("--action", "1", "--cids", "C1", "--token", TOKEN)
