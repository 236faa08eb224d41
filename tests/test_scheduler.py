"""The scheduler pass at a given `now` (no sleeping, no clock faking): which occurrences of a
schedule fire, are skipped, fail or queue, across daylight-saving changes, after downtime,
behind an unfinished run, and when one schedule is broken."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import ChangeFreeze, Cluster, Job, RunGrant
from jobs.services import (
    credential_set,
    freeze_create,
    job_cancel,
    job_submit,
    run_grant_delete,
)
from notifications.mail import notice_subject
from notifications.models import Notice, WebhookEndpoint
from schedules.models import Occurrence, Schedule
from schedules.services import (
    MISSED_RECORDED,
    saved_set_action_create,
    saved_set_action_edit,
    schedule_create,
    schedule_pause,
    schedule_resume,
    scheduler_pass,
)
from tests.helpers import make_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC
STORED = "svc-scheduler-test-credential"


def at(text: str) -> dt.datetime:
    """An aware instant from ISO text; naive text is UTC."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.fixture
def stored(cluster):
    credential_set(cluster=cluster, token=STORED)
    return cluster


@pytest.fixture
def saved(operator, stored):
    return saved_set_action_create(
        user=operator, name="nightly", action="PE-Finalize", cluster=stored, cids="C1 C2 C3"
    )


def schedule(saved, created: str, **fields) -> Schedule:
    return schedule_create(user=saved.owner, saved_set_action=saved, now=at(created), **fields)


def run_passes(start: str, end: str, every: dt.timedelta, *, cancel: bool = True) -> None:
    """Scheduler passes from `start` to `end`; with `cancel`, the runs each made are ended
    (cancelled while queued) before the next pass, so that no occurrence overlaps."""
    now, last = at(start), at(end)
    while now <= last:
        scheduler_pass(now=now)
        if cancel:
            queued = list(Job.objects.filter(status="IN_PROGRESS").values_list("pk", flat=True))
            if queued:
                job_cancel(job_ids=queued)
        now += every


def occurrences(sched: Schedule, state: str | None = None) -> list[dt.datetime]:
    rows = Occurrence.objects.filter(schedule=sched).order_by("occurs_at")
    if state:
        rows = rows.filter(state=state)
    return list(rows.values_list("occurs_at", flat=True))


def utc(*texts: str) -> list[dt.datetime]:
    return [at(text) for text in texts]


# -- Daylight-saving days (Europe/Berlin: 2027-03-28 02:00 -> 03:00, 2027-10-31 03:00 -> 02:00)


def test_a_time_in_the_spring_gap_runs_once_at_the_first_instant_after_it(saved):
    sched = schedule(
        saved,
        "2027-03-27T12:00",
        rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        timezone_name="Europe/Berlin",
    )
    run_passes("2027-03-27T23:00", "2027-03-28T03:00", dt.timedelta(seconds=50))
    assert occurrences(sched) == utc("2027-03-28T01:00")
    [fired] = Occurrence.objects.filter(schedule=sched)
    assert fired.state == "fired" and fired.job is not None and fired.version == 1


def test_a_time_in_the_spring_gap_is_skipped_when_the_schedule_says_so(saved):
    sched = schedule(
        saved,
        "2027-03-27T12:00",
        rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        timezone_name="Europe/Berlin",
        missing_dst="skip",
    )
    run_passes("2027-03-27T23:00", "2027-03-29T01:00", dt.timedelta(minutes=5))
    # Nothing on the 28th; the 29th at 02:30 CEST.
    assert occurrences(sched) == utc("2027-03-29T00:30")


def test_a_repeated_time_in_the_autumn_runs_once_at_its_first_occurrence(saved):
    sched = schedule(
        saved,
        "2027-10-30T12:00",
        rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        timezone_name="Europe/Berlin",
    )
    run_passes("2027-10-30T22:00", "2027-10-31T04:00", dt.timedelta(seconds=50))
    assert occurrences(sched) == utc("2027-10-31T00:30")
    assert occurrences(sched, "fired") == utc("2027-10-31T00:30")


