"""manage.py dedupe_jobs: which jobs are copies, which one is kept, and how they are removed."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Job, JobCustomer
from legacy.dedupe import job_find_duplicates, job_remove_duplicates
from legacy.management.commands.dedupe_jobs import Command
from tests.legacy_files import legacy_job, write_jobs_db

URL = "https://tms-east.example.internal:8443"
T0 = dt.datetime(2026, 1, 29, 10, 0, tzinfo=dt.UTC)
PAGE_SUMMARY = "Successfully processed 2 customer(s)"


@pytest.fixture
def alice(db):
    return baker.make(get_user_model(), username="alice")


def make_job(user, seconds: float, cids=("CUST1", "CUST2"), **fields) -> Job:
    fields = {"action": Job.Action.TRANS_BEGIN, "cluster_url": URL, "status": "SUCCESS"} | fields
    job = baker.make(Job, user=user, created_at=T0 + dt.timedelta(seconds=seconds), **fields)
    for cid in cids:
        JobCustomer.objects.create(job=job, cid=cid)
    return job


def server_job(user, seconds: float = 0, **fields) -> Job:
    return make_job(user, seconds, http_status=200, response_summary="Cluster accepted", **fields)


def page_copy(user, seconds: float, **fields) -> Job:
    return make_job(user, seconds, response_summary=PAGE_SUMMARY, **fields)


def dedupe(*args: str) -> str:
    out = io.StringIO()
    call_command("dedupe_jobs", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[uuid.UUID]:
    return set(Job.objects.values_list("pk", flat=True))


def test_preview_lists_the_group_and_removes_nothing(alice):
    server = server_job(alice)
    copy = page_copy(alice, 0.663)

    output = dedupe()

    assert remaining() == {server.pk, copy.pk}
    assert f"keep    {server.pk}" in output
    assert f"remove  {copy.pk}  +0.663 s" in output
    assert "1 duplicate groups, 1 copies" in output
    assert output.splitlines()[-1] == (
        "dedupe_jobs (preview, nothing removed): 1 duplicate jobs in 1 groups would be "
        "removed; run again with --apply to remove them."
    )
    assert not AuditEntry.objects.exists()


def test_apply_removes_the_copy_and_audits_the_whole_job(alice):
    server = server_job(alice)
    copy = page_copy(alice, 0.5, cids=("CUST2", "CUST1"), request_payload={"cids": [2, 1]})

    output = dedupe("--apply")

    assert remaining() == {server.pk}
    assert not JobCustomer.objects.filter(job_id=copy.pk).exists()
    entry = AuditEntry.objects.get(event=AuditEntry.Event.JOB_DEDUPLICATED)
    assert entry.job_id == copy.pk
    assert entry.details["kept_job_id"] == str(server.pk)
    assert entry.details["job"]["id"] == str(copy.pk)
    assert entry.details["job"]["username"] == "alice"
    assert entry.details["job"]["response_summary"] == PAGE_SUMMARY
    assert entry.details["job"]["request_payload"] == {"cids": [2, 1]}
    assert entry.details["job"]["created_at"].startswith("2026-01-29T10:00:00.5")
    assert [c["cid"] for c in entry.details["customers"]] == ["CUST2", "CUST1"]
    assert output.splitlines()[-1] == "dedupe_jobs: removed 1 duplicate jobs in 1 groups."


def test_second_apply_finds_nothing(alice):
    server_job(alice)
    page_copy(alice, 1)
    dedupe("--apply")
    entries = AuditEntry.objects.count()

    output = dedupe("--apply")

    assert Job.objects.count() == 1
    assert AuditEntry.objects.count() == entries
    assert output.splitlines()[-1] == "dedupe_jobs: no duplicates to remove."


def test_two_and_a_half_seconds_apart_are_not_duplicates_by_default(alice):
    server_job(alice)
    page_copy(alice, 2.5)
    assert "no duplicates to remove" in dedupe("--apply")
    assert Job.objects.count() == 2
    # A wider window makes them one.
    dedupe("--apply", "--window", "3")
    assert Job.objects.count() == 1


def test_same_customers_in_another_order_are_duplicates(alice):
    server = server_job(alice, cids=("CUST1", "CUST2", "CUST3"))
    page_copy(alice, 0.4, cids=("CUST3", "CUST1", "CUST2"))
    dedupe("--apply")
    assert remaining() == {server.pk}


@pytest.mark.parametrize(
    "difference",
    [
        {"action": Job.Action.PE_ENABLE},
        {"cluster_url": "https://tms-west.example.internal:8443"},
        {"cids": ("CUST1", "CUST3")},
        {"cids": ("CUST1", "CUST2", "CUST3")},
    ],
    ids=["another action", "another cluster", "other customers", "more customers"],
)
def test_near_misses_are_not_duplicates(alice, difference):
    server_job(alice)
    page_copy(alice, 0.5, **difference)
    output = dedupe("--apply")
    assert Job.objects.count() == 2
    assert "no duplicates to remove" in output


def test_another_operators_job_is_not_a_duplicate(alice):
    server_job(alice)
    page_copy(baker.make(get_user_model(), username="bob"), 0.5)
    dedupe("--apply")
    assert Job.objects.count() == 2


def test_unknown_actions_with_other_names_are_not_duplicates(alice):
    make_job(alice, 0, action=0, legacy_action_name="Frobnicate")
    make_job(alice, 0.5, action=0, legacy_action_name="Defrobnicate")
    dedupe("--apply")
    assert Job.objects.count() == 2


def test_cluster_urls_differing_by_a_trailing_slash_are_the_same(alice):
    server = server_job(alice)
    page_copy(alice, 0.5, cluster_url=URL + "/")
    dedupe("--apply")
    assert remaining() == {server.pk}


def test_a_triple_within_the_window_keeps_one(alice):
    first_copy = page_copy(alice, 0)
    server = server_job(alice, 0.8)
    second_copy = page_copy(alice, 1.6)

    output = dedupe("--apply")

    assert remaining() == {server.pk}
    assert f"removed {first_copy.pk}  -0.800 s" in output
    assert f"removed {second_copy.pk}  +0.800 s" in output
    assert AuditEntry.objects.filter(event=AuditEntry.Event.JOB_DEDUPLICATED).count() == 2


def test_window_is_measured_from_the_first_job_of_the_group(alice):
    first = server_job(alice, 0)
    page_copy(alice, 1.5)
    late = page_copy(alice, 3.0)
    dedupe("--apply")
    # 3.0 s is 1.5 s after the copy but 3 s after the group's first job.
    assert remaining() == {first.pk, late.pk}


def test_without_http_status_the_job_not_made_by_the_page_is_kept(alice):
    page_copy(alice, 0)
    real = make_job(alice, 0.7, response_summary="Cluster accepted request for 2 customer(s)")
    dedupe("--apply")
    assert remaining() == {real.pk}


def test_without_any_clue_the_earliest_is_kept(alice):
    earliest = page_copy(alice, 0)
    page_copy(alice, 0.3)
    dedupe("--apply")
    assert remaining() == {earliest.pk}


def test_in_progress_and_retried_jobs_are_never_removed(alice):
    server = server_job(alice)
    running = page_copy(alice, 0.2, status=Job.Status.IN_PROGRESS)
    retried = page_copy(alice, 0.4, status=Job.Status.FAILED)
    baker.make(Job, user=alice, action=1, cluster_url=URL, retry_of=retried)
    plain = page_copy(alice, 0.6)

    output = dedupe("--apply")

    assert {running.pk, retried.pk, server.pk} <= remaining()
    assert plain.pk not in remaining()
    assert f"leave   {running.pk}  (in progress)" in output
    assert f"leave   {retried.pk}  (retried by another job)" in output
    assert "dedupe_jobs: removed 1 duplicate jobs in 1 groups." in output


def test_a_copy_that_changed_since_it_was_found_is_left(alice):
    server_job(alice)
    copy = page_copy(alice, 0.5)
    [group] = list(job_find_duplicates())
    Job.objects.filter(pk=copy.pk).update(status=Job.Status.IN_PROGRESS)

    assert job_remove_duplicates(group=group, window=2) == []
    assert Job.objects.filter(pk=copy.pk).exists()
    assert not AuditEntry.objects.exists()


def test_keyed_jobs_are_considered_only_with_include_keyed(alice):
    server = server_job(alice, idempotency_key="k1")
    page_copy(alice, 0.5, idempotency_key="k2")
    dedupe("--apply")
    assert Job.objects.count() == 2
    dedupe("--apply", "--include-keyed")
    assert remaining() == {server.pk}


def test_since_until_and_user_limit_the_jobs_considered(alice, settings):
    settings.TIME_ZONE = "UTC"
    bob = baker.make(get_user_model(), username="bob")
    server_job(alice)
    page_copy(alice, 0.5)
    server_job(bob)
    page_copy(bob, 0.5)

    dedupe("--apply", "--since", "2026-01-30")
    dedupe("--apply", "--until", "2026-01-29")
    assert Job.objects.count() == 4

    dedupe("--apply", "--user", "bob", "--since", "2026-01-29", "--until", "2026-01-29T11:00")
    assert Job.objects.filter(user=bob).count() == 1
    assert Job.objects.filter(user=alice).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window", "-1"), "not a number of seconds"),
        (("--window", "soon"), "not a number of seconds"),
        (("--since", "29/01/2026"), "is not a date"),
        (("--until", "tomorrow"), "is not a date"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "--since must be earlier"),
        (("--user", "nobody"), "no user named 'nobody'"),
    ],
)
def test_bad_options_are_refused_and_change_nothing(alice, args, message):
    server_job(alice)
    page_copy(alice, 0.5)
    with pytest.raises(CommandError, match=message):
        dedupe("--apply", *args)
    assert Job.objects.count() == 2
    assert not AuditEntry.objects.exists()


def test_help_states_the_rule():
    text = " ".join(Command().create_parser("manage.py", "dedupe_jobs").format_help().split())
    assert "same operator, action, cluster URL" in text
    assert "set of customers (order and repeats ignored)" in text
    assert "within --window seconds of the first job of their group" in text
    assert "the one the server created (it has an HTTP status)" in text
    assert "else the earliest" in text


def test_legacy_page_copies_are_found_after_an_import(db, tmp_path):
    server = legacy_job(
        job_id="server", status="SUCCESS", http_status=200, created_at="2026-01-29T10:07:31"
    )
    page = legacy_job(
        job_id="page",
        status="success",
        response_summary="Successfully processed 2 customer(s)",
        created_at="2026-01-29T10:07:31.663000",
        cids=["CUST2", "CUST1", "CUST1"],
    )
    other = legacy_job(job_id="other", action_code=2, created_at="2026-01-29T10:07:31.9")
    write_jobs_db(tmp_path / "jobs.db", [server, page, other])
    call_command("import_legacy", "--jobs-db", str(tmp_path / "jobs.db"), stdout=io.StringIO())

    dedupe("--apply")

    assert set(Job.objects.values_list("legacy_id", flat=True)) == {"server", "other"}
