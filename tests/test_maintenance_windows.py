"""Maintenance windows: a cluster with windows takes jobs at any time but sends them only while
one is open (each opening an occurrence of its RRULE in its time zone, lib.recurrence); the
claim holds the rest until the next opening, which the job's page shows. Windows are made and
removed through the API and the admin, audited; bad input writes nothing.

A real worker holding a job until its window opens is in tests/test_freeze_workers.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import ChangeFreeze, Job, MaintenanceWindow
from jobs.services import job_run, job_submit
from jobs.services.freezes import freeze_create, window_create, window_delete, window_state
from tests.helpers import TOKEN, make_user, row_counts

BERLIN = "Europe/Berlin"
SATURDAY_NIGHT = "FREQ=WEEKLY;BYDAY=SA;BYHOUR=22;BYMINUTE=0;BYSECOND=0"
FOUR_HOURS = 4 * 3600
PROBLEM = "application/problem+json"


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def window(cluster, rrule=SATURDAY_NIGHT, *, starts_at=None, seconds=FOUR_HOURS, tz=BERLIN):
    return window_create(
        window=MaintenanceWindow(
            cluster=cluster,
            rrule=rrule,
            timezone=tz,
            starts_at=starts_at or utc(2027, 1, 1),
            duration_seconds=seconds,
        )
    )


def written() -> dict[str, int]:
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def test_a_cluster_without_windows_is_always_open(cluster):
    assert window_state(cluster.pk, timezone.now()) is None


@pytest.mark.parametrize(
    ("at", "open", "until", "opens_at"),
    [
        # Saturday 21:30 in Berlin, winter (UTC+1): closed, opens at 22:00 local.
        (utc(2027, 1, 9, 20, 30), False, None, utc(2027, 1, 9, 21)),
        (utc(2027, 1, 9, 21), True, utc(2027, 1, 10, 1), None),
        (utc(2027, 1, 10, 0, 59), True, utc(2027, 1, 10, 1), None),
        # Closed at its end; the next opening a week later.
        (utc(2027, 1, 10, 1), False, None, utc(2027, 1, 16, 21)),
        # Summer (UTC+2): 22:00 local is 20:00 UTC.
        (utc(2027, 7, 10, 19), False, None, utc(2027, 7, 10, 20)),
        (utc(2027, 7, 10, 23, 30), True, utc(2027, 7, 11), None),
    ],
)
def test_the_window_state_follows_the_rule_in_its_time_zone(cluster, at, open, until, opens_at):
    window(cluster)
    state = window_state(cluster.pk, at)
    assert (state.open, state.until, state.opens_at) == (open, until, opens_at)


def test_of_several_windows_the_cluster_is_open_when_any_is(cluster):
    window(cluster)
    window(cluster, "FREQ=DAILY;BYHOUR=6;BYMINUTE=0;BYSECOND=0", seconds=3600, tz="UTC")
    assert window_state(cluster.pk, utc(2027, 1, 9, 6, 30)).open
    # Closed: the soonest of their openings.
    assert window_state(cluster.pk, utc(2027, 1, 9, 20)).opens_at == utc(2027, 1, 9, 21)
    assert window_state(cluster.pk, utc(2027, 1, 9, 7)).opens_at == utc(2027, 1, 9, 21)


def test_a_rule_with_no_opening_left_holds_with_none_due(client, operator, cluster):
    now = timezone.now()
    window(cluster, "FREQ=DAILY;COUNT=1", starts_at=now - dt.timedelta(days=30))
    state = window_state(cluster.pk, now)
    assert (state.open, state.opens_at) == (False, None)
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="W0", token=TOKEN)
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.waiting_for, job.waiting_until) == ("window", None)
    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "waiting for the window (none is due to open)" in page


def test_a_job_outside_its_clusters_windows_is_held_until_the_next_opening_then_sent(
    client, operator, cluster
):
    now = timezone.now()
    # Opens daily at this instant tomorrow; open now only once the window is removed.
    opening = (now + dt.timedelta(days=1)).replace(microsecond=0)
    made = window(cluster, "FREQ=DAILY", starts_at=opening, seconds=3600, tz="UTC")
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="W1", token=TOKEN)
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.started_at) == ("IN_PROGRESS", None)
    assert (job.waiting_for, job.waiting_until) == ("window", opening)
    entry = AuditEntry.objects.get(event="job.held", job_id=job.pk)
    assert entry.details == {"waiting_for": "window", "until": opening.isoformat()}

    client.force_login(operator)
    stamp = opening.isoformat().replace("+00:00", "Z")
    shown = f'waiting for the window (opens <time datetime="{stamp}">'
    assert shown in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert shown in client.get(reverse("job_list")).content.decode()

    assert window_delete(window=made)
    assert job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "SUCCESS"


def test_an_admins_freeze_override_does_not_open_a_closed_window(cluster):
    admin = make_user("boss", "Operators", is_superuser=True)
    now = timezone.now()
    freeze_create(
        freeze=ChangeFreeze(
            starts_at=now - dt.timedelta(minutes=1),
            ends_at=now + dt.timedelta(hours=1),
            reason="Freeze",
        )
    )
    window(cluster, "FREQ=DAILY", starts_at=now + dt.timedelta(days=1), tz="UTC")
    [job] = job_submit(
        user=admin,
        action=1,
        cluster=cluster,
        cids="W2",
        token=TOKEN,
        freeze_override_reason="Incident",
    )
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.waiting_for == "window"


# Making and removing windows


@pytest.fixture
def admin_secret(db) -> str:
    admin = make_user("boss", is_staff=True, is_superuser=True)
    return token_create(user=admin, name="windows").secret


def call(client, method: str, url: str, secret: str, body=None):
    send = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if body is None:
        return send(url, **auth)
    return send(url, json.dumps(body), content_type="application/json", **auth)


WINDOWS = "/api/v1/clusters/eu1/maintenance-windows"
GOOD = {
    "rrule": SATURDAY_NIGHT,
    "timezone": BERLIN,
    "starts_at": "2027-01-01T00:00:00+01:00",
    "duration_seconds": FOUR_HOURS,
}


def test_an_admin_token_lists_creates_and_deletes_windows_each_audited(
    client, admin_secret, cluster
):
    response = call(client, "post", WINDOWS, admin_secret, GOOD)
    assert response.status_code == 201, response.content
    made = response.json()
    assert (made["cluster"], made["rrule"], made["timezone"]) == ("eu1", SATURDAY_NIGHT, BERLIN)
    assert made["starts_at"] == "2026-12-31T23:00:00Z"
    without_start = {key: value for key, value in GOOD.items() if key != "starts_at"}
    assert call(client, "post", WINDOWS, admin_secret, without_start).status_code == 201
    assert len(call(client, "get", WINDOWS, admin_secret).json()["results"]) == 2
    [entry, _] = AuditEntry.objects.filter(event="window.created").order_by("id")
    assert (entry.details["rrule"], entry.details["cluster"]) == (SATURDAY_NIGHT, "eu1")

    other = baker.make("jobs.Cluster", name="us1", base_url="http://127.0.0.1:9")
    assert (
        call(
            client, "delete", f"/api/v1/clusters/us1/maintenance-windows/{made['id']}", admin_secret
        ).status_code
        == 404
    )
    assert call(client, "delete", f"{WINDOWS}/{made['id']}", admin_secret).status_code == 204
    assert call(client, "delete", f"{WINDOWS}/{made['id']}", admin_secret).status_code == 404
    assert MaintenanceWindow.objects.filter(cluster=other).count() == 0
    assert MaintenanceWindow.objects.count() == 1
    assert AuditEntry.objects.filter(event="window.deleted").count() == 1
    assert (
        call(
            client, "get", "/api/v1/clusters/nowhere/maintenance-windows", admin_secret
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=MINUTELY;INTERVAL=30"}, "rrule"),
        ({"rrule": "FREQ=DAILY;BYMINUTE=" + ",".join(["1"] * 200)}, "rrule"),
        ({"rrule": ""}, "rrule"),
        ({"rrule": 5}, "rrule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"duration_seconds": 59}, "duration_seconds"),
        ({"duration_seconds": 7 * 24 * 3600 + 1}, "duration_seconds"),
        ({"duration_seconds": "3600"}, "duration_seconds"),
        ({"starts_at": "soon"}, "starts_at"),
    ],
)
def test_bad_windows_are_400_problems_and_write_nothing(
    client, admin_secret, cluster, change, field
):
    before = written()
    response = call(client, "post", WINDOWS, admin_secret, {**GOOD, **change})
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert field in response.json()["errors"]
    assert written() == before


def test_an_operators_token_may_not_see_or_make_windows(client, operator, cluster):
    secret = token_create(user=operator, name="ci").secret
    before = written()
    assert call(client, "get", WINDOWS, secret).status_code == 403
    assert call(client, "post", WINDOWS, secret, GOOD).status_code == 403
    assert written() == before


def test_windows_are_added_in_the_admin_audited_and_a_bad_rule_refused(client, cluster):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    form = {
        "cluster": str(cluster.pk),
        "rrule": SATURDAY_NIGHT,
        "timezone": BERLIN,
        "starts_at_0": "2027-01-01",
        "starts_at_1": "00:00:00",
        "duration_seconds": str(FOUR_HOURS),
    }
    before = written()
    response = client.post(
        reverse("admin:jobs_maintenancewindow_add"), {**form, "rrule": "FREQ=SOMETIMES"}
    )
    assert response.status_code == 200
    assert written() == before
    response = client.post(reverse("admin:jobs_maintenancewindow_add"), form)
    assert response.status_code == 302, response.content
    assert MaintenanceWindow.objects.get().created_by == admin
    assert AuditEntry.objects.filter(event="window.created", actor=admin).count() == 1
    made = MaintenanceWindow.objects.get()
    response = client.post(
        reverse("admin:jobs_maintenancewindow_delete", args=[made.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert AuditEntry.objects.filter(event="window.deleted", actor=admin).count() == 1
    assert Job.objects.count() == 0