def test_an_hourly_rule_follows_the_wall_clock_across_both_changes(saved):
    sched = schedule(
        saved, "2027-03-27T21:30", rrule="FREQ=HOURLY;BYMINUTE=0", timezone_name="Europe/Berlin"
    )
    run_passes("2027-03-27T21:30:30", "2027-03-28T03:30", dt.timedelta(minutes=1))
    # Local 23:00, 00:00, 01:00, 02:00 (missing: 03:00 CEST), 03:00, 04:00, 05:00: the missing
    # 02:00 and 03:00 are one instant, run once.
    assert occurrences(sched) == utc(
        "2027-03-27T22:00",
        "2027-03-27T23:00",
        "2027-03-28T00:00",
        "2027-03-28T01:00",
        "2027-03-28T02:00",
        "2027-03-28T03:00",
    )
    assert occurrences(sched) == occurrences(sched, "fired")
    Occurrence.objects.all().delete()
    Schedule.objects.filter(pk=sched.pk).update(checked_through=at("2027-10-30T21:30"))
    run_passes("2027-10-30T21:30:30", "2027-10-31T03:30", dt.timedelta(minutes=1))
    # Local 00:00 .. 05:00 on the 31st: the repeated 02:00 runs once, at its first (00:00 UTC).
    assert occurrences(sched) == utc(
        "2027-10-30T22:00",
        "2027-10-30T23:00",
        "2027-10-31T00:00",
        "2027-10-31T02:00",
        "2027-10-31T03:00",
    )


def test_a_byhour_rule_across_both_changes(saved):
    sched = schedule(
        saved,
        "2027-03-27T12:00",
        rrule="FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=30",
        timezone_name="Europe/Berlin",
    )
    run_passes("2027-03-27T23:00", "2027-03-28T02:00", dt.timedelta(minutes=1))
    # 01:30 CET, 02:30 (in the gap: 03:00 CEST), 03:30 CEST.
    assert occurrences(sched) == utc("2027-03-28T00:30", "2027-03-28T01:00", "2027-03-28T01:30")
    Occurrence.objects.all().delete()
    Schedule.objects.filter(pk=sched.pk).update(checked_through=at("2027-10-30T12:00"))
    run_passes("2027-10-30T23:00", "2027-10-31T03:00", dt.timedelta(minutes=1))
    # 01:30 CEST, 02:30 CEST (first of two), 03:30 CET.
    assert occurrences(sched) == utc("2027-10-30T23:30", "2027-10-31T00:30", "2027-10-31T02:30")


def test_a_start_in_summer_keeps_its_local_time_in_winter(saved):
    # Anchored at 06:00 CEST (04:00 UTC) in July; in December 06:00 CET is 05:00 UTC.
    sched = schedule(
        saved,
        "2027-12-14T12:00",
        rrule="FREQ=DAILY",
        timezone_name="Europe/Berlin",
        start=at("2027-07-01T06:00+02:00"),
    )
    run_passes("2027-12-15T03:55", "2027-12-15T06:05", dt.timedelta(seconds=30))
    assert occurrences(sched, "fired") == utc("2027-12-15T05:00")


def test_lord_howe_whose_clocks_move_by_half_an_hour(saved):
    # Its clocks go from 02:00 to 02:30 on 2027-10-03 and from 02:00 back to 01:30 on
    # 2027-04-04 (UTC+10:30 in winter, +11 in summer).
    gap = schedule(
        saved,
        "2027-10-01T00:00",
        rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=15",
        timezone_name="Australia/Lord_Howe",
    )
    run_passes("2027-10-01T15:00", "2027-10-03T16:00", dt.timedelta(minutes=5))
    # 02:15 on the 2nd is 15:45 UTC on the 1st (+10:30); on the 3rd, 02:15 is in the gap:
    # the first instant after it, 02:30 (+11), 15:30 UTC on the 2nd; on the 4th, 15:15 UTC.
    assert occurrences(gap) == utc("2027-10-01T15:45", "2027-10-02T15:30", "2027-10-03T15:15")
    gap.delete()
    repeated = schedule(
        saved,
        "2027-04-02T00:00",
        rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=45",
        timezone_name="Australia/Lord_Howe",
    )
    run_passes("2027-04-02T14:00", "2027-04-03T16:00", dt.timedelta(minutes=5))
    # On the 3rd, 01:45 is 14:45 UTC on the 2nd (+11); on the 4th it happens at 14:45 UTC
    # (+11) and again at 15:15 UTC (+10:30): once, the first.
    assert occurrences(repeated) == utc("2027-04-02T14:45", "2027-04-03T14:45")


