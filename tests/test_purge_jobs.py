"""purge_jobs (jobs.services.retention): which jobs go, the archive written, read back and checked
before anything is deleted, the audit entry, a dry run, bad input."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import secrets
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Job, JobCustomer, JobOutcomeHour, JobReview, JobToken
from jobs.services import ArchiveError, count_jobs_added, ended_job, jobs_purge
from tests.helpers import row_counts
from tests.test_full_disk import small_disk

OLD = timezone.now() - dt.timedelta(days=40)
RECENT = timezone.now() - dt.timedelta(days=2)


def make_job(user, status="SUCCESS", ended=OLD, cids=("C1", "C2"), **fields) -> Job:
    """A job ended (or not) at `ended`, counted in the per-hour counts as ending would."""
    final = status not in ("IN_PROGRESS", "PENDING_APPROVAL")
    job = baker.make(
        Job,
        user=user,
        action=Job.Action.PE_ENABLE,
        cluster_url="http://127.0.0.1:9100",
        status=status,
        created_at=ended - dt.timedelta(minutes=5),
        started_at=ended - dt.timedelta(minutes=4, microseconds=123457) if final else None,
        finished_at=ended if final else None,
        request_payload={"z": 1, "a": [1, "two"]},
        customer_count=len(cids),
        **fields,
    )
    for n, cid in enumerate(cids):
        JobCustomer.objects.create(job=job, cid=cid, outcome="SUCCESS" if n else "FAILED")
    if final:
        count_jobs_added([ended_job(job)])
    return job


def purge(tmp_path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("purge_jobs", "--older-than", "30", *args, stdout=out)
    return out.getvalue()


def lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as file:
        return [json.loads(line) for line in file]


def remaining() -> set:
    return set(Job.objects.values_list("pk", flat=True))


def test_old_ended_jobs_go_into_the_archive_and_the_rest_stay(operator, tmp_path):
    gone = make_job(operator, "SUCCESS")
    failed = make_job(operator, "FAILED", error_message="boom")
    JobReview.objects.create(job=failed, reviewed_by=operator, note="checked")
    in_progress = make_job(operator, "IN_PROGRESS")
    pending = make_job(operator, "PENDING_APPROVAL")
    held = make_job(operator, "IN_PROGRESS", waiting_for="freeze", waiting_since=OLD)
    recent = make_job(operator, "SUCCESS", ended=RECENT)
    # Retried by a recent job: stays, and so does the job it retried in turn.
    first = make_job(operator, "FAILED")
    second = make_job(operator, "FAILED", ended=OLD + dt.timedelta(hours=1), retry_of=first)
    make_job(operator, "SUCCESS", ended=RECENT, retry_of=second)
    # A chain of old retries goes whole.
    old_first = make_job(operator, "UNKNOWN")
    old_retry = make_job(operator, "SUCCESS", ended=OLD + dt.timedelta(hours=2), retry_of=old_first)
    # Ended, yet it still holds a token: it stays.
    token_holder = make_job(operator, "FAILED")
    JobToken.objects.create(job=token_holder, ciphertext="x")
    archive = tmp_path / "jobs.jsonl.gz"
    kept = remaining() - {gone.pk, failed.pk, old_first.pk, old_retry.pk}

    out = purge(tmp_path, "--archive", str(archive))

    assert remaining() == kept
    assert {in_progress.pk, pending.pk, held.pk, recent.pk, first.pk, second.pk} <= kept
    assert not JobCustomer.objects.filter(job_id__in=[gone.pk, failed.pk]).exists()
    assert not JobReview.objects.exists()
    header, *jobs, footer = lines(archive)
    assert header["format"] == "tmsdash-jobs-archive"
    assert {j["id"] for j in jobs} == {str(j.pk) for j in (gone, failed, old_first, old_retry)}
    # Newest first: a retry before the job it retries.
    order = [j["id"] for j in jobs]
    assert order.index(str(old_retry.pk)) < order.index(str(old_first.pk))
    by_id = {j["id"]: j for j in jobs}
    assert by_id[str(failed.pk)]["children"]["jobs.jobreview"][0]["note"] == "checked"
    assert len(by_id[str(gone.pk)]["children"]["jobs.jobcustomer"]) == 2
    assert footer["jobs"] == 4
    assert footer["rows"] == {"jobs.job": 4, "jobs.jobcustomer": 8, "jobs.jobreview": 1}
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    entry = AuditEntry.objects.get(event="jobs.purged")
    assert entry.details["archive_sha256"] == digest
    assert (entry.details["archived"], entry.details["purged"]) == (4, 4)
    assert entry.details["kept"] == {
        "retried by a job that stays": 2,
        "still holds a token or call slot": 1,
    }
    assert f"archive SHA-256: {digest}" in out
    assert "purged: 4 job(s)" in out
    assert out.strip().splitlines()[-1].startswith("purged 4 of 4 archived job(s)")


def test_purged_jobs_leave_the_per_hour_counts(operator, tmp_path):
    make_job(operator, "SUCCESS")
    make_job(operator, "FAILED")
    assert sum(JobOutcomeHour.objects.values_list("count", flat=True)) > 0

    purge(tmp_path, "--archive", str(tmp_path / "a.jsonl.gz"))

    assert set(JobOutcomeHour.objects.values_list("count", flat=True)) <= {0}


def test_a_dry_run_writes_and_deletes_nothing_and_says_what_would_go(operator, tmp_path):
    make_job(operator, "SUCCESS")
    make_job(operator, "FAILED", cids=("C1",))
    make_job(operator, "SUCCESS", ended=RECENT)
    before = row_counts()

    out = purge(tmp_path, "--archive", str(tmp_path / "a.jsonl.gz"), "--dry-run")

    assert row_counts() == before
    assert list(tmp_path.iterdir()) == []
    assert "would purge 2 job(s) with 3 customer row(s)" in out


def test_an_archive_that_fails_its_read_back_deletes_nothing(operator, tmp_path, monkeypatch):
    # One job per transaction: a check made only while deleting would come too late.
    monkeypatch.setattr("jobs.services.retention.BATCH", 1)
    for _ in range(3):
        make_job(operator, "SUCCESS")
    archive = tmp_path / "a.jsonl.gz"
    before = row_counts()

    def corrupt(stage: str, count: int) -> None:
        if stage == "written":
            # The last job's customer changed inside the file: it fails its SHA-256.
            *jobs, footer = gzip.decompress(archive.read_bytes()).splitlines(keepends=True)
            jobs[-1] = jobs[-1].replace(b'"FAILED"', b'"SUCCESS"', 1)
            archive.write_bytes(gzip.compress(b"".join([*jobs, footer])))

    with pytest.raises(ArchiveError, match="fails its SHA-256"):
        jobs_purge(cutoff=timezone.now() - dt.timedelta(days=30), archive=archive, progress=corrupt)

    assert row_counts() == before


def test_an_archive_cut_short_deletes_nothing(operator, tmp_path, monkeypatch):
    monkeypatch.setattr("jobs.services.retention.BATCH", 1)
    for _ in range(3):
        make_job(operator, "SUCCESS")
    archive = tmp_path / "a.jsonl.gz"
    before = row_counts()

    def cut(stage: str, count: int) -> None:
        if stage == "written":
            text = gzip.decompress(archive.read_bytes())
            archive.write_bytes(gzip.compress(b"\n".join(text.split(b"\n")[:-2]) + b"\n"))

    with pytest.raises(ArchiveError, match="no footer"):
        jobs_purge(cutoff=timezone.now() - dt.timedelta(days=30), archive=archive, progress=cut)

    assert row_counts() == before


def test_an_unwritable_or_existing_archive_stops_the_purge(operator, tmp_path):
    make_job(operator, "SUCCESS")
    existing = tmp_path / "old.jsonl.gz"
    existing.write_bytes(b"earlier archive")
    before = row_counts()

    with pytest.raises(CommandError, match="never overwritten"):
        purge(tmp_path, "--archive", str(existing))
    with pytest.raises(CommandError, match="cannot be written"):
        purge(tmp_path, "--archive", str(tmp_path / "no-such-dir" / "a.jsonl.gz"))
    with pytest.raises(CommandError, match="cannot be written"):
        # A location that is no folder.
        purge(tmp_path, "--archive", "/dev/full/a.jsonl.gz")

    assert row_counts() == before
    assert existing.read_bytes() == b"earlier archive"


def test_a_disk_that_fills_up_while_archiving_deletes_nothing(operator, tmp_path):
    for _ in range(200):
        # Random text: gzip cannot shrink it below the disk's size.
        make_job(operator, "FAILED", error_message=secrets.token_hex(1000))
    before = row_counts()

    with small_disk(tmp_path / "disk", "64k") as disk:
        with pytest.raises(CommandError, match=r"cannot be written.*No space left"):
            purge(tmp_path, "--archive", str(disk / "a.jsonl.gz"))
        # The half-written archive is removed.
        assert list(disk.iterdir()) == []

    assert row_counts() == before


def test_a_job_changed_after_it_was_archived_stays(operator, tmp_path):
    changed = make_job(operator, "UNKNOWN")
    other = make_job(operator, "SUCCESS")

    def look_at_it(stage: str, count: int) -> None:
        if stage == "checked":
            JobReview.objects.create(job=changed, reviewed_by=operator)

    report = jobs_purge(
        cutoff=timezone.now() - dt.timedelta(days=30),
        archive=tmp_path / "a.jsonl.gz",
        progress=look_at_it,
    )

    assert remaining() == {changed.pk}
    assert (report.archived, report.purged) == (2, 1)
    assert report.kept["changed after it was archived"] == 1
    assert other.pk not in remaining()


def test_a_retry_older_than_its_job_counts_only_once_decided(operator, tmp_path):
    # Imported history can hold a retry created before the job it retries: the walk, newest
    # first, meets the job before its retry, and keeps the job until the retry is decided.
    job = make_job(operator, "FAILED")
    retry = make_job(operator, "FAILED", ended=OLD - dt.timedelta(hours=1), retry_of=job)
    make_job(operator, "IN_PROGRESS", retry_of=retry)

    report = jobs_purge(
        cutoff=timezone.now() - dt.timedelta(days=30), archive=tmp_path / "a.jsonl.gz"
    )

    assert {job.pk, retry.pk} <= remaining()
    assert (report.archived, report.kept) == (0, {"retried by a job that stays": 2})


def test_a_job_retried_after_it_was_archived_stays(operator, tmp_path):
    old = make_job(operator, "FAILED")

    def retry_it(stage: str, count: int) -> None:
        if stage == "checked":
            make_job(operator, "IN_PROGRESS", retry_of=old)

    report = jobs_purge(
        cutoff=timezone.now() - dt.timedelta(days=30),
        archive=tmp_path / "a.jsonl.gz",
        progress=retry_it,
    )

    assert old.pk in remaining()
    assert (report.archived, report.purged) == (1, 0)
    assert report.kept == {"retried by a job that stays": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "0", "--archive", "a"], "--older-than"),
        (["--older-than", "ten", "--archive", "a"], "--older-than"),
        (["--older-than", "30"], "--archive PATH is needed"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(operator, tmp_path, args, message):
    make_job(operator, "SUCCESS")
    before = row_counts()

    with pytest.raises(CommandError, match=message):
        call_command("purge_jobs", *args, stdout=io.StringIO())

    assert row_counts() == before
