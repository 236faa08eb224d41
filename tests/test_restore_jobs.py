"""restore_jobs (jobs.services.restore): purged jobs come back exactly, never over a job that
exists, twice changes nothing, a corrupt archive restores nothing; a deduplicated job comes
back from its audit entry."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Job, JobCallTimeHour, JobCustomer, JobOutcomeHour, JobReview
from jobs.services.archive import rows_of
from notifications.models import Notice
from schedules.models import Occurrence
from tests.helpers import row_counts
from tests.test_purge_jobs import OLD, make_job

TABLES = (Job, JobCustomer, JobReview, Notice, Occurrence, JobOutcomeHour, JobCallTimeHour)


def dump() -> dict[str, list[dict]]:
    """Every row of the tables a purge and a restore touch, every column."""
    return {model._meta.label: rows_of(model) for model in TABLES}


def purge(archive: Path) -> None:
    args = ("--older-than", "30", "--archive", str(archive))
    call_command("purge_jobs", *args, stdout=io.StringIO())


def restore(*args: str) -> str:
    out = io.StringIO()
    call_command("restore_jobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(operator, cluster):
    """Old ended jobs with everything that hangs off them, a retry chain, and one recent job."""
    first = make_job(operator, "FAILED", cluster=cluster, error_message="boom", http_status=502)
    retry = make_job(
        operator,
        "SUCCESS",
        ended=OLD + dt.timedelta(hours=1),
        cluster=cluster,
        retry_of=first,
        cids=("C1", "C2", "Ünïcode-3"),
    )
    unknown = make_job(operator, "UNKNOWN", cluster=cluster, idempotency_key="k-1")
    JobReview.objects.create(job=unknown, reviewed_by=operator, note="applied, checked")
    baker.make(
        Notice,
        event_id=uuid.uuid4(),
        event="job.failed",
        job=first,
        channel="email",
        user=operator,
        state="SENT",
        payload={"job": str(first.pk)},
    )
    schedule = baker.make("schedules.Schedule", run_at=OLD, rrule="")
    occurrence = baker.make(Occurrence, schedule=schedule, job=retry, state="fired", occurs_at=OLD)
    make_job(operator, "SUCCESS", ended=timezone.now())
    return {"first": first, "retry": retry, "unknown": unknown, "occurrence": occurrence}


def test_a_purge_then_a_restore_gives_back_every_row_exactly(history, tmp_path):
    before = dump()
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    assert Job.objects.count() == 1
    assert Occurrence.objects.get().job_id is None

    out = restore("--archive", str(archive))

    assert dump() == before
    assert "restored 3 job(s) with 7 customer row(s)" in out
    entry = AuditEntry.objects.get(event="jobs.restored")
    assert entry.details["restored"] == 3
    assert entry.details["rows"] == {
        "jobs.job": 3,
        "jobs.jobcustomer": 7,
        "jobs.jobreview": 1,
        "notifications.notice": 1,
    }


def test_restoring_twice_changes_nothing(history, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    restore("--archive", str(archive))
    after_first = dump()
    counts = row_counts()

    out = restore("--archive", str(archive))

    assert dump() == after_first
    assert row_counts() == counts
    assert out.count("exists already, left as it is") == 3


def test_a_job_that_exists_is_never_overwritten(history, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    first = history["first"]
    restore("--archive", str(archive), "--job", str(first.pk))
    Job.objects.filter(pk=first.pk).update(error_message="changed since")

    out = restore("--archive", str(archive), "--job", str(first.pk))

    assert Job.objects.get(pk=first.pk).error_message == "changed since"
    assert f"{first.pk}: exists already, left as it is" in out


def test_a_retry_is_linked_to_its_job_only_when_that_job_is_there(history, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    first, retry = history["first"], history["retry"]

    out = restore("--archive", str(archive), "--job", str(retry.pk))

    assert Job.objects.get(pk=retry.pk).retry_of_id is None
    assert f"{retry.pk}: restored without its link to {first.pk} (not there)" in out

    Job.objects.filter(pk=retry.pk).delete()
    restore("--archive", str(archive), "--job", str(retry.pk), "--job", str(first.pk))

    assert Job.objects.get(pk=retry.pk).retry_of_id == first.pk


def test_a_retry_whose_job_comes_in_a_later_batch_is_linked(history, tmp_path, monkeypatch):
    monkeypatch.setattr("jobs.services.restore.BATCH", 1)
    archive = tmp_path / "a.jsonl.gz"
    before = dump()
    purge(archive)

    restore("--archive", str(archive))

    assert dump() == before


def test_a_job_whose_operator_is_gone_is_skipped_and_named(history, operator, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    Notice.objects.all().delete()
    Job.objects.all().delete()
    operator_id = operator.pk
    operator.delete()

    out = restore("--archive", str(archive))

    assert not Job.objects.exists()
    assert f"{history['first'].pk}: skipped, its auth.user {operator_id} is gone" in out
    assert not AuditEntry.objects.filter(event="jobs.restored").exists()


def rewrite(archive: Path, change) -> None:
    with gzip.open(archive, "rt") as file:
        lines = [json.loads(line) for line in file]
    change(lines)
    archive.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))


def test_an_archive_whose_job_fails_its_sha256_restores_nothing(history, tmp_path, monkeypatch):
    # One job per transaction: only a check of the whole archive first restores nothing.
    monkeypatch.setattr("jobs.services.restore.BATCH", 1)
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    before = row_counts()

    def tamper(lines: list[dict]) -> None:
        # The last job's customer changed: its line no longer matches its SHA-256.
        lines[-2]["children"]["jobs.jobcustomer"][0]["outcome"] = "SUCCESS"

    rewrite(archive, tamper)

    with pytest.raises(CommandError, match=r"fails its SHA-256\. Nothing was restored"):
        restore("--archive", str(archive))
    assert row_counts() == before


def test_an_archive_missing_a_job_restores_nothing(history, tmp_path, monkeypatch):
    monkeypatch.setattr("jobs.services.restore.BATCH", 1)
    archive = tmp_path / "a.jsonl.gz"
    purge(archive)
    before = row_counts()
    rewrite(archive, lambda lines: lines.pop(1))

    with pytest.raises(CommandError, match="not the footer's"):
        restore("--archive", str(archive))
    assert row_counts() == before


def test_a_deduplicated_job_comes_back_from_its_audit_entry(operator, cluster):
    make_job(operator, "SUCCESS", cluster=cluster, http_status=200)
    copy = make_job(operator, "SUCCESS", cluster=cluster, ended=OLD + dt.timedelta(seconds=1))
    before = {
        "job": {k: v for k, v in rows_of(Job, pk=copy.pk)[0].items() if k != "updated_at"},
        "customers": [
            (c["cid"], c["outcome"], c["message"]) for c in rows_of(JobCustomer, job=copy)
        ],
        "counts": rows_of(JobOutcomeHour),
    }
    call_command("dedupe_jobs", "--apply", stdout=io.StringIO())
    assert not Job.objects.filter(pk=copy.pk).exists()

    out = restore("--deduplicated", str(copy.pk))

    # The audit entry keeps times to the millisecond (DjangoJSONEncoder).
    job = rows_of(Job, pk=copy.pk)[0]
    for name in ("created_at", "started_at", "finished_at"):
        assert job.pop(name)[:23] == before["job"].pop(name)[:23]
    assert {k: v for k, v in job.items() if k != "updated_at"} == before["job"]
    assert [
        (c["cid"], c["outcome"], c["message"]) for c in rows_of(JobCustomer, job=copy)
    ] == before["customers"]
    assert rows_of(JobOutcomeHour) == before["counts"]
    assert "restored 1 job(s) with 2 customer row(s)" in out
    entry = AuditEntry.objects.get(event="jobs.restored")
    assert (entry.job_id, entry.details["source"]) == (copy.pk, "job.deduplicated")

    counts = row_counts()
    again = restore("--deduplicated", str(copy.pk))
    assert row_counts() == counts
    assert f"{copy.pk}: exists already, left as it is" in again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deduplicated", "not-an-id"], "is not a job id"),
        (["--deduplicated", str(uuid.uuid4())], "no job.deduplicated audit entry"),
        (["--archive", "/nonexistent/a.jsonl.gz"], "unreadable"),
        (["--archive", "a", "--job", "nope"], "is not a job id"),
        ([], "one of the arguments"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(history, args, message):
    before = row_counts()

    with pytest.raises(CommandError, match=message):
        restore(*args)

    assert row_counts() == before


def test_a_file_that_is_not_an_archive_restores_nothing(history, tmp_path):
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b'{"hello": 1}\n'))
    before = row_counts()

    with pytest.raises(CommandError, match="not a tmsdash-jobs-archive file"):
        restore("--archive", str(other))
    assert row_counts() == before