# -- One-off runs


def test_a_one_off_schedule_fires_once_at_its_time(saved):
    sched = schedule(saved, "2027-01-01T00:00", run_at=at("2027-01-02T06:00+01:00"))
    scheduler_pass(now=at("2027-01-02T04:59:59"))
    assert occurrences(sched) == []
    scheduler_pass(now=at("2027-01-02T05:00:01"))
    scheduler_pass(now=at("2027-01-02T05:00:06"))
    scheduler_pass(now=at("2027-01-03T05:00:00"))
    [fired] = Occurrence.objects.filter(schedule=sched)
    assert (fired.occurs_at, fired.state) == (at("2027-01-02T05:00"), "fired")
    job = fired.job
    assert (job.user, job.action, job.cluster, job.customer_count) == (
        saved.owner,
        4,
        saved.cluster,
        3,
    )
    assert job.uses_stored_credential
    assert job.idempotency_key == f"schedule:{sched.pk}:2027-01-02T05:00:00Z"
    assert AuditEntry.objects.filter(event="schedule.fired", job_id=job.pk).count() == 1


def test_a_run_records_the_version_it_ran(saved, operator):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T06:00:01"))
    job_cancel(job_ids=list(Job.objects.values_list("pk", flat=True)))
    saved_set_action_edit(saved=saved, user=operator, cids="C9")
    scheduler_pass(now=at("2027-01-02T06:00:01"))
    assert list(
        Occurrence.objects.filter(schedule=sched)
        .order_by("occurs_at")
        .values_list("version", "job__customer_count")
    ) == [(1, 3), (2, 1)]


# -- Missed occurrences (every scheduler down)


def test_after_downtime_only_the_latest_missed_run_fires_within_the_grace(saved):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T00:00:30"))
    # Down from 00:01 to 04:10: 01:00, 02:00, 03:00 missed; 04:00 is 10 minutes late.
    report = scheduler_pass(now=at("2027-01-01T04:10"))
    assert (report.fired, report.skipped) == (1, 3)
    rows = Occurrence.objects.filter(schedule=sched).order_by("occurs_at")
    assert [(r.occurs_at.hour, r.state) for r in rows] == [
        (1, "skipped"),
        (2, "skipped"),
        (3, "skipped"),
        (4, "fired"),
    ]
    assert all(r.reason.startswith("missed: a later occurrence") for r in rows[:3])
    assert Job.objects.count() == 1


def test_a_missed_run_later_than_the_grace_is_skipped_with_its_reason(saved):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30")
    scheduler_pass(now=at("2027-01-01T02:46"))
    [skipped] = Occurrence.objects.filter(schedule=sched)
    assert skipped.state == "skipped"
    assert skipped.reason == "missed: 16 min late, more than the 15 min grace"
    assert not Job.objects.exists()


def test_a_schedule_that_skips_missed_runs_runs_only_on_time(saved):
    sched = schedule(
        saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", missed="skip"
    )
    scheduler_pass(now=at("2027-01-01T02:32"))
    assert Occurrence.objects.get(schedule=sched).state == "skipped"
    scheduler_pass(now=at("2027-01-02T02:30:59"))
    assert occurrences(sched, "fired") == utc("2027-01-02T02:30")


def test_a_long_outage_records_a_few_missed_occurrences_and_counts_the_rest(saved):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-03T00:05"))
    # 48 due: the latest fires, the 5 before it are recorded, the other 42 only counted.
    rows = list(Occurrence.objects.filter(schedule=sched).order_by("occurs_at"))
    assert len(rows) == MISSED_RECORDED + 1
    assert rows[-1].state == "fired"
    [summary] = AuditEntry.objects.filter(event="schedule.skipped", details__missed__gt=0).exclude(
        details__has_key="occurs_at"
    )
    assert summary.details["missed"] == 47
    assert summary.details["recorded"] == MISSED_RECORDED


