"""Saved Set Actions and schedules through the API: each its owner's (an admin's token sees
everyone's), every change audited, the next occurrences in UTC and local time, and bad input
a 400 problem with nothing written, never a 500."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from api.tokens import token_create
from audit.models import AuditEntry
from schedules.models import Occurrence, SavedSetAction, Schedule
from schedules.services import saved_set_action_create, schedule_create, scheduler_pass
from tests.admin_helpers import make_superuser
from tests.helpers import make_user, row_counts

pytestmark = pytest.mark.django_db

SAVED = "/api/v1/saved-set-actions"
SCHEDULES = "/api/v1/schedules"
PROBLEM = "application/problem+json"


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


@pytest.fixture
def secret(operator) -> str:
    return token_create(user=operator, name="schedules").secret


@pytest.fixture
def saved(operator, cluster):
    return saved_set_action_create(
        user=operator, name="nightly", action="PE-Finalize", cluster=cluster, cids="C1 C2"
    )


def call(client, method: str, url: str, secret: str, body=None):
    send = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if body is None:
        return send(url, **auth)
    return send(url, json.dumps(body), content_type="application/json", **auth)


def test_an_operator_saves_a_set_action_checked_as_a_submit_and_audited(
    client, secret, operator, cluster
):
    body = {
        "name": "eu1 finalize",
        "action": "pe-finalize",
        "cluster": "eu1",
        "cids": ["A", "B", "A"],
    }
    answer = call(client, "post", SAVED, secret, body)
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert (
        data["name"],
        data["action"],
        data["cluster"],
        data["customer_count"],
        data["version"],
    ) == (
        "eu1 finalize",
        "PE-Finalize",
        "eu1",
        2,
        1,
    )
    saved = SavedSetAction.objects.get()
    assert saved.cid_list == ["A", "B"]
    assert saved.versions.get().version == 1
    assert AuditEntry.objects.filter(event="saved_set_action.created", actor=operator).exists()
    [listed] = call(client, "get", SAVED, secret).json()["results"]
    assert listed["id"] == saved.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "action": "nope", "cluster": "eu1", "cids": ["A"]}, "action"),
        ({"name": "x", "action": "Trans-Begin", "cluster": "gone", "cids": ["A"]}, "cluster"),
        ({"name": "x", "action": "Trans-Begin", "cluster": "eu1", "cids": ["bad id!"]}, "cids"),
        ({"name": "nightly", "action": "Trans-Begin", "cluster": "eu1", "cids": ["A"]}, "name"),
        ({"name": "a\tb", "action": "Trans-Begin", "cluster": "eu1", "cids": ["A"]}, "name"),
    ],
)
def test_a_bad_saved_set_action_is_a_400_with_nothing_written(client, secret, saved, body, field):
    before = written()
    answer = call(client, "post", SAVED, secret, body)
    assert answer.status_code == 400
    assert answer["Content-Type"] == PROBLEM
    assert field in answer.json()["errors"]
    assert written() == before


def test_saving_what_no_grant_covers_is_a_403_with_nothing_written(client, cluster):
    user = make_user("nogrant")
    user.user_permissions.add(Permission.objects.get(codename="run_set_action"))
    secret = token_create(user=user, name="x").secret
    before = written()
    answer = call(
        client,
        "post",
        SAVED,
        secret,
        {"name": "x", "action": "Trans-Begin", "cluster": "eu1", "cids": ["A"]},
    )
    assert answer.status_code == 403
    assert written() == before


def test_a_recurring_schedule_is_created_audited_and_shows_its_next_runs(client, secret, saved):
    body = {
        "saved_set_action": saved.pk,
        "rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "timezone": "Europe/Berlin",
        "missed": "skip",
        "grace_seconds": 60,
        "overlap": "queue",
    }
    answer = call(client, "post", SCHEDULES, secret, body)
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert (data["rrule"], data["timezone"], data["missed"], data["overlap"], data["paused"]) == (
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "Europe/Berlin",
        "skip",
        "queue",
        False,
    )
    assert len(data["next"]) == 5
    assert AuditEntry.objects.filter(event="schedule.created").count() == 1
    nxt = call(
        client,
        "get",
        f"{SCHEDULES}/{data['id']}/next?after=2027-03-27T00:00:00Z&count=3",
        secret,
    )
    assert nxt.status_code == 200
    assert nxt.json()["occurrences"] == [
        {"utc": "2027-03-27T01:30:00+00:00", "local": "2027-03-27T02:30:00+01:00"},
        # The gap: the first instant after it.
        {"utc": "2027-03-28T01:00:00+00:00", "local": "2027-03-28T03:00:00+02:00"},
        {"utc": "2027-03-29T00:30:00+00:00", "local": "2027-03-29T02:30:00+02:00"},
    ]
    autumn = call(
        client,
        "get",
        f"{SCHEDULES}/{data['id']}/next?after=2027-10-30T12:00:00%2B02:00&count=2",
        secret,
    )
    assert [o["utc"] for o in autumn.json()["occurrences"]] == [
        "2027-10-31T00:30:00+00:00",
        "2027-11-01T01:30:00+00:00",
    ]


def test_a_one_off_schedule_and_its_occurrences(client, secret, saved, settings):
    answer = call(
        client,
        "post",
        SCHEDULES,
        secret,
        {"saved_set_action": saved.pk, "run_at": "2099-01-02T06:00:00+01:00"},
    )
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["run_at"].startswith("2099-01-02T05:00:00") and data["rrule"] is None
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(
        checked_through=schedule.run_at.replace(year=2098)
    )
    scheduler_pass(now=schedule.run_at.replace(second=30))
    listed = call(client, "get", f"{SCHEDULES}/{schedule.pk}/occurrences", secret)
    assert listed.status_code == 200
    [occurrence] = listed.json()["results"]
    assert occurrence["state"] == "failed"  # The cluster has no stored credential.
    assert occurrence["local"] == "2099-01-02T05:00:00+00:00"
    assert "stored credential" in occurrence["reason"]


def test_pause_and_resume_are_audited(client, secret, saved):
    schedule = schedule_create(
        user=saved.owner, saved_set_action=saved, rrule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0"
    )
    paused = call(client, "post", f"{SCHEDULES}/{schedule.pk}/pause", secret)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    resumed = call(client, "post", f"{SCHEDULES}/{schedule.pk}/resume", secret)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    events = list(AuditEntry.objects.values_list("event", flat=True))
    assert events.count("schedule.paused") == 1 and events.count("schedule.resumed") == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"rrule": "FREQ=SECONDLY"}, "rrule"),
        ({"rrule": "FREQ=DAILY;BYHOUR=99"}, "rrule"),
        ({"rrule": "FREQ=DAILY", "timezone": "Mars/Olympus"}, "timezone"),
        ({"rrule": "FREQ=DAILY", "run_at": "2099-01-01T00:00:00Z"}, "run_at"),
        ({}, "run_at"),
        ({"run_at": "2001-01-01T00:00:00Z"}, "run_at"),
        ({"run_at": "2099-01-01T00:00:00"}, "run_at"),
        ({"run_at": "not a date"}, "run_at"),
        ({"run_at": "9999-12-31T23:59:59-12:00"}, "run_at"),
        ({"run_at": "2099-01-01T00:00:00Z", "grace_seconds": 10**30}, "grace_seconds"),
        ({"run_at": "2099-01-01T00:00:00Z", "missed": "sometimes"}, "missed"),
        ({"run_at": "2099-01-01T00:00:00Z", "overlap": "both"}, "overlap"),
        ({"rrule": "FREQ=DAILY", "missing_dst": "later"}, "missing_dst"),
        ({"rrule": "FREQ=DAILY;COUNT=1;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),
        ({"rrule": "FREQ=DAILY", "start": "0001-01-01T00:00:00+14:00"}, "start"),
    ],
)
def test_a_bad_schedule_is_a_400_with_nothing_written(client, secret, saved, extra, field):
    before = written()
    answer = call(client, "post", SCHEDULES, secret, {"saved_set_action": saved.pk, **extra})
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"] == PROBLEM
    assert field in answer.json()["errors"]
    assert written() == before


def test_someone_elses_saved_set_action_cannot_be_scheduled(client, saved, cluster):
    other = make_user("op2", "Operators")
    secret = token_create(user=other, name="x").secret
    before = written()
    answer = call(
        client, "post", SCHEDULES, secret, {"saved_set_action": saved.pk, "rrule": "FREQ=DAILY"}
    )
    assert answer.status_code == 400
    assert "saved_set_action" in answer.json()["errors"]
    assert written() == before


@pytest.mark.parametrize(
    "query",
    [
        "count=0",
        "count=101",
        "count=99999999999999999999999",
        "count=x",
        "after=yesterday",
        "after=2027-01-01T00:00:00",
        "after=9999-12-31T23:59:59-12:00",
        "after=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_bad_next_parameters_are_a_400(client, secret, saved, query):
    schedule = schedule_create(user=saved.owner, saved_set_action=saved, rrule="FREQ=DAILY")
    answer = call(client, "get", f"{SCHEDULES}/{schedule.pk}/next?{query}", secret)
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"] == PROBLEM


def test_a_rule_that_no_longer_parses_is_a_409_not_a_500(client, secret, saved):
    schedule = schedule_create(user=saved.owner, saved_set_action=saved, rrule="FREQ=DAILY")
    Schedule.objects.filter(pk=schedule.pk).update(rrule="FREQ=SECONDLY", timezone="Nowhere/Zone")
    assert call(client, "get", f"{SCHEDULES}/{schedule.pk}/next", secret).status_code == 409
    detail = call(client, "get", f"{SCHEDULES}/{schedule.pk}", secret)
    assert detail.status_code == 200 and detail.json()["next"] == []


def test_others_see_nothing_of_a_schedule_and_an_admin_sees_all(client, saved):
    schedule = schedule_create(user=saved.owner, saved_set_action=saved, rrule="FREQ=DAILY")
    other = token_create(user=make_user("op2", "Operators"), name="x").secret
    for path in ("", "/next", "/occurrences"):
        assert call(client, "get", f"{SCHEDULES}/{schedule.pk}{path}", other).status_code == 404
    assert call(client, "post", f"{SCHEDULES}/{schedule.pk}/pause", other).status_code == 404
    assert call(client, "get", SCHEDULES, other).json()["results"] == []
    assert call(client, "get", SAVED, other).json()["results"] == []
    admin = token_create(user=make_superuser(), name="x").secret
    [listed] = call(client, "get", SCHEDULES, admin).json()["results"]
    assert listed["id"] == schedule.pk
    assert call(client, "post", f"{SCHEDULES}/{schedule.pk}/pause", admin).json()["paused"]
    for path in ("abc", "0", "99999999999999999999999"):
        assert call(client, "get", f"{SCHEDULES}/{path}", admin).status_code == 404
    assert not Occurrence.objects.exists()


def test_a_read_only_token_cannot_change_anything(client, operator, saved):
    secret = token_create(user=operator, name="ro", read_only=True).secret
    before = written()
    answer = call(
        client, "post", SCHEDULES, secret, {"saved_set_action": saved.pk, "rrule": "FREQ=DAILY"}
    )
    assert answer.status_code == 403
    assert written() == before
