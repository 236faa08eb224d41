"""Saving, editing and deleting saved Set Actions and schedules through schedules.services:
checked as a submit is, versioned, audited, by the owner or an admin only, nothing written on
bad input; and the admin doing the same through them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import RunGrant
from schedules.models import SavedSetAction, SavedSetActionVersion, Schedule
from schedules.services import (
    saved_set_action_create,
    saved_set_action_delete,
    saved_set_action_edit,
    schedule_create,
    schedule_delete,
    schedule_pause,
)
from tests.admin_helpers import make_superuser
from tests.helpers import make_user, row_counts

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def saved(operator, cluster):
    return saved_set_action_create(
        user=operator, name="nightly", action="T-Enable", cluster=cluster, cids="A, B\nC"
    )


def test_every_problem_is_reported_together_and_nothing_is_written(operator, cluster):
    before = row_counts()
    with pytest.raises(ValidationError) as raised:
        saved_set_action_create(
            user=operator, name="  ", action="Nope", cluster="gone", cids="bad!id"
        )
    assert set(raised.value.message_dict) == {"name", "action", "cluster", "cids"}
    assert row_counts() == before


def test_a_large_list_is_kept_as_one_value_in_its_order(operator, cluster, settings):
    cids = [f"C{n:06d}" for n in range(20_000, 0, -1)]
    saved = saved_set_action_create(user=operator, name="big", action=1, cluster=cluster, cids=cids)
    saved.refresh_from_db()
    assert saved.customer_count == 20_000
    assert saved.cid_list == cids


def test_an_edit_writes_a_new_version_audited_and_keeps_the_old_one(saved, operator):
    saved_set_action_edit(saved=saved, user=operator, action="PE-Direct", cids="D")
    saved.refresh_from_db()
    assert (saved.version, saved.action, saved.cid_list) == (2, 5, ["D"])
    old, new = SavedSetActionVersion.objects.filter(saved=saved).order_by("version")
    assert (old.action, old.cids, new.action, new.cids) == (3, "A\nB\nC", 5, "D")
    assert new.edited_by == operator and new.cluster_name == "eu1"
    assert AuditEntry.objects.filter(event="saved_set_action.changed").count() == 1


def test_an_edit_that_changes_nothing_writes_nothing(saved, operator):
    before = row_counts()
    saved_set_action_edit(saved=saved, user=operator, cids="A B C")
    assert row_counts() == before


def test_a_stale_edit_is_refused_not_lost(saved, operator):
    stale = SavedSetAction.objects.get(pk=saved.pk)
    saved_set_action_edit(saved=saved, user=operator, cids="X")
    with pytest.raises(ValidationError, match="changed this saved Set Action meanwhile"):
        saved_set_action_edit(saved=stale, user=operator, cids="Y")
    saved.refresh_from_db()
    assert (saved.version, saved.cid_list) == (2, ["X"])


def test_only_the_owner_or_an_admin_edits_and_the_owner_s_grant_counts(saved, cluster):
    other = make_user("op2", "Operators")
    with pytest.raises(PermissionDenied):
        saved_set_action_edit(saved=saved, user=other, cids="X")
    admin = make_superuser()
    saved_set_action_edit(saved=saved, user=admin, cids="X")
    assert SavedSetActionVersion.objects.get(saved=saved, version=2).edited_by == admin


def test_a_bad_edit_writes_nothing(saved, operator):
    before = row_counts()
    with pytest.raises(ValidationError):
        saved_set_action_edit(saved=saved, user=operator, name="", cids="bad!")
    assert row_counts() == before


def test_a_scheduled_saved_set_action_cannot_be_deleted(saved, operator):
    schedule = schedule_create(user=operator, saved_set_action=saved, rrule="FREQ=DAILY", now=NOW)
    with pytest.raises(ValidationError, match="delete its schedules first"):
        saved_set_action_delete(saved=saved, user=operator)
    schedule_delete(schedule=schedule, user=operator)
    saved_set_action_delete(saved=saved, user=operator)
    assert not SavedSetAction.objects.exists()
    events = set(AuditEntry.objects.values_list("event", flat=True))
    assert {"schedule.deleted", "saved_set_action.deleted"} <= events


def test_only_the_owner_or_an_admin_schedules_pauses_or_deletes(saved):
    other = make_user("op2", "Operators")
    with pytest.raises(PermissionDenied):
        schedule_create(user=other, saved_set_action=saved, rrule="FREQ=DAILY", now=NOW)
    admin = make_superuser()
    schedule = schedule_create(user=admin, saved_set_action=saved, rrule="FREQ=DAILY", now=NOW)
    # The runs are the saved Set Action's owner's, whoever made the schedule.
    assert schedule.owner == saved.owner
    for change in (schedule_pause, schedule_delete):
        with pytest.raises(PermissionDenied):
            change(schedule=schedule, user=other)


def test_a_schedule_the_owner_can_no_longer_run_is_refused(saved, cluster):
    cluster.is_active = False
    cluster.save()
    before = row_counts()
    with pytest.raises(ValidationError) as raised:
        schedule_create(user=saved.owner, saved_set_action=saved, rrule="FREQ=DAILY", now=NOW)
    assert "saved_set_action.cluster" in raised.value.message_dict
    assert row_counts() == before


def test_the_start_defaults_to_the_minute_of_creation(saved):
    schedule = schedule_create(
        user=saved.owner,
        saved_set_action=saved,
        rrule="FREQ=DAILY",
        now=NOW.replace(hour=6, minute=7, second=59),
    )
    assert schedule.start == NOW.replace(hour=6, minute=7)
    assert schedule.checked_through == NOW.replace(hour=6, minute=7, second=59)


def test_the_admin_saves_edits_and_lists_through_the_services(client, cluster):
    admin = make_superuser()
    client.force_login(admin)
    add = reverse("admin:schedules_savedsetaction_add")
    refused = client.post(add, {"name": "x", "action": 1, "cluster": cluster.pk, "cids": "A"})
    # A superuser runs only what a run grant covers, as anyone.
    assert b"no run grant covers it" in refused.content
    baker.make(RunGrant, user=admin)
    answer = client.post(
        add, {"name": "from admin", "action": 1, "cluster": cluster.pk, "cids": "A B"}
    )
    assert answer.status_code == 302, answer.content
    saved = SavedSetAction.objects.get()
    assert (saved.owner, saved.version, saved.cid_list) == (admin, 1, ["A", "B"])
    change = reverse("admin:schedules_savedsetaction_change", args=[saved.pk])
    assert client.get(change).status_code == 200
    answer = client.post(
        change, {"name": "from admin", "action": 1, "cluster": cluster.pk, "cids": "C"}
    )
    assert answer.status_code == 302
    saved.refresh_from_db()
    assert (saved.version, saved.cid_list) == (2, ["C"])
    before = row_counts()
    answer = client.post(add, {"name": "bad", "action": 1, "cluster": cluster.pk, "cids": "b@d"})
    assert answer.status_code == 200 and b"invalid customer ID" in answer.content
    assert row_counts() == before
    schedule = schedule_create(user=admin, saved_set_action=saved, rrule="FREQ=DAILY", now=NOW)
    for name in ("savedsetactionversion", "schedule", "occurrence"):
        assert client.get(reverse(f"admin:schedules_{name}_changelist")).status_code == 200
    answer = client.post(
        reverse("admin:schedules_schedule_changelist"),
        {"action": "pause", "_selected_action": [schedule.pk]},
    )
    assert answer.status_code == 302
    assert Schedule.objects.get().paused
    assert AuditEntry.objects.filter(event="schedule.paused", actor=admin).exists()


def test_the_admin_takes_the_customers_from_a_csv_file_naming_bad_lines(client, cluster):
    admin = make_superuser()
    baker.make(RunGrant, user=admin)
    client.force_login(admin)
    add = reverse("admin:schedules_savedsetaction_add")
    before = row_counts()
    bad = SimpleUploadedFile("c.csv", b"cid\nC1\nb@d\n", content_type="text/csv")
    answer = client.post(add, {"name": "csv", "action": 1, "cluster": cluster.pk, "csv_file": bad})
    assert answer.status_code == 200 and b"line 3" in answer.content
    assert row_counts() == before
    good = SimpleUploadedFile("c.csv", b"cid\nC1\nC2\nC1\n", content_type="text/csv")
    answer = client.post(add, {"name": "csv", "action": 1, "cluster": cluster.pk, "csv_file": good})
    assert answer.status_code == 302
    assert SavedSetAction.objects.get().cid_list == ["C1", "C2"]