def test_a_paused_schedule_does_not_fire_and_missed_rules_apply_on_resume(saved, operator):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0")
    assert schedule_pause(schedule=sched, user=operator)
    scheduler_pass(now=at("2027-01-01T01:00:10"))
    scheduler_pass(now=at("2027-01-01T02:00:10"))
    assert occurrences(sched) == []
    assert schedule_resume(schedule=sched, user=operator)
    scheduler_pass(now=at("2027-01-01T02:05"))
    assert [(o.hour, s) for o, s in Occurrence.objects.values_list("occurs_at", "state")] == [
        (2, "fired"),
        (1, "skipped"),
    ]
    events = set(AuditEntry.objects.values_list("event", flat=True))
    assert {"schedule.paused", "schedule.resumed"} <= events


# -- Overlap: the previous run unfinished


def test_an_occurrence_overlapping_the_previous_run_is_skipped(saved):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T01:00:05"))
    [first] = Job.objects.all()
    scheduler_pass(now=at("2027-01-01T02:00:05"))
    later = Occurrence.objects.get(schedule=sched, occurs_at=at("2027-01-01T02:00"))
    assert later.state == "skipped"
    assert later.reason == f"overlap: the previous run (job {first.pk}) is in progress"
    assert Job.objects.count() == 1


def test_an_occurrence_queued_behind_the_previous_run_fires_when_it_ends(saved, operator):
    schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0", overlap="queue")
    scheduler_pass(now=at("2027-01-01T01:00:05"))
    [first] = Job.objects.all()
    scheduler_pass(now=at("2027-01-01T02:00:05"))
    scheduler_pass(now=at("2027-01-01T03:00:05"))
    states = dict(Occurrence.objects.values_list("occurs_at__hour", "state"))
    # One queued behind the run; the next skipped: never two waiting, never two at once.
    assert states == {1: "fired", 2: "queued", 3: "skipped"}
    assert AuditEntry.objects.filter(event="schedule.queued").count() == 1
    scheduler_pass(now=at("2027-01-01T03:10"))
    assert Job.objects.count() == 1
    job_cancel(job_ids=[first.pk], user=operator)
    scheduler_pass(now=at("2027-01-01T03:20"))
    queued = Occurrence.objects.get(occurs_at=at("2027-01-01T02:00"))
    assert queued.state == "fired" and queued.job is not None and queued.job != first
    scheduler_pass(now=at("2027-01-01T03:30"))
    assert Job.objects.count() == 2


def test_a_run_awaiting_approval_counts_as_unfinished(saved):
    baker.make(
        "jobs.ApprovalRule",
        cluster=saved.cluster,
        approvers_group=baker.make("auth.Group"),
        per_run=True,
    )
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=HOURLY;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T01:00:05"))
    assert Job.objects.get().status == "PENDING_APPROVAL"
    scheduler_pass(now=at("2027-01-01T02:00:05"))
    assert occurrences(sched, "skipped") == utc("2027-01-01T02:00")


# -- Broken schedules fail alone


