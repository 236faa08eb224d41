"""The per-hour counts of ended jobs agree with the jobs table: every way a job ends counts it
once, concurrent ends lose no update, dedupe_jobs takes removed jobs out, an import counts
what it brings, and the migration counts the jobs already here."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import itertools
import threading
import types
import zoneinfo
from collections import Counter

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import (
    ENDED_STATUSES,
    ApprovalRequest,
    ApprovalRule,
    Cluster,
    Job,
    JobCallTimeHour,
    JobOutcomeHour,
)
from jobs.models.stats import bucket_middle_ms, call_time_bucket, count_hour
from jobs.services import (
    OUTCOMES,
    PERIODS,
    EndedJob,
    approval_deny,
    approvals_expire,
    count_jobs_added,
    count_jobs_removed,
    job_cancel,
    job_interrupted,
    job_reap_stale,
    job_run,
    job_submit,
    overview_stats,
)
from jobs.services.counting import ROWS_PER_STATEMENT
from tests.helpers import THREADS, TOKEN, make_user, run_concurrently, wait_until
from tests.legacy_files import legacy_job, write_jobs_db

BACKFILL = importlib.import_module("jobs.migrations.0020_job_stats")
MS = dt.timedelta(milliseconds=1)


def hour_of(job: Job) -> dt.datetime:
    ended = (job.finished_at or job.created_at).astimezone(dt.UTC)
    return ended.replace(minute=0, second=0, microsecond=0)


def expected_from_jobs() -> tuple[Counter, Counter]:
    """The counts as the jobs table says they should be, in everyone's rows (0) and each
    operator's, in each span: the hour, the 6 hours from 00:00, 06:00..., the UTC day."""
    outcomes: Counter = Counter()
    call_times: Counter = Counter()
    for job in Job.objects.filter(status__in=ENDED_STATUSES):
        hour = hour_of(job)
        starts = {1: hour, 6: hour.replace(hour=hour.hour // 6 * 6), 24: hour.replace(hour=0)}
        for user, action, (span, start) in itertools.product(
            (0, job.user_id), (0, job.action), starts.items()
        ):
            dims = (user, span, start, job.cluster_id or 0, action)
            outcomes[(*dims, job.status)] += 1
            if job.started_at and job.finished_at:
                call_times[(*dims, call_time_bucket(job.started_at, job.finished_at))] += 1
    return outcomes, call_times


def counted() -> tuple[Counter, Counter]:
    def rows(model, key: str) -> Counter:
        fields = ("user_id", "span_hours", "hour", "cluster_id", "action", key, "count")
        return Counter(
            {
                (u, s, h.astimezone(dt.UTC), c, a, k): n
                for u, s, h, c, a, k, n in model.objects.values_list(*fields)
                if n
            }
        )

    return rows(JobOutcomeHour, "outcome"), rows(JobCallTimeHour, "bucket")


def everyone() -> Counter:
    return Counter(
        {
            outcome: n
            for outcome, n in JobOutcomeHour.objects.filter(user_id=0, span_hours=24, action=0)
            .values_list("outcome")
            .annotate(n=Sum("count"))
        }
    )


def submit(user, cluster, cids: str) -> Job:
    [job] = job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)
    return job


def test_buckets_are_a_quarter_doubling_wide_from_1_ms_to_1_hour():
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert call_time_bucket(t0, t0) == 0
    assert call_time_bucket(t0, t0 + 0.5 * MS) == 0
    assert call_time_bucket(t0, t0 + 2 * MS) == 4
    assert call_time_bucket(t0, t0 + 1000 * MS) == 39
    assert call_time_bucket(t0, t0 + dt.timedelta(hours=5)) == call_time_bucket(
        t0, t0 + dt.timedelta(hours=1)
    )
    kolkata = dt.datetime(2026, 3, 1, 10, 10, tzinfo=zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert count_hour(kolkata, kolkata) == dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)
    assert count_hour(None, t0 + 59 * dt.timedelta(minutes=1)) == t0
    for ms in (3, 57, 870, 12_345, 600_000):
        middle = bucket_middle_ms(call_time_bucket(t0, t0 + ms * MS))
        assert ms / 1.19 < middle < ms * 1.19, ms


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_way_a_job_ends_is_counted_once_and_a_late_result_not_again(
    operator, cluster, fake_cluster, settings
):
    success = submit(operator, cluster, "OK1")
    assert job_run(job_id=success.pk)
    failed = submit(operator, cluster, "E500A")
    assert job_run(job_id=failed.pk)
    cancelled = submit(operator, cluster, "C1")
    assert job_cancel(job_ids=[cancelled.pk], user=operator).cancelled == [cancelled.pk]
    # Refused: it has ended; not counted again.
    assert job_cancel(job_ids=[cancelled.pk], user=operator).refused
    reaped = submit(operator, cluster, "R1")
    Job.objects.filter(pk=reaped.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    never_started = submit(operator, cluster, "N1")
    Job.objects.filter(pk=never_started.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    report = job_reap_stale()
    assert (report.unknown, report.expired) == ([reaped.pk], [never_started.pk])

    # Reaped while its call was out: the result arrives late and changes nothing.
    late = submit(operator, cluster, "SLOW1")
    worker = threading.Thread(target=job_run, kwargs={"job_id": late.pk})
    worker.start()
    wait_until(lambda: Job.objects.get(pk=late.pk).started_at is not None)
    assert job_interrupted(job_id=late.pk, last_seen=timezone.now())
    worker.join()
    assert AuditEntry.objects.filter(job_id=late.pk, event="job.late_result").exists()

    ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))
    approver = make_user("ap1", "Approvers")
    denied = submit(operator, cluster, "D1")
    approval_deny(request_id=denied.approval_id, user=approver, comment="No")
    expired = submit(operator, cluster, "X1")
    ApprovalRequest.objects.filter(pk=expired.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    approvals_expire()
    submit(operator, cluster, "P1")  # pending approval: not ended, not counted

    assert everyone() == Counter(SUCCESS=1, FAILED=2, UNKNOWN=2, CANCELLED=1, DENIED=1, EXPIRED=1)
    assert counted() == expected_from_jobs()
    # The calls of the four started jobs that ended, each in one bucket, twice (everyone's
    # and the operator's) for its action and for all actions, in each of the three spans.
    assert sum(counted()[1].values()) == 2 * 2 * 3 * 4


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_ends_lose_no_update(operator, cluster, fake_cluster):
    per_thread = 4
    jobs = [submit(operator, cluster, f"T{n}") for n in range(THREADS * per_thread)]

    def end(n: int) -> None:
        for job in jobs[n * per_thread : (n + 1) * per_thread]:
            if n % 2:
                assert job_cancel(job_ids=[job.pk], user=operator).cancelled == [job.pk]
            else:
                assert job_run(job_id=job.pk)

    _, errors = run_concurrently(end)
    assert errors == []
    assert everyone() == Counter(
        SUCCESS=THREADS // 2 * per_thread, CANCELLED=THREADS // 2 * per_thread
    )
    assert counted() == expected_from_jobs()


def test_dedupe_takes_removed_jobs_out_and_an_import_counts_what_it_brings(db, tmp_path):
    rows = [
        legacy_job(created_at="2026-01-29 10:00:00", http_status=200, status="success"),
        legacy_job(created_at="2026-01-29 10:00:01", status="success"),
        legacy_job(created_at="2026-01-29 11:30:00", status="failed", cids=["C9"]),
        legacy_job(created_at="2026-01-29 12:00:00", status="IN_PROGRESS", cids=["C8"]),
    ]
    jobs_db = write_jobs_db(tmp_path / "jobs.db", rows)
    # Written in a zone half an hour off UTC: counted in the UTC hour.
    call_command(
        "import_legacy",
        "--jobs-db",
        str(jobs_db),
        "--timezone",
        "Asia/Kolkata",
        stdout=io.StringIO(),
    )
    assert Job.objects.count() == 4
    assert everyone() == Counter(SUCCESS=2, FAILED=1, UNKNOWN=1)
    assert counted() == expected_from_jobs()
    assert {hour.minute for hour in JobOutcomeHour.objects.values_list("hour", flat=True)} == {0}

    call_command("dedupe_jobs", "--apply", stdout=io.StringIO())

    assert Job.objects.count() == 3
    assert everyone() == Counter(SUCCESS=1, FAILED=1, UNKNOWN=1)
    assert counted() == expected_from_jobs()


def test_an_import_counts_more_rows_than_one_statement_adds(db, tmp_path):
    rows = [
        legacy_job(
            created_at=f"2026-01-{1 + n // 24:02d} {n % 24:02d}:00:00",
            user_id=f"op{n % 4}",
            status=("success", "failed")[n % 2],
        )
        for n in range(48)
    ]
    jobs_db = write_jobs_db(tmp_path / "jobs.db", rows)
    call_command("import_legacy", "--jobs-db", str(jobs_db), stdout=io.StringIO())

    outcomes, call_times = counted()
    assert len(outcomes) > 3 * ROWS_PER_STATEMENT
    assert (outcomes, call_times) == expected_from_jobs()


def test_the_migration_counts_the_jobs_already_here(operator, cluster, fake_cluster, tmp_path):
    for cids in ("OK1", "E500A"):
        assert job_run(job_id=submit(operator, cluster, cids).pk)
    cancelled = submit(operator, cluster, "C1")
    job_cancel(job_ids=[cancelled.pk], user=operator)
    write_jobs_db(
        tmp_path / "jobs.db",
        [legacy_job(status="IN_PROGRESS"), legacy_job(created_at="2026-01-29 11:00:00")],
    )
    call_command("import_legacy", "--jobs-db", str(tmp_path / "jobs.db"), stdout=io.StringIO())
    live = counted()
    assert live == expected_from_jobs()
    JobOutcomeHour.objects.all().delete()
    JobCallTimeHour.objects.all().delete()

    BACKFILL.count_ended_jobs(apps, types.SimpleNamespace(connection=connection))

    assert counted() == live


# Call times on and around the buckets' edges (ms), which SQL (PostgreSQL) and Python (SQLite)
# must put in the buckets call_time_bucket says.
EDGES = [0, 0.5, 1, 1.001, 2, 2.378, 4, 10, 999.999, 1000, 1024, 3_600_000, 7_200_000]


def test_the_migration_counts_call_times_as_a_job_end_would(db, operator, monkeypatch):
    monkeypatch.setattr(BACKFILL, "FLUSH_ROWS", 7)
    monkeypatch.setattr(BACKFILL, "UPSERT_ROWS", 3)
    t0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    for n, ms in enumerate(EDGES):
        started = t0 + dt.timedelta(minutes=20 * n)
        Job.objects.create(
            user=operator,
            action=1 + n % 2,
            status="SUCCESS",
            created_at=started,
            started_at=started,
            finished_at=started + ms * MS,
        )

    BACKFILL.count_ended_jobs(apps, types.SimpleNamespace(connection=connection))

    assert counted() == expected_from_jobs()
    assert sum(counted()[1].values()) == len(EDGES) * 2 * 2 * 3


# The read service.

NOW = dt.datetime(2026, 3, 10, 14, 20, tzinfo=dt.UTC)


def ended(
    user,
    cluster,
    at: dt.datetime,
    status: str = "SUCCESS",
    ms: float | None = None,
    action: int = 1,
) -> EndedJob:
    return EndedJob(
        status=status,
        user_id=user.pk,
        cluster_id=cluster.pk if cluster else None,
        action=action,
        created_at=at,
        started_at=None if ms is None else at - ms * MS,
        finished_at=at,
    )


def at(hours_ago: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours_ago)


@pytest.fixture
def clusters(db):
    return {name: baker.make(Cluster, name=name, base_url="http://127.0.0.1:9") for name in "abcd"}


@pytest.mark.parametrize(
    ("period", "count", "first", "last"),
    [
        ("24h", 24, "2026-03-09T15:00", "2026-03-10T14:00"),
        ("7d", 28, "2026-03-03T18:00", "2026-03-10T12:00"),
        ("30d", 30, "2026-02-09T00:00", "2026-03-10T00:00"),
    ],
)
def test_bins_are_aligned_to_utc_and_the_last_ends_at_the_next_hour(
    operator, clusters, period, count, first, last
):
    a = clusters["a"]
    count_jobs_added(
        [
            ended(operator, a, NOW),
            ended(operator, a, at(0.3), "FAILED"),
            ended(operator, None, at(1), "CANCELLED"),
            ended(operator, a, dt.datetime.fromisoformat(first + "+00:00"), "DENIED"),
            # Just before the period: left out.
            ended(operator, a, dt.datetime.fromisoformat(first + "+00:00") - MS, "EXPIRED"),
        ]
    )
    overview = overview_stats(period=period, now=NOW)
    assert len(overview.bins) == count
    assert overview.bins[0].start.isoformat().startswith(first)
    assert overview.bins[-1].start.isoformat().startswith(last)
    assert overview.end == overview.bins[-1].end == dt.datetime(2026, 3, 10, 15, tzinfo=dt.UTC)
    assert overview.start == overview.bins[0].start
    assert overview.bin_seconds == int(PERIODS[period][1].total_seconds())
    for before, after in itertools.pairwise(overview.bins):
        assert before.end == after.start
    assert all(list(b.counts) == OUTCOMES for b in overview.bins)
    assert overview.bins[0].counts["DENIED"] == 1
    totals = Counter()
    for b in overview.bins:
        totals.update(b.counts)
    assert +totals == Counter(SUCCESS=1, FAILED=1, CANCELLED=1, DENIED=1)
    assert overview.bins[-1].counts["SUCCESS"] == 1
    assert sum(b.total for b in overview.bins) == 4


def test_failure_rates_list_the_worst_now_first(operator, clusters):
    a, b, c, d = clusters.values()
    count_jobs_added(
        [
            # a: 1 of 2 failed in the last hour, 1 of 3 in the period.
            ended(operator, a, at(0.1), "FAILED"),
            ended(operator, a, at(0.2)),
            ended(operator, a, at(5)),
            # b: all 3 failed, none sent in the last hour.
            *(ended(operator, b, at(5), "UNKNOWN") for _ in range(3)),
            # c: its one job in the last hour (the hour before the current one) failed.
            ended(operator, c, at(1.3), "FAILED"),
            # d: none failed, one sent in the last hour: before b, which sent none in it.
            ended(operator, d, at(0.1), "CANCELLED"),
            ended(operator, d, at(0.1)),
        ]
    )
    # None sent in the last hour either, and none failed: after b whatever its name.
    calm = baker.make(Cluster, name="aa", base_url="http://127.0.0.1:9")
    count_jobs_added([ended(operator, calm, at(5))])
    # A cluster whose only job was removed since.
    removed = baker.make(Cluster, name="e", base_url="http://127.0.0.1:9")
    count_jobs_added([ended(operator, removed, at(0.1), "FAILED")])
    count_jobs_removed([ended(operator, removed, at(0.1), "FAILED")])
    failures = overview_stats(now=NOW).failures
    assert [f.cluster_name for f in failures] == ["c", "a", "d", "b", "aa"]
    by_name = {f.cluster_name: f for f in failures}
    assert (by_name["a"].sent, by_name["a"].failed, by_name["a"].rate) == (3, 1, 1 / 3)
    assert (by_name["a"].sent_last_hour, by_name["a"].failed_last_hour) == (2, 1)
    assert by_name["a"].rate_last_hour == 0.5
    assert (by_name["b"].rate, by_name["b"].rate_last_hour) == (1.0, None)
    assert by_name["c"].rate_last_hour == 1.0
    assert (by_name["d"].sent, by_name["d"].rate, by_name["d"].rate_last_hour) == (1, 0.0, 0.0)
    # A cluster with no job in the period is left out, and so are jobs without a cluster.
    count_jobs_added([ended(operator, None, at(0.1), "FAILED")])
    assert len(overview_stats(now=NOW).failures) == 5


def test_call_time_percentiles_per_cluster_and_bin_within_the_bucket_precision(operator, clusters):
    a, b = clusters["a"], clusters["b"]
    count_jobs_added(
        [
            *(ended(operator, a, at(0.1), ms=100) for _ in range(90)),
            *(ended(operator, a, at(0.1), "FAILED", ms=2000) for _ in range(10)),
            ended(operator, b, at(3), ms=7),
        ]
    )
    times = overview_stats(now=NOW).call_times
    assert [t.cluster_name for t in times] == ["a", "b"]
    last = times[0].points[-1]
    assert last.calls == 100
    assert 100 / 1.19 < last.p50_ms < 100 * 1.19
    assert 2000 / 1.19 < last.p95_ms < 2000 * 1.19
    assert len(times[0].points) == 24
    assert all(p.calls == 0 and p.p50_ms is None for p in times[0].points[:-1])
    assert [p.calls for p in times[1].points].count(1) == 1
    assert 7 / 1.19 < times[1].points[-4].p95_ms < 7 * 1.19


def test_an_operator_sees_their_own_and_filters_narrow_it(operator, clusters):
    other = make_user("op2", "Operators")
    a, b = clusters["a"], clusters["b"]
    count_jobs_added(
        [
            ended(operator, a, at(0.1), ms=10),
            ended(other, a, at(0.1), "FAILED", ms=10),
            ended(other, b, at(0.1), "FAILED", action=2),
        ]
    )

    def totals(**filters) -> Counter:
        result = Counter()
        for b in overview_stats(now=NOW, **filters).bins:
            result.update(b.counts)
        return +result

    assert totals() == Counter(SUCCESS=1, FAILED=2)
    assert totals(user_id=operator.pk) == Counter(SUCCESS=1)
    assert totals(user_id=other.pk) == Counter(FAILED=2)
    assert totals(cluster_id=b.pk) == Counter(FAILED=1)
    assert totals(action=1) == Counter(SUCCESS=1, FAILED=1)
    mine = overview_stats(now=NOW, user_id=operator.pk)
    assert [f.cluster_name for f in mine.failures] == ["a"]
    assert mine.call_times[0].points[-1].calls == 1


def test_a_deleted_clusters_history_stays_readable(operator, clusters):
    gone = clusters["d"]
    count_jobs_added([ended(operator, gone, at(0.1), "FAILED", ms=5)])
    gone_id = gone.pk
    gone.delete()
    overview = overview_stats(now=NOW)
    assert [f.cluster_name for f in overview.failures] == [f"deleted cluster {gone_id}"]
    assert overview.call_times[0].cluster_id == gone_id


def test_the_version_changes_with_the_numbers_only(operator, clusters):
    count_jobs_added([ended(operator, clusters["a"], at(0.1))])
    first = overview_stats(now=NOW).version
    assert overview_stats(now=NOW + dt.timedelta(minutes=5)).version == first
    count_jobs_added([ended(operator, clusters["a"], at(0.1))])
    assert overview_stats(now=NOW).version != first


def test_jobs_that_have_not_ended_are_passed_over(operator, clusters):
    for status in ("IN_PROGRESS", "PENDING_APPROVAL"):
        count_jobs_added([ended(operator, clusters["a"], at(0.1), status, ms=3)])
        count_jobs_removed([ended(operator, clusters["a"], at(0.1), status, ms=3)])
    assert not JobOutcomeHour.objects.exists()
    assert not JobCallTimeHour.objects.exists()


def test_an_unknown_period_is_refused(db):
    with pytest.raises(ValueError, match="1h"):
        overview_stats(period="1h")


def test_a_read_never_touches_the_jobs_table(operator, clusters):
    count_jobs_added([ended(operator, clusters["a"], at(0.1), ms=3)])
    with CaptureQueriesContext(connection) as queries:
        overview_stats(period="30d", now=NOW, cluster_id=clusters["a"].pk, action=1)
    assert len(queries) <= 5
    assert not any('"jobs_job"' in q["sql"] for q in queries)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migrating_counts_the_jobs_ended_before_it(operator):
    executor = MigrationExecutor(connection)
    executor.migrate([("jobs", "0019_per_run")])
    old = executor.loader.project_state([("jobs", "0019_per_run")]).apps
    OldJob = old.get_model("jobs", "Job")
    t0 = dt.datetime(2026, 3, 1, 9, 59, tzinfo=dt.UTC)
    for n, status in enumerate(["SUCCESS", "FAILED", "CANCELLED", "IN_PROGRESS", "UNKNOWN"]):
        started = None if status == "CANCELLED" else t0 + n * dt.timedelta(seconds=30)
        OldJob.objects.create(
            user_id=operator.pk,
            action=1,
            status=status,
            created_at=t0,
            started_at=started,
            finished_at=None if status in ("IN_PROGRESS", "UNKNOWN") else t0 + n * MS * 70_000,
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert everyone() == Counter(SUCCESS=1, FAILED=1, CANCELLED=1, UNKNOWN=1)
    assert counted() == expected_from_jobs()
    assert sum(counted()[1].values()) == 2 * 2 * 2 * 3
