"""manage.py import_legacy against real legacy SQLite files of each schema generation."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Job, JobCustomer
from jobs.services import parse_action
from legacy.importer import (
    IMPORT_PAGE_CACHE_KB,
    LEGACY_NAMESPACE,
    NO_RESULT,
    _insert_rows,
    legacy_import,
)
from tests.helpers import database_text
from tests.legacy_files import (
    CLUSTER_URL,
    audit_row,
    legacy_job,
    write_audit_db,
    write_jobs_db,
)

UTC = dt.UTC


def run_import(*args: str, stdout: io.StringIO | None = None) -> str:
    out = stdout or io.StringIO()
    call_command("import_legacy", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {
        "jobs": Job.objects.count(),
        "customers": JobCustomer.objects.count(),
        "users": get_user_model().objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("generation", ["v1", "v2", "v3"])
def test_each_generation_imports_jobs_customers_and_ids(db, tmp_path, generation):
    job_id = str(uuid.uuid4())
    jobs_db = write_jobs_db(
        tmp_path / "jobs.db",
        [legacy_job(job_id=job_id, user_id="vijay", cids=["CUST1", "CUST2", "CUST3"])],
        generation=generation,
        users=["vijay"],
    )

    output = run_import("--jobs-db", str(jobs_db))

    job = Job.objects.get()
    assert job.id == uuid.UUID(job_id)
    assert job.legacy_id == job_id
    assert job.user.username == "vijay"
    assert job.action == Job.Action.TRANS_BEGIN
    assert job.cluster_url == CLUSTER_URL
    assert job.status == Job.Status.SUCCESS
    assert job.customer_count == 3
    assert sorted(job.customers.values_list("cid", flat=True)) == ["CUST1", "CUST2", "CUST3"]
    assert job.request_payload["cids"] == ["CUST1", "CUST2", "CUST3"]
    assert f"schema generation {generation}" in output
    assert output.splitlines()[-1] == (
        "import_legacy: imported 1 jobs (3 customers) and 0 audit entries, 0 skipped."
    )


def test_v3_columns_are_kept(db, tmp_path):
    jobs_db = write_jobs_db(
        tmp_path / "jobs.db",
        [
            legacy_job(
                status="FAILED",
                http_status=401,
                error_message="API returned status 401: Unauthorized",
                created_at="2026-01-29T10:21:38.000000",
                updated_at="2026-01-29T10:21:39.000000",
            )
        ],
    )
    run_import("--jobs-db", str(jobs_db), "--timezone", "UTC")

    job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert job.http_status == 401
    assert job.error_message == "API returned status 401: Unauthorized"
    # The legacy updated_at, not the time of the import.
    assert job.updated_at == dt.datetime(2026, 1, 29, 10, 21, 39, tzinfo=UTC)
    assert job.finished_at == job.updated_at


def test_unknown_operator_becomes_inactive_user_and_known_one_is_linked(db, tmp_path):
    known = baker.make(get_user_model(), username="prasad", is_active=True)
    jobs_db = write_jobs_db(
        tmp_path / "jobs.db",
        [legacy_job(user_id="prasad"), legacy_job(user_id="ghost"), legacy_job(user_id="ghost")],
    )
    output = run_import("--jobs-db", str(jobs_db))

    ghost = get_user_model().objects.get(username="ghost")
    assert not ghost.is_active
    assert not ghost.has_usable_password()
    assert Job.objects.filter(user=ghost).count() == 2
    assert Job.objects.filter(user=known).count() == 1
    assert get_user_model().objects.count() == 2
    assert "created (inactive, no usable password): ghost" in output


def test_action_by_code_else_by_name_in_any_spelling_and_unknown_kept(db, tmp_path):
    rows = {
        "by-code": legacy_job(action_code=2, action_name="PE-Enable"),
        "lower": legacy_job(action_code=None, action_name="tran-begin"),
        "title": legacy_job(action_code=None, action_name="Trans-Begin"),
        "snake": legacy_job(action_code=None, action_name="PE_FINALIZE"),
        "odd-code": legacy_job(action_code=9, action_name="Mystery"),
        "odd-name": legacy_job(action_code=None, action_name="Frobnicate"),
    }
    for key, row in rows.items():
        row["job_id"] = key
    write_jobs_db(tmp_path / "jobs.db", rows.values())
    run_import("--jobs-db", str(tmp_path / "jobs.db"))

    jobs = {job.legacy_id: job for job in Job.objects.all()}
    assert {key: job.action for key, job in jobs.items()} == {
        "by-code": 2,
        "lower": 1,
        "title": 1,
        "snake": 4,
        "odd-code": 9,
        "odd-name": 0,
    }
    assert jobs["odd-code"].action_label == "Mystery"
    assert jobs["odd-name"].action_label == "Frobnicate"
    assert jobs["odd-name"].legacy_action_name == "Frobnicate"
    assert jobs["lower"].action_label == "Trans-Begin"


@pytest.mark.parametrize(
    "spelling", ["tran-begin", "TRANS_BEGIN", "pe enable", "T-Enable", "pe_finalize", "PEDirect"]
)
def test_import_and_set_action_read_action_names_alike(db, tmp_path, spelling):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(action_code=None, action_name=spelling)])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))
    assert Job.objects.get().action == parse_action(spelling)


@pytest.mark.parametrize(
    ("legacy_status", "http_status", "expected"),
    [
        ("success", None, Job.Status.SUCCESS),
        ("SUCCESS", 200, Job.Status.SUCCESS),
        ("failed", None, Job.Status.FAILED),
        ("FAILED", 500, Job.Status.FAILED),
        (None, 201, Job.Status.SUCCESS),
        (None, 503, Job.Status.FAILED),
        (None, None, Job.Status.FAILED),
        ("IN_PROGRESS", None, Job.Status.UNKNOWN),
    ],
)
def test_status_mapping(db, tmp_path, legacy_status, http_status, expected):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(status=legacy_status, http_status=http_status)])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))

    job = Job.objects.get()
    assert job.status == expected
    if expected == Job.Status.UNKNOWN:
        assert job.error_message == NO_RESULT
        assert job.finished_at is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # SQLite CURRENT_TIMESTAMP: UTC whatever the server's zone.
        ("2026-01-29 10:00:00", dt.datetime(2026, 1, 29, 10, 0, tzinfo=UTC)),
        # isoformat() in the server's local time (Berlin is UTC+1 in January).
        ("2026-01-29T11:00:00", dt.datetime(2026, 1, 29, 10, 0, tzinfo=UTC)),
        ("2026-01-29T11:00:00.250000", dt.datetime(2026, 1, 29, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-29T12:00:00+02:00", dt.datetime(2026, 1, 29, 10, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00.5", dt.datetime(2026, 7, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_in_every_legacy_format(db, tmp_path, written, expected):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(created_at=written)])
    run_import("--jobs-db", str(tmp_path / "jobs.db"), "--timezone", "Europe/Berlin")
    assert Job.objects.get().created_at == expected


def test_local_times_default_to_time_zone_setting(db, tmp_path, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(created_at="2026-01-29T19:00:00")])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))
    assert Job.objects.get().created_at == dt.datetime(2026, 1, 29, 10, 0, tzinfo=UTC)


def test_unreadable_created_at_is_skipped_with_reason(db, tmp_path):
    write_jobs_db(
        tmp_path / "jobs.db", [legacy_job(created_at="yesterday"), legacy_job(job_id="ok")]
    )
    output = run_import("--jobs-db", str(tmp_path / "jobs.db"))
    assert list(Job.objects.values_list("legacy_id", flat=True)) == ["ok"]
    assert "1 unreadable created_at" in output


def test_cids_stripped_deduplicated_and_orphan_rows_counted(db, tmp_path):
    write_jobs_db(
        tmp_path / "jobs.db",
        [legacy_job(cids=[" CUST1", "CUST1", "CUST2 ", "  ", "CUST3"])],
        orphans=[("gone-job", "CUST9"), ("zz-also-gone", "CUST8")],
    )
    output = run_import("--jobs-db", str(tmp_path / "jobs.db"))

    job = Job.objects.get()
    assert sorted(job.customers.values_list("cid", flat=True)) == ["CUST1", "CUST2", "CUST3"]
    assert job.customer_count == 3
    assert JobCustomer.objects.count() == 3
    assert "blank or repeated CIDs dropped: 2" in output
    assert "rows skipped because their job does not exist: 2" in output


def test_jobs_are_imported_in_the_order_the_legacy_app_created_them(db, tmp_path):
    # Ids out of their creation order, and customer rows written after all the jobs, last
    # job first: each job still gets its own, and an import stopped after one chunk has the
    # first job created, not the lowest id.
    jobs = [
        legacy_job(job_id=job_id, created_at=f"2026-01-29 10:0{n}:00", cids=[])
        for n, job_id in enumerate(["job-c", "job-a", "job-b"])
    ]
    late = [(job_id, f"{job_id}-{n}") for job_id in ("job-b", "job-a", "job-c") for n in (1, 2)]
    write_jobs_db(tmp_path / "jobs.db", jobs, orphans=late)

    legacy_import(jobs_db=tmp_path / "jobs.db", chunk_size=1, max_chunks=1)
    assert list(Job.objects.values_list("legacy_id", flat=True)) == ["job-c"]

    report = legacy_import(jobs_db=tmp_path / "jobs.db", chunk_size=1)
    assert report.jobs_imported == 2
    assert report.orphan_customer_rows == 0
    for job in Job.objects.all():
        assert sorted(job.customers.values_list("cid", flat=True)) == [
            f"{job.legacy_id}-1",
            f"{job.legacy_id}-2",
        ]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's page cache")
def test_the_import_enlarges_sqlite_page_cache_while_it_runs(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(job_id=f"job-{n}") for n in range(2)])
    seen = []

    def cache_size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return cursor.fetchone()[0]

    before = cache_size()
    legacy_import(
        jobs_db=tmp_path / "jobs.db", chunk_size=1, progress=lambda *_: seen.append(cache_size())
    )

    assert seen == [-IMPORT_PAGE_CACHE_KB] * 2
    assert cache_size() == before != -IMPORT_PAGE_CACHE_KB


def test_non_uuid_id_gets_stable_uuid_and_stays_searchable(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(job_id="job-42")])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))

    job = Job.objects.get(legacy_id="job-42")
    assert job.id == uuid.uuid5(LEGACY_NAMESPACE, "job-42")


def test_cluster_linked_by_base_url_ignoring_trailing_slashes(db, tmp_path):
    cluster = baker.make("jobs.Cluster", name="east", base_url=CLUSTER_URL + "/")
    write_jobs_db(
        tmp_path / "jobs.db",
        [
            legacy_job(job_id="known", cluster_url=CLUSTER_URL),
            legacy_job(job_id="other", cluster_url="https://tms-west.example.internal//"),
        ],
    )
    run_import("--jobs-db", str(tmp_path / "jobs.db"))

    known = Job.objects.get(legacy_id="known")
    assert known.cluster == cluster
    other = Job.objects.get(legacy_id="other")
    assert other.cluster is None
    assert other.cluster_url == "https://tms-west.example.internal//"


def test_no_secret_from_the_legacy_files_reaches_the_database(db, tmp_path):
    planted = [
        "tok-top-level-1111",
        "tok-nested-2222",
        "tok-camel-3333",
        "tok-header-4444",
        "tok-bearer-5555",
        "pw-in-list-6666",
        "tok-text-payload-7777",
        "tok-error-8888",
        "tok-url-9999",
        "pw-audit-json-aaaa",
        "tok-audit-text-bbbb",
        "tok-summary-cccc",
        "pw-url-dddd",
    ]
    payload = {
        "action": "Trans-Begin",
        "cids": ["CUST1"],
        "token": planted[0],
        "options": {"auth": {"api_token": planted[1]}, "apiToken": planted[2]},
        "headers": {"X-Auth-Token": planted[3], "Accept": "application/json"},
        "note": f"sent with Bearer {planted[4]} by the page",
        "accounts": [{"user": "svc", "Password": planted[5]}],
    }
    write_jobs_db(
        tmp_path / "jobs.db",
        [
            legacy_job(job_id="json", request_payload=json.dumps(payload)),
            legacy_job(job_id="text", request_payload=f"action=x&token={planted[6]}"),
            legacy_job(
                job_id="error",
                status="FAILED",
                error_message=f"401 for Authorization: Bearer {planted[7]}",
                response_summary=f"echo {{'secret': '{planted[11]}'}}",
                cluster_url=f"https://svc:{planted[12]}@tms.example.net/?token={planted[8]}",
            ),
        ],
    )
    write_audit_db(
        tmp_path / "audit.db",
        [
            audit_row(details=json.dumps({"action": "LOGIN", "password": planted[9]})),
            audit_row(details=f"header Authorization: bearer {planted[10]}"),
        ],
    )
    run_import("--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(tmp_path / "audit.db"))

    dump = database_text()
    assert "CUST1" in dump
    assert [secret for secret in planted if secret in dump] == []
    kept = Job.objects.get(legacy_id="json").request_payload
    assert kept["cids"] == ["CUST1"]
    assert kept["headers"]["Accept"] == "application/json"
    assert kept["token"] == "[REDACTED]"
    assert Job.objects.get(legacy_id="text").request_payload == "action=x&token=[REDACTED]"


def test_audit_rows_become_legacy_entries(db, tmp_path):
    alice = baker.make(get_user_model(), username="alice")
    write_jobs_db(tmp_path / "jobs.db", [])
    write_audit_db(
        tmp_path / "audit.db",
        [
            audit_row(timestamp="2026-01-29 09:31:15", username="alice", ip_address="10.9.91.40"),
            audit_row(action="LOGIN", username="nobody", ip_address="not-an-ip", details="hi"),
            audit_row(details=json.dumps({"job_id": "job-42", "cid_count": 1})),
        ],
    )
    run_import("--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(tmp_path / "audit.db"))

    first = AuditEntry.objects.get(details__legacy_id=1)
    assert first.event == "legacy.SET_ACTION"
    assert first.created_at == dt.datetime(2026, 1, 29, 9, 31, 15, tzinfo=UTC)
    assert first.actor == alice
    assert first.actor_username == "alice"
    assert first.ip_address == "10.9.91.40"
    assert first.details["legacy_details"] == {"action": "Trans-Begin", "cid_count": 2}
    assert first.details["legacy_status"] == "success"
    second = AuditEntry.objects.get(details__legacy_id=2)
    assert second.event == "legacy.LOGIN"
    assert second.actor is None
    assert second.actor_username == "nobody"
    assert second.ip_address is None
    assert second.details["legacy_details"] == "hi"
    assert AuditEntry.objects.get(details__legacy_id=3).job_id == uuid.uuid5(
        LEGACY_NAMESPACE, "job-42"
    )
    # Audit rows never create accounts.
    assert not get_user_model().objects.filter(username="nobody").exists()


def test_second_run_imports_nothing_and_says_so(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(), legacy_job(job_id="job-7")])
    write_audit_db(tmp_path / "audit.db", [audit_row(), audit_row()])
    args = ("--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(tmp_path / "audit.db"))
    run_import(*args)
    before = row_counts()

    output = run_import(*args)

    assert row_counts() == before
    assert "Jobs: 2 read, 0 imported, 2 already present, 0 skipped" in output
    assert output.splitlines()[-1] == (
        "import_legacy: nothing to import; 2 jobs and 2 audit entries already present, 0 skipped."
    )
    assert AuditEntry.objects.filter(event=AuditEntry.Event.LEGACY_IMPORTED).count() == 1


def test_one_legacy_imported_entry_per_run_with_the_counts(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(user_id="newbie")])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))

    entry = AuditEntry.objects.get(event=AuditEntry.Event.LEGACY_IMPORTED)
    assert entry.details["jobs_imported"] == 1
    assert entry.details["customers_imported"] == 2
    assert entry.details["users_created"] == ["newbie"]
    assert entry.details["generation"] == "v3"


def test_interrupted_import_finishes_the_rest_when_run_again(db, tmp_path):
    jobs = [legacy_job(job_id=f"job-{n}", cids=[f"A{n}", f"B{n}", f"C{n}"]) for n in range(5)]
    write_jobs_db(tmp_path / "jobs.db", jobs)
    write_audit_db(tmp_path / "audit.db", [audit_row() for _ in range(3)])

    # Two committed chunks of one job each, then the run stops as if killed.
    report = legacy_import(
        jobs_db=tmp_path / "jobs.db",
        audit_db=tmp_path / "audit.db",
        chunk_size=1,
        max_chunks=2,
    )
    assert not report.complete
    assert Job.objects.count() == 2
    assert AuditEntry.objects.filter(details__has_key="legacy_id").count() == 0
    # Each imported job came with all its customers.
    for job in Job.objects.all():
        assert job.customers.count() == 3

    output = run_import(
        "--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(tmp_path / "audit.db")
    )

    assert "Jobs: 5 read, 3 imported, 2 already present, 0 skipped" in output
    assert Job.objects.count() == 5
    assert JobCustomer.objects.count() == 15
    assert AuditEntry.objects.filter(details__has_key="legacy_id").count() == 3


def test_interrupted_audit_import_resumes_without_copies(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job()])
    write_audit_db(tmp_path / "audit.db", [audit_row(action=f"A{n}") for n in range(4)])
    # One chunk of jobs, then one chunk of two audit rows.
    legacy_import(
        jobs_db=tmp_path / "jobs.db", audit_db=tmp_path / "audit.db", chunk_size=2, max_chunks=2
    )
    assert AuditEntry.objects.filter(details__has_key="legacy_id").count() == 2

    legacy_import(jobs_db=tmp_path / "jobs.db", audit_db=tmp_path / "audit.db")

    events = AuditEntry.objects.filter(details__has_key="legacy_id").values_list("event", flat=True)
    assert sorted(events) == ["legacy.A0", "legacy.A1", "legacy.A2", "legacy.A3"]


def test_job_removed_by_dedupe_is_not_imported_again(db, tmp_path):
    server = legacy_job(
        job_id="server", status="SUCCESS", http_status=200, created_at="2026-01-29T10:07:31"
    )
    page = legacy_job(
        job_id="page",
        response_summary="Successfully processed 2 customer(s)",
        created_at="2026-01-29T10:07:31.663000",
    )
    write_jobs_db(tmp_path / "jobs.db", [server, page])
    run_import("--jobs-db", str(tmp_path / "jobs.db"))
    call_command("dedupe_jobs", "--apply", stdout=io.StringIO())
    assert list(Job.objects.values_list("legacy_id", flat=True)) == ["server"]

    output = run_import("--jobs-db", str(tmp_path / "jobs.db"))

    assert list(Job.objects.values_list("legacy_id", flat=True)) == ["server"]
    assert "1 removed earlier by dedupe_jobs" in output


def test_dry_run_writes_nothing_and_reports_what_it_would_do(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job(user_id="newbie"), legacy_job()])
    write_audit_db(tmp_path / "audit.db", [audit_row()])
    before = row_counts()

    output = run_import(
        "--jobs-db",
        str(tmp_path / "jobs.db"),
        "--audit-db",
        str(tmp_path / "audit.db"),
        "--dry-run",
    )

    assert row_counts() == before
    assert "Jobs: 2 read, 2 would be imported" in output
    assert "Users would be created (inactive, no usable password): alice, newbie" in output
    assert output.splitlines()[-1] == (
        "import_legacy (dry run, nothing written): would import 2 jobs (4 customers) "
        "and 1 audit entries, 0 skipped."
    )


def test_legacy_files_are_not_modified(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job()], orphans=[("gone", "CUST1")])
    write_audit_db(tmp_path / "audit.db", [audit_row()])
    hashes = [sha256(tmp_path / "jobs.db"), sha256(tmp_path / "audit.db")]

    run_import("--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(tmp_path / "audit.db"))

    assert [sha256(tmp_path / "jobs.db"), sha256(tmp_path / "audit.db")] == hashes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.db", "jobs.db"]


def bad_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 50)
    no_jobs = tmp_path / "other.db"
    write_audit_db(no_jobs, [audit_row()])
    return {
        "not SQLite": (text, "is not an SQLite database"),
        "no jobs table": (no_jobs, "has no jobs table"),
        "missing": (tmp_path / "absent.db", "does not exist"),
    }


@pytest.mark.parametrize("case", ["not SQLite", "no jobs table", "missing"])
def test_bad_jobs_file_is_refused_and_nothing_written(db, tmp_path, case):
    path, message = bad_files(tmp_path)[case]
    before = row_counts()

    with pytest.raises(CommandError, match=message) as refused:
        run_import("--jobs-db", str(path))

    assert refused.value.returncode != 0
    assert row_counts() == before


def test_bad_audit_file_is_refused_before_any_job_is_written(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job()])
    not_audit = write_jobs_db(tmp_path / "jobs-again.db", [])
    before = row_counts()

    with pytest.raises(CommandError, match="has no audit_log table"):
        run_import("--jobs-db", str(tmp_path / "jobs.db"), "--audit-db", str(not_audit))

    assert row_counts() == before


def test_unknown_timezone_is_refused(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job()])
    with pytest.raises(CommandError, match="not an IANA time zone"):
        run_import("--jobs-db", str(tmp_path / "jobs.db"), "--timezone", "Mars/Olympus")
    assert Job.objects.count() == 0


class TerminalOutput(io.StringIO):
    """Output that says it is a terminal, as a real one would."""

    def isatty(self) -> bool:
        return True


def test_progress_is_shown_only_on_a_terminal(db, tmp_path):
    write_jobs_db(tmp_path / "jobs.db", [legacy_job()])
    plain = run_import("--jobs-db", str(tmp_path / "jobs.db"), "--dry-run")
    terminal = run_import(
        "--jobs-db", str(tmp_path / "jobs.db"), "--dry-run", stdout=TerminalOutput()
    )
    assert "\r" not in plain
    assert "\rjobs: 1 of 1 read" in terminal


def test_raw_insert_computes_a_callable_default_for_each_row(db):
    user = baker.make(get_user_model())
    updated = dt.datetime(2026, 1, 29, tzinfo=UTC)
    # Job.id (uuid4) and Job.created_at (now) are left to their callable defaults.
    _insert_rows(
        Job,
        ["user_id", "action", "cluster_url", "updated_at"],
        [(user.pk, 1, CLUSTER_URL, updated), (user.pk, 2, CLUSTER_URL, updated)],
    )
    jobs = list(Job.objects.all())
    assert len(jobs) == 2
    assert jobs[0].pk != jobs[1].pk
    assert all(job.created_at > updated for job in jobs)