@pytest.fixture
def healthy(operator, stored):
    other = saved_set_action_create(
        user=operator, name="healthy", action=1, cluster=stored, cids="H1"
    )
    return schedule(other, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")


def test_a_rule_that_no_longer_parses_pauses_its_schedule_alone(saved, healthy):
    broken = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    Schedule.objects.filter(pk=broken.pk).update(rrule="FREQ=SECONDLY")
    report = scheduler_pass(now=at("2027-01-01T06:00:05"))
    scheduler_pass(now=at("2027-01-01T06:00:10"))
    assert (report.fired, report.failed) == (1, 1)
    [failed] = Occurrence.objects.filter(schedule=broken)
    assert failed.state == "failed" and "no longer parses" in failed.reason
    broken.refresh_from_db()
    assert broken.paused
    assert occurrences(healthy, "fired") == utc("2027-01-01T06:00")


def failed_reason(sched: Schedule) -> str:
    [occurrence] = Occurrence.objects.filter(schedule=sched)
    assert occurrence.state == "failed" and occurrence.job is None
    assert AuditEntry.objects.filter(event="schedule.failed", details__schedule=sched.pk).exists()
    return occurrence.reason


def test_a_deleted_cluster_fails_its_schedule_alone(operator, healthy, fake_cluster):
    doomed = baker.make(Cluster, name="doomed", base_url=fake_cluster.url, is_active=True)
    credential_set(cluster=doomed, token=STORED)
    saved = saved_set_action_create(user=operator, name="x", action=1, cluster=doomed, cids="D1")
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    doomed.delete()
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    assert failed_reason(sched) == "The saved Set Action's cluster was deleted."
    assert occurrences(healthy, "fired") == utc("2027-01-01T06:00")


def test_an_inactive_cluster_fails_the_run(saved, healthy, fake_cluster):
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    Cluster.objects.filter(pk=saved.cluster_id).update(is_active=False)
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    assert failed_reason(sched) == "Cluster eu1 is inactive."
    assert occurrences(healthy, "failed") == utc("2027-01-01T06:00")


def test_an_owner_who_lost_the_grant_fails_the_run(stored, healthy):
    owner = make_user("op2")
    owner.user_permissions.add(Permission.objects.get(codename="run_set_action"))
    grant = baker.make(RunGrant, user=owner, cluster=stored)
    saved = saved_set_action_create(user=owner, name="mine", action=1, cluster=stored, cids="G1")
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    run_grant_delete(grant=grant)
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    assert "no run grant covers it" in failed_reason(sched)
    assert occurrences(healthy, "fired") == utc("2027-01-01T06:00")


def test_a_cluster_without_stored_credential_fails_the_run(operator, cluster):
    saved = saved_set_action_create(user=operator, name="n", action=1, cluster=cluster, cids="N1")
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    assert "stored credential" in failed_reason(sched)
    assert not Job.objects.exists()


def test_customers_busy_on_the_cluster_fail_the_run(saved, healthy, operator):
    job_submit(user=operator, action=1, cluster=saved.cluster, cids="C2", token="tok-x")
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    assert "already have a job in progress" in failed_reason(sched)
    assert occurrences(healthy, "fired") == utc("2027-01-01T06:00")


def test_a_failed_run_notifies_the_owner_and_subscribed_webhooks_once(
    operator, cluster, mail, smtp_server, run_queued_tasks
):
    operator.email = "op1@example.test"
    operator.save()
    WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/hook", secret="s" * 32, events=["schedule.failed"]
    )
    unsubscribed = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/other", secret="s" * 32)
    saved = saved_set_action_create(user=operator, name="n", action=1, cluster=cluster, cids="N1")
    sched = schedule(saved, "2027-01-01T00:00", rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0")
    scheduler_pass(now=at("2027-01-01T06:00:05"))
    scheduler_pass(now=at("2027-01-01T06:00:10"))
    notices = Notice.objects.filter(event="schedule.failed")
    assert sorted(notices.values_list("channel", flat=True)) == ["email", "webhook"]
    assert not notices.filter(endpoint=unsubscribed).exists()
    payload = notices.first().payload
    assert (payload["schedule_id"], payload["name"], payload["cluster"]) == (sched.pk, "n", "eu1")
    assert "stored credential" in payload["error"]
    subject = "[tmsdash] Scheduled run of n failed: Trans-Begin on eu1"
    assert notice_subject(payload) == subject
    run_queued_tasks()
    [message] = smtp_server.messages
    assert message["Subject"] == subject
    assert "stored credential" in message.get_body(("plain",)).get_content()


def test_an_occurrence_during_a_change_freeze_is_skipped_with_the_freeze_as_reason(saved):
    # The freeze covers the clock's now, which is when a submit is refused.
    now = timezone.now().replace(microsecond=0)
    freeze_create(
        freeze=ChangeFreeze(
            cluster=saved.cluster,
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(hours=1),
            reason="Year-end freeze",
        )
    )
    sched = schedule(saved, (now - dt.timedelta(hours=1)).isoformat(), run_at=now)
    scheduler_pass(now=now + dt.timedelta(seconds=5))
    [skipped] = Occurrence.objects.filter(schedule=sched)
    assert skipped.state == "skipped" and skipped.job is None
    assert "Year-end freeze" in skipped.reason
    assert not Job.objects.exists()
    # A freeze is no failure: nobody is told a run failed.
    assert not Notice.objects.filter(event="schedule.failed").exists()
    assert AuditEntry.objects.filter(event="schedule.skipped").count() == 1
