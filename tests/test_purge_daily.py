"""The daily purge housekeeping runs (ops.retention): only with TMS_RETENTION_DAYS and
TMS_ARCHIVE_DIR both set, once a day whichever of several passes asks at once."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import Job
from jobs.services import retention as jobs_retention
from ops import retention as ops_retention
from ops.retention import retention_pass
from tests.helpers import run_concurrently
from tests.test_purge_jobs import make_job


@pytest.fixture
def retention(settings, tmp_path):
    settings.TMS_RETENTION_DAYS = 30
    settings.TMS_ARCHIVE_DIR = tmp_path
    return tmp_path


def test_housekeeping_purges_the_jobs_past_retention_into_a_dated_archive(operator, retention):
    old = make_job(operator, "SUCCESS")
    recent = make_job(operator, "SUCCESS", ended=timezone.now() - dt.timedelta(days=29))

    call_command("housekeeping", "--once", stdout=io.StringIO())

    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk}
    [archive] = retention.iterdir()
    assert archive.name.startswith(f"jobs-{timezone.now().astimezone(dt.UTC):%Y%m%dT}")
    assert archive.name.endswith("Z.jsonl.gz")
    entry = AuditEntry.objects.get(event="jobs.purged")
    assert (entry.actor_username, entry.details["purged"]) == ("housekeeping", 1)
    assert entry.details["archive"] == str(archive)
    assert old.pk not in set(Job.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("unset", ["TMS_RETENTION_DAYS", "TMS_ARCHIVE_DIR"])
def test_without_both_settings_nothing_is_purged(operator, retention, settings, unset):
    make_job(operator, "SUCCESS")
    setattr(settings, unset, None)

    call_command("housekeeping", "--once", stdout=io.StringIO())

    assert Job.objects.count() == 1
    assert list(retention.iterdir()) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_passes_at_once_purge_once_a_day(operator, retention):
    for _ in range(3):
        make_job(operator, "FAILED")
    # Noon: a minute later is the same day, wherever the test runs.
    now = timezone.localtime().replace(hour=12, minute=0)

    reports, errors = run_concurrently(lambda n: retention_pass(now=now))

    assert errors == []
    ran = [report for report in reports if report is not None]
    assert len(ran) == 1
    assert ran[0].purged == 3
    assert len(list(retention.iterdir())) == 1
    assert AuditEntry.objects.filter(event="jobs.purged").count() == 1

    # Later the same day: nothing; the next day: a run of its own.
    make_job(operator, "FAILED")
    assert retention_pass(now=now + dt.timedelta(minutes=1)) is None
    assert Job.objects.count() == 1
    assert retention_pass(now=now + dt.timedelta(days=1)).purged == 1
    assert len(list(retention.iterdir())) == 2


def test_a_backlog_over_a_pass_limit_goes_over_the_next_passes(operator, retention, monkeypatch):
    """The first run after retention is set may find years of jobs: each housekeeping pass
    purges at most PASS_LIMIT of them (its other work waits for it), the next takes the rest."""
    monkeypatch.setattr(jobs_retention, "BATCH", 2)
    monkeypatch.setattr(ops_retention, "PASS_LIMIT", 2)
    for _ in range(5):
        make_job(operator, "SUCCESS")
    now = timezone.localtime().replace(hour=12, minute=0)

    purged = [retention_pass(now=now + dt.timedelta(minutes=n)) for n in range(4)]

    assert [(r.purged, r.more) for r in purged[:3]] == [(2, True), (2, True), (1, False)]
    assert purged[3] is None
    assert not Job.objects.exists()
    assert len(list(retention.iterdir())) == 3
    assert AuditEntry.objects.filter(event="jobs.purged").count() == 3
