"""The daily audit purge housekeeping runs (ops.audit_retention): only with
TMS_AUDIT_RETENTION_DAYS and TMS_ARCHIVE_DIR both set, once a day, then the hourly chain check
verifies from the anchor; a retention below the floor stops start-up."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEntry, ChainCheck
from audit.verify import verify_chain
from ops import audit_retention
from ops.audit_retention import audit_retention_pass
from tests.fresh_settings import start
from tests.helpers import run_concurrently
from tests.test_purge_audit import write_old, write_recent


@pytest.fixture
def retention(settings, tmp_path):
    settings.TMS_AUDIT_RETENTION_DAYS = 30
    settings.TMS_ARCHIVE_DIR = tmp_path
    return tmp_path


def test_housekeeping_purges_the_audit_trail_past_retention_then_checks_the_chain(db, retention):
    write_old(40)
    write_recent(3)

    call_command("housekeeping", "--once", stdout=io.StringIO())

    [archive] = retention.iterdir()
    assert archive.name.startswith(f"audit-{timezone.now().astimezone(dt.UTC):%Y%m%dT}")
    entry = AuditEntry.objects.get(event="audit.purged")
    assert (entry.actor_username, entry.details["purged"]) == ("housekeeping", 40)
    assert entry.details["archive"] == str(archive)
    assert not AuditEntry.objects.filter(seq__lte=40).exists()
    # The hourly check ran after the purge and found the chain whole from its anchor.
    check = ChainCheck.objects.get()
    assert (check.head_seq, check.reported) == (entry.seq, "")


@pytest.mark.parametrize("unset", ["TMS_AUDIT_RETENTION_DAYS", "TMS_ARCHIVE_DIR"])
def test_without_both_settings_nothing_is_purged(db, retention, settings, unset):
    write_old(5)
    setattr(settings, unset, None)

    call_command("housekeeping", "--once", stdout=io.StringIO())

    assert AuditEntry.objects.filter(seq__lte=5).count() == 5
    assert list(retention.iterdir()) == []


def test_once_a_day_and_a_backlog_over_the_next_passes(db, retention, monkeypatch):
    monkeypatch.setattr(audit_retention, "PASS_LIMIT", 30)
    write_old(70)
    # Noon: seconds later is the same day, wherever the test runs.
    now = timezone.localtime().replace(hour=12, minute=0)

    reports = [audit_retention_pass(now=now + dt.timedelta(seconds=n)) for n in range(4)]

    # 30, 30 and 10: the day's run is claimed again until the backlog is gone, then not.
    assert [r.purged if r else None for r in reports] == [30, 30, 10, None]
    assert len(list(retention.iterdir())) == 3
    assert AuditEntry.objects.filter(event="audit.purged").count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_passes_at_once_purge_once_a_day(retention):
    write_old(30)
    now = timezone.localtime().replace(hour=12, minute=0)

    reports, errors = run_concurrently(lambda n: audit_retention_pass(now=now))

    assert errors == []
    assert [report.purged for report in reports if report is not None] == [30]
    assert len(list(retention.iterdir())) == 1
    assert AuditEntry.objects.filter(event="audit.purged").count() == 1
    assert verify_chain().ok
    # Later the same day: nothing; the next day: a run of its own (nothing old is left).
    assert audit_retention_pass(now=now + dt.timedelta(minutes=1)) is None
    assert audit_retention_pass(now=now + dt.timedelta(days=1)).purged == 0


@pytest.mark.parametrize("value", ["0", "6", "-1", "a week"])
def test_a_retention_below_a_week_stops_start_up(value):
    result = start(SECRET_KEY="k" * 50, TMS_AUDIT_RETENTION_DAYS=value)
    assert result.returncode != 0
    assert "The environment variable TMS_AUDIT_RETENTION_DAYS is malformed" in result.stderr


def test_the_audit_retention_is_unset_by_default_and_takes_a_week():
    result = start("settings.TMS_AUDIT_RETENTION_DAYS", SECRET_KEY="k" * 50)
    assert result.stdout.strip() == "None", result.stderr
    result = start(
        "settings.TMS_AUDIT_RETENTION_DAYS", SECRET_KEY="k" * 50, TMS_AUDIT_RETENTION_DAYS="7"
    )
    assert result.stdout.strip() == "7", result.stderr
