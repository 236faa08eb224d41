"""The saved Set Actions and schedules pages: lists, forms and their refusals (nothing
written), version history, Run now through the Set Action review, a schedule's next runs in
local time and UTC with the DST notes, its past runs, pausing and resuming, and the job page
naming the schedule that made the job."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster, Job, RunGrant
from jobs.services.credentials import credential_set
from schedules.models import Occurrence, SavedSetAction, SavedSetActionVersion, Schedule
from schedules.services import saved_set_action_create, saved_set_action_edit, schedule_create
from schedules.templatetags.schedules_tags import schedule_when
from schedules.views.upcoming import upcoming
from tests.helpers import TOKEN, confirm_review, make_user, row_counts

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def saved(operator, cluster) -> SavedSetAction:
    return saved_set_action_create(
        user=operator, name="Staging list", action=3, cluster=cluster, cids="C1 C2 C3"
    )


def recurring(saved, rule="FREQ=DAILY;BYHOUR=6;BYMINUTE=0;BYSECOND=0", **fields) -> Schedule:
    return schedule_create(
        user=saved.owner,
        saved_set_action=saved,
        rrule=rule,
        timezone_name=fields.pop("timezone_name", "Europe/Berlin"),
        **fields,
    )


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def field_errors(response, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


# The header.


def test_the_menu_leads_operators_and_auditors_to_both_lists(client, operator):
    client.force_login(operator)
    page = text(client.get(reverse("job_list")))
    assert reverse("saved_set_action_list") in page and reverse("schedule_list") in page
    client.force_login(make_user("aud1", "Auditors"))
    page = text(client.get(reverse("job_list")))
    assert reverse("schedule_list") in page
    client.force_login(make_user("nobody"))
    page = text(client.get(reverse("job_list")))
    assert reverse("schedule_list") not in page


# Saved Set Actions.


def test_the_list_shows_ones_own_and_an_auditor_everyones(client, operator, cluster, saved):
    other = make_user("op2", "Operators")
    saved_set_action_create(user=other, name="Theirs", action=1, cluster=cluster, cids="C9")
    client.force_login(operator)
    page = text(client.get(reverse("saved_set_action_list")))
    assert "Staging list" in page and "Theirs" not in page
    client.force_login(make_user("aud1", "Auditors"))
    page = text(client.get(reverse("saved_set_action_list")))
    assert "Staging list" in page and "Theirs" in page and "op2" in page


def test_saving_typed_customer_ids_writes_version_one_audited(as_operator, operator, cluster):
    response = as_operator.post(
        reverse("saved_set_action_new"),
        {"name": "Finalize eu1", "action": "3", "cluster": cluster.pk, "cids": "C1, C2\nC2 C3"},
    )
    saved = SavedSetAction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("saved_set_action_detail", args=[saved.pk])
    assert (saved.owner, saved.cid_list, saved.version) == (operator, ["C1", "C2", "C3"], 1)
    assert saved.versions.get().edited_by == operator
    assert AuditEntry.objects.filter(event=AuditEntry.Event.SAVED_SET_ACTION_CREATED).count() == 1


def test_saving_the_customer_ids_of_a_csv_file(as_operator, cluster):
    upload = SimpleUploadedFile("list.csv", b"cid\nC7\nC8\n", content_type="text/csv")
    response = as_operator.post(
        reverse("saved_set_action_new"),
        {"name": "From a file", "action": "1", "cluster": cluster.pk, "csv_file": upload},
    )
    assert response.status_code == 302
    assert SavedSetAction.objects.get().cid_list == ["C7", "C8"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "Staging list"}, "name", "already have a saved Set Action named"),
        ({"cids": "C1 not/a/cid"}, "cids", "invalid customer ID"),
        ({"cids": "C1 C2 C3 C4 C5"}, "cids", "the most one submission may hold is 4"),
        ({"cids": ""}, "cids", "Give customer IDs"),
        ({"action": "99"}, "action", "valid choice"),
    ],
)
def test_bad_input_is_refused_by_field_and_writes_nothing(
    as_operator, settings, cluster, saved, fields, field, message
):
    settings.TMS_MAX_CIDS = 4
    before = row_counts()
    data = {"name": "New one", "action": "3", "cluster": cluster.pk, "cids": "C1", **fields}
    response = as_operator.post(reverse("saved_set_action_new"), data)
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response, field)), response.context[
        "form"
    ].errors
    assert row_counts() == before


def test_a_bad_csv_file_is_refused_next_to_the_file(as_operator, cluster):
    before = row_counts()
    upload = SimpleUploadedFile("list.csv", b"cid\nC1\nbad/id\n", content_type="text/csv")
    response = as_operator.post(
        reverse("saved_set_action_new"),
        {"name": "File", "action": "1", "cluster": cluster.pk, "csv_file": upload},
    )
    assert "line 3" in " ".join(field_errors(response, "csv_file"))
    assert row_counts() == before


def test_typed_ids_and_a_csv_file_together_are_refused(as_operator, cluster):
    before = row_counts()
    upload = SimpleUploadedFile("list.csv", b"cid\nC1\n", content_type="text/csv")
    response = as_operator.post(
        reverse("saved_set_action_new"),
        {"name": "Both", "action": "1", "cluster": cluster.pk, "cids": "C2", "csv_file": upload},
    )
    assert "not both" in " ".join(response.context["form"].non_field_errors())
    assert row_counts() == before


def test_an_action_no_grant_covers_on_that_cluster_is_refused(client, cluster):
    group = Group.objects.create(name="Narrow")
    us1 = Cluster.objects.create(name="us1", base_url="http://127.0.0.1:9")
    RunGrant.objects.create(group=group, cluster=cluster, action=Job.Action.T_ENABLE)
    RunGrant.objects.create(group=group, cluster=us1, action=Job.Action.PE_ENABLE)
    user = make_user("narrow", "Narrow")
    user.groups.add(Group.objects.get(name="Narrow"))
    operators = Group.objects.get(name="Operators")
    user.user_permissions.add(*operators.permissions.all())
    client.force_login(user)
    before = row_counts()
    data = {"name": "x", "action": str(Job.Action.PE_ENABLE), "cluster": cluster.pk, "cids": "C1"}
    response = client.post(reverse("saved_set_action_new"), data)
    assert "no run grant covers it" in " ".join(response.context["form"].non_field_errors())
    assert row_counts() == before


def test_without_any_grant_the_page_says_so(client, cluster):
    user = make_user("ungranted")
    operators = Group.objects.get(name="Operators")
    user.user_permissions.add(*operators.permissions.all())
    client.force_login(user)
    assert 'id="saved-no-grant"' in text(client.get(reverse("saved_set_action_new")))


def test_an_auditor_may_not_save_one(client, cluster):
    client.force_login(make_user("aud1", "Auditors"))
    before = row_counts()
    data = {"name": "x", "action": "1", "cluster": cluster.pk, "cids": "C1"}
    assert client.post(reverse("saved_set_action_new"), data).status_code == 403
    assert row_counts() == before


def test_editing_writes_a_new_version_and_the_history_says_what_changed(
    as_operator, operator, cluster, saved
):
    us1 = Cluster.objects.create(name="us1", base_url="http://127.0.0.1:9")
    url = reverse("saved_set_action_edit", args=[saved.pk])
    form = as_operator.get(url).context["form"]
    assert form.initial["cids"] == "C1\nC2\nC3"
    response = as_operator.post(
        url, {"name": "Staging list", "action": "1", "cluster": us1.pk, "cids": "C2 C3 C4 C5"}
    )
    assert response.status_code == 302
    saved.refresh_from_db()
    assert (saved.version, saved.action, saved.cluster, saved.customer_count) == (2, 1, us1, 4)
    page = text(as_operator.get(reverse("saved_set_action_detail", args=[saved.pk])))
    row = re.search(r'<tr data-version="2".*?</tr>', page, re.S)[0]
    assert operator.username in row
    assert "Action T-Enable → Trans-Begin" in row
    assert "Cluster eu1 → us1" in row
    assert "Customers 3 → 4 (2 added, 1 removed)" in row
    assert "Created" in re.search(r'<tr data-version="1".*?</tr>', page, re.S)[0]


def test_saving_an_edit_that_changes_nothing_writes_nothing(as_operator, cluster, saved):
    before = row_counts()
    data = {"name": "Staging list", "action": "3", "cluster": cluster.pk, "cids": "C1 C2 C3"}
    response = as_operator.post(
        reverse("saved_set_action_edit", args=[saved.pk]), data, follow=True
    )
    assert "Nothing changed" in text(response)
    assert row_counts() == before


def test_an_edit_with_bad_input_writes_nothing(as_operator, cluster, saved):
    before = row_counts()
    data = {"name": "Staging list", "action": "3", "cluster": cluster.pk, "cids": "bad/id"}
    response = as_operator.post(reverse("saved_set_action_edit", args=[saved.pk]), data)
    assert field_errors(response, "cids")
    assert row_counts() == before


def test_an_edit_shows_what_it_holds_when_no_grant_covers_it_any_more(as_operator, cluster, saved):
    RunGrant.objects.all().delete()
    url = reverse("saved_set_action_edit", args=[saved.pk])
    form = as_operator.get(url).context["form"]
    assert form["action"].value() == 3 and form["cluster"].value() == cluster.pk
    assert (3, "T-Enable") in form.fields["action"].choices
    before = row_counts()
    data = {"name": "Renamed", "action": "3", "cluster": cluster.pk, "cids": "C1"}
    response = as_operator.post(url, data)
    assert "no run grant covers it" in " ".join(response.context["form"].non_field_errors())
    assert row_counts() == before


def test_another_operator_sees_nothing_and_an_auditor_may_look_but_not_edit(client, saved, cluster):
    client.force_login(make_user("op2", "Operators"))
    for name in ("saved_set_action_detail", "saved_set_action_edit", "saved_set_action_run"):
        assert client.get(reverse(name, args=[saved.pk])).status_code == 404
    client.force_login(make_user("aud1", "Auditors"))
    page = text(client.get(reverse("saved_set_action_detail", args=[saved.pk])))
    assert 'id="edit-saved"' not in page and 'id="run-now"' not in page
    before = row_counts()
    data = {"name": "Mine now", "action": "3", "cluster": cluster.pk, "cids": "C1"}
    response = client.post(reverse("saved_set_action_edit", args=[saved.pk]), data)
    assert response.status_code == 403
    assert row_counts() == before


def test_run_now_fills_in_the_set_action_form_and_nothing_is_sent_before_confirming(
    as_operator, operator, cluster, saved
):
    page = as_operator.get(reverse("saved_set_action_run", args=[saved.pk]))
    form = page.context["form"]
    assert (form.initial["action"], form.initial["cluster"]) == (3, cluster.pk)
    assert f'action="{reverse("set_action")}"' in text(page)
    fields = {
        "action": "3",
        "cluster": cluster.pk,
        "cids": form.initial["cids"],
        "token": TOKEN,
        "idempotency_key": form["idempotency_key"].value(),
    }
    before = row_counts()
    review = as_operator.post(reverse("set_action"), fields)
    assert "Nothing is sent until you confirm" in text(review)
    assert row_counts() == before
    done = confirm_review(as_operator, review)
    job = Job.objects.get()
    assert done["Location"] == reverse("job_detail", args=[job.pk])
    assert (job.user, job.action, job.customer_count) == (operator, 3, 3)


def test_run_now_with_the_clusters_stored_credential_asks_for_no_token(
    as_operator, operator, cluster, saved
):
    RunGrant.objects.filter(group__name="Operators").update(may_use_stored_credential=True)
    credential_set(cluster=cluster, token="svc-" + "s" * 30)
    page = as_operator.get(reverse("saved_set_action_run", args=[saved.pk]))
    form = page.context["form"]
    assert 'name="use_stored_credential"' in text(page)
    fields = {
        "action": "3",
        "cluster": cluster.pk,
        "cids": form.initial["cids"],
        "use_stored_credential": "on",
        "idempotency_key": form["idempotency_key"].value(),
    }
    review = as_operator.post(reverse("set_action"), fields)
    confirm_review(as_operator, review)
    job = Job.objects.get()
    assert job.uses_stored_credential and job.user == operator


# Schedules: making one.


def schedule_data(saved, **fields) -> dict:
    return {
        "saved_set_action": saved.pk,
        "kind": "recurring",
        "repeat": "weekdays",
        "at_time": "06:00",
        "weekday": "MO",
        "rrule": "",
        "run_at": "",
        "timezone": "Europe/Berlin",
        "missing_dst": "run",
        "missed": "run_latest",
        "grace_minutes": "15",
        "overlap": "skip",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0;BYSECOND=0"),
        ({"repeat": "daily", "at_time": "02:30"}, "FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0"),
        (
            {"repeat": "weekly", "weekday": "SU", "at_time": "23:15"},
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=23;BYMINUTE=15;BYSECOND=0",
        ),
        ({"repeat": "rrule", "rrule": "FREQ=MONTHLY;BYMONTHDAY=1"}, "FREQ=MONTHLY;BYMONTHDAY=1"),
    ],
)
def test_a_recurring_schedule_from_a_preset_or_a_rule(as_operator, operator, saved, fields, rule):
    data = schedule_data(saved, missed="skip", grace_minutes="30", overlap="queue", **fields)
    response = as_operator.post(reverse("schedule_new"), data)
    schedule = Schedule.objects.get()
    assert response["Location"] == reverse("schedule_detail", args=[schedule.pk])
    assert (schedule.rrule, schedule.timezone, schedule.owner) == (rule, "Europe/Berlin", operator)
    assert (schedule.missed, schedule.grace_seconds, schedule.overlap) == ("skip", 1800, "queue")
    assert AuditEntry.objects.filter(event=AuditEntry.Event.SCHEDULE_CREATED).count() == 1


def test_a_one_off_is_read_in_its_own_zone(as_operator, saved):
    year = timezone.now().year + 1
    data = schedule_data(saved, kind="once", run_at=f"{year}-07-01T02:30", timezone="Asia/Tokyo")
    as_operator.post(reverse("schedule_new"), data)
    schedule = Schedule.objects.get()
    assert schedule.run_at == dt.datetime(year, 6, 30, 17, 30, tzinfo=dt.UTC)
    assert schedule.rrule == ""


def test_the_form_defaults_to_the_sites_zone_and_the_saved_set_action_asked_for(
    as_operator, saved, settings
):
    page = as_operator.get(reverse("schedule_new") + f"?saved={saved.pk}")
    form = page.context["form"]
    assert form.initial["saved_set_action"] == saved.pk
    assert form["timezone"].value() == settings.TIME_ZONE
    # The page's script replaces it with the browser's zone.
    assert "data-browser-zone" in text(page)
    for value in ("x", "²", "9" * 30, str(saved.pk + 1000)):
        form = as_operator.get(reverse("schedule_new"), {"saved": value}).context["form"]
        assert "saved_set_action" not in form.initial


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"repeat": "rrule", "rrule": "FREQ=MINUTELY"}, "rrule", "FREQ is one of"),
        ({"repeat": "rrule", "rrule": "BYHOUR=6"}, "rrule", "FREQ is one of"),
        ({"repeat": "rrule", "rrule": ""}, "rrule", "Give the rule"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Unknown time zone Mars/Olympus_Mons"),
        ({"kind": "once", "run_at": "2020-01-01T06:00"}, "run_at", "in the past"),
        ({"kind": "once", "run_at": ""}, "run_at", "Give the date and time"),
        ({"kind": "once", "run_at": "2099-03-29T02:30"}, "run_at", "02:30 does not exist"),
        ({"at_time": ""}, "at_time", "Give the local time"),
        ({"at_time": "25:00"}, "at_time", "valid time"),
        ({"repeat": "weekly", "weekday": ""}, "weekday", "Choose the day"),
        ({"grace_minutes": "100000"}, "grace_minutes", "less than or equal"),
        ({"missed": "sometimes"}, "missed", "valid choice"),
        ({"saved_set_action": ""}, "saved_set_action", "Choose the saved Set Action"),
    ],
)
def test_bad_schedules_are_refused_by_field_and_write_nothing(
    as_operator, saved, fields, field, message
):
    before = row_counts()
    response = as_operator.post(reverse("schedule_new"), schedule_data(saved, **fields))
    assert response.status_code == 200
    errors = " ".join(field_errors(response, field))
    assert message in errors, response.context["form"].errors
    assert row_counts() == before


def test_another_operators_saved_set_action_cannot_be_scheduled(client, saved):
    client.force_login(make_user("op2", "Operators"))
    before = row_counts()
    response = client.post(reverse("schedule_new"), schedule_data(saved))
    assert field_errors(response, "saved_set_action")
    assert row_counts() == before


def test_a_schedule_whose_owner_lost_the_grant_is_refused(as_operator, operator, saved):
    RunGrant.objects.all().delete()
    before = row_counts()
    response = as_operator.post(reverse("schedule_new"), schedule_data(saved))
    assert "no run grant covers it" in " ".join(response.context["form"].non_field_errors())
    assert row_counts() == before


def test_without_a_saved_set_action_the_form_says_to_save_one(as_operator):
    assert 'id="schedule-nothing-saved"' in text(as_operator.get(reverse("schedule_new")))


# Schedules: the list and a schedule's page.


def test_the_list_shows_the_next_run_in_local_time_and_the_state(as_operator, saved):
    active = recurring(saved)
    paused = recurring(saved, rule="FREQ=DAILY;BYHOUR=7;BYMINUTE=0;BYSECOND=0")
    Schedule.objects.filter(pk=paused.pk).update(paused=True)
    page = text(as_operator.get(reverse("schedule_list")))
    row = re.search(rf'<tr data-schedule-id="{active.pk}">.*?</tr>', page, re.S)[0]
    assert re.search(r"\d{4}-\d\d-\d\d 06:00 CES?T", row)
    assert 'data-schedule-state="active"' in row and "Every day at 06:00" in row
    row = re.search(rf'<tr data-schedule-id="{paused.pk}">.*?</tr>', page, re.S)[0]
    assert 'data-schedule-state="paused"' in row


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0;BYSECOND=0",
            "Every weekday at 06:00",
        ),
        ("FREQ=WEEKLY;BYDAY=SU;BYHOUR=23;BYMINUTE=5;BYSECOND=0", "Every Sunday at 23:05"),
        ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", "Every day at 02:30"),
        ("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", '<span class="mono rule">FREQ=DAILY;BYHOUR=2;'),
    ],
)
def test_a_presets_rule_reads_as_its_words_and_any_other_as_itself(rule, words):
    assert words in schedule_when(Schedule(rrule=rule, timezone="UTC"))


def test_the_page_shows_the_next_ten_runs_in_local_time_and_utc(as_operator, saved):
    schedule = recurring(saved)
    page = as_operator.get(reverse("schedule_detail", args=[schedule.pk]))
    runs = page.context["runs"]
    assert len(runs) == 10
    for run in runs:
        assert (run.local.hour, run.local.minute) == (6, 0)
        assert run.utc.hour in (4, 5)
    html = text(page)
    assert f"{runs[0].utc:%Y-%m-%d %H:%M} UTC" in html
    assert f"{runs[0].local:%Y-%m-%d} 06:00" in html


def test_a_run_the_clocks_skip_is_marked_with_where_it_moves(as_operator, saved):
    # The last Sunday of March at 02:30: never a Berlin time, every year.
    rule = "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30;BYSECOND=0"
    schedule = recurring(saved, rule=rule)
    html = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    notes = re.findall(
        r"02:30 does not exist on \d+ Mar \d{4} \(the clocks go forward\): runs at 03:00", html
    )
    assert len(notes) == 10


def test_a_time_that_happens_twice_is_marked_as_run_once(as_operator, saved):
    rule = "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30;BYSECOND=0"
    schedule = recurring(saved, rule=rule)
    html = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    assert len(re.findall(r"02:30 happens twice on \d+ Oct \d{4}.*?the first time", html)) == 10


def test_upcoming_moves_the_berlin_gap_to_three_or_shows_it_skipped():
    after = dt.datetime(2027, 3, 26, 12, tzinfo=dt.UTC)
    start = dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)
    daily = Schedule(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="Europe/Berlin", start=start)
    runs = upcoming(daily, after=after, count=4)
    assert [run.utc for run in runs] == [
        dt.datetime(2027, 3, 27, 1, 30, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 28, 1, 0, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 29, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 30, 0, 30, tzinfo=dt.UTC),
    ]
    assert [bool(run.note) for run in runs] == [False, True, False, False]
    assert runs[1].note == (
        "02:30 does not exist on 28 Mar 2027 (the clocks go forward): runs at 03:00"
    )
    daily.missing_dst = "skip"
    # Three runs, and the instant the clocks skipped among them.
    runs = upcoming(daily, after=after, count=3)
    assert [(run.utc.day, run.skipped) for run in runs] == [
        (27, False),
        (28, True),
        (29, False),
        (30, False),
    ]
    assert runs[1].note.endswith("not run (the schedule skips it)")
    autumn = dt.datetime(2027, 10, 30, 12, tzinfo=dt.UTC)
    daily.missing_dst = "run"
    runs = upcoming(daily, after=autumn, count=1)
    assert runs[0].utc == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
    assert runs[0].note.startswith("02:30 happens twice on 31 Oct 2027")


def test_an_hourly_rule_names_the_hour_the_clocks_skip():
    schedule = Schedule(
        rrule="FREQ=HOURLY;BYMINUTE=30",
        timezone="Europe/Berlin",
        start=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )
    runs = upcoming(schedule, after=dt.datetime(2027, 3, 27, 23, 45, tzinfo=dt.UTC), count=3)
    assert [f"{run.local:%H:%M}" for run in runs] == ["01:30", "03:00", "03:30"]
    assert runs[1].note.startswith("02:30 does not exist on 28 Mar 2027")


def test_a_schedule_whose_rule_no_longer_parses_says_why(as_operator, saved):
    schedule = recurring(saved)
    Schedule.objects.filter(pk=schedule.pk).update(rrule="FREQ=SECONDLY")
    page = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    assert 'id="schedule-broken"' in page
    assert "FREQ is one of" in text(as_operator.get(reverse("schedule_list")))


def test_past_runs_link_their_job_or_batch_and_say_why_others_did_not_run(
    as_operator, operator, cluster, saved
):
    schedule = recurring(saved)
    job = baker.make(Job, user=operator, cluster=cluster, action=3, status=Job.Status.SUCCESS)
    batch = uuid.uuid4()
    part = baker.make(
        Job, user=operator, cluster=cluster, action=3, status=Job.Status.SUCCESS, batch_id=batch
    )
    day = dt.datetime(2026, 1, 5, 5, tzinfo=dt.UTC)
    fired = Occurrence.objects.create(
        schedule=schedule, occurs_at=day, state="fired", job=job, version=1
    )
    Occurrence.objects.create(
        schedule=schedule,
        occurs_at=day + dt.timedelta(days=1),
        state="fired",
        job=part,
        batch_id=batch,
        version=2,
    )
    Occurrence.objects.create(
        schedule=schedule,
        occurs_at=day + dt.timedelta(days=2),
        state="skipped",
        reason="freeze: year-end",
    )
    Occurrence.objects.create(
        schedule=schedule,
        occurs_at=day + dt.timedelta(days=3),
        state="failed",
        reason="Cluster eu1 has no stored credential.",
    )
    html = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    row = re.search(rf'<tr data-occurrence-id="{fired.pk}".*?</tr>', html, re.S)[0]
    assert reverse("job_detail", args=[job.pk]) in row
    assert "2026-01-05 06:00 CET" in row and "2026-01-05 05:00 UTC" in row
    assert "#version-1" in row
    assert reverse("batch_detail", args=[batch]) in html
    assert "freeze: year-end" in html and "has no stored credential" in html
    assert html.count('data-state="skipped"') == 1 and html.count('data-state="failed"') == 1


def test_the_past_runs_region_is_204_until_it_changes(as_operator, saved):
    schedule = recurring(saved)
    url = reverse("schedule_detail", args=[schedule.pk])
    page = as_operator.get(url)
    assert 'hx-get="' in text(page)
    version = page.context["occurrences_version"]
    assert as_operator.get(url, {"part": "occurrences", "v": version}).status_code == 204
    Occurrence.objects.create(
        schedule=schedule, occurs_at=timezone.now(), state="skipped", reason="overlap"
    )
    part = as_operator.get(url, {"part": "occurrences", "v": version})
    assert part.status_code == 200
    assert 'id="schedule-occurrences"' in part.content.decode()
    assert "<html" not in part.content.decode()


def test_pause_and_resume_are_posts_audited_and_shown(as_operator, saved):
    schedule = recurring(saved)
    detail = reverse("schedule_detail", args=[schedule.pk])
    assert as_operator.get(reverse("schedule_pause", args=[schedule.pk])).status_code == 405
    response = as_operator.post(reverse("schedule_pause", args=[schedule.pk]), follow=True)
    schedule.refresh_from_db()
    assert schedule.paused
    html = text(response)
    assert 'id="resume-schedule"' in html and 'data-schedule-state="paused"' in html
    assert "hx-get" not in html
    as_operator.post(reverse("schedule_resume", args=[schedule.pk]))
    schedule.refresh_from_db()
    assert not schedule.paused
    assert 'id="pause-schedule"' in text(as_operator.get(detail))
    events = AuditEntry.objects.filter(event__startswith="schedule.").values_list(
        "event", flat=True
    )
    assert sorted(events) == ["schedule.created", "schedule.paused", "schedule.resumed"]


def test_pausing_needs_the_csrf_token(operator, saved):
    schedule = recurring(saved)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(reverse("schedule_pause", args=[schedule.pk])).status_code == 403
    schedule.refresh_from_db()
    assert not schedule.paused


def test_only_the_owner_or_an_admin_pauses_and_others_see_nothing(client, saved):
    schedule = recurring(saved)
    client.force_login(make_user("op2", "Operators"))
    assert client.get(reverse("schedule_detail", args=[schedule.pk])).status_code == 404
    assert client.post(reverse("schedule_pause", args=[schedule.pk])).status_code == 404
    client.force_login(make_user("aud1", "Auditors"))
    page = text(client.get(reverse("schedule_detail", args=[schedule.pk])))
    assert 'id="pause-schedule"' not in page
    before = row_counts()
    assert client.post(reverse("schedule_pause", args=[schedule.pk])).status_code == 403
    assert row_counts() == before


def test_a_cluster_without_a_stored_credential_is_pointed_out(as_operator, cluster, saved):
    schedule = recurring(saved)
    page = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    assert 'id="schedule-no-credential"' in page
    credential_set(cluster=cluster, token="svc-" + "s" * 30)
    page = text(as_operator.get(reverse("schedule_detail", args=[schedule.pk])))
    assert 'id="schedule-no-credential"' not in page and "svc-sss" not in page


# The job page.


def test_the_job_page_names_the_schedule_and_occurrence_that_made_it(
    as_operator, operator, cluster, saved
):
    schedule = recurring(saved)
    job = baker.make(Job, user=operator, cluster=cluster, action=3, status=Job.Status.SUCCESS)
    batch = uuid.uuid4()
    first, second = (
        baker.make(
            Job,
            user=operator,
            cluster=cluster,
            action=3,
            status=Job.Status.SUCCESS,
            batch_id=batch,
            batch_seq=seq,
        )
        for seq in (1, 2)
    )
    at = dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
    Occurrence.objects.create(schedule=schedule, occurs_at=at, state="fired", job=job, version=1)
    Occurrence.objects.create(
        schedule=schedule,
        occurs_at=at + dt.timedelta(days=1),
        state="fired",
        job=first,
        batch_id=batch,
        version=1,
    )
    html = text(as_operator.get(reverse("job_detail", args=[job.pk])))
    line = re.search(r'<p class="run-by-schedule".*?</p>', html, re.S)[0]
    assert reverse("schedule_detail", args=[schedule.pk]) in line
    assert "2026-07-01 06:00 CEST" in line and "2026-07-01 04:00 UTC" in line
    assert "version 1" in line
    for part in (first, second):
        html = text(as_operator.get(reverse("job_detail", args=[part.pk])))
        assert "2026-07-02 06:00 CEST" in html
    other = baker.make(Job, user=operator, cluster=cluster, action=3, status=Job.Status.SUCCESS)
    assert "run-by-schedule" not in text(as_operator.get(reverse("job_detail", args=[other.pk])))


def test_an_edited_saved_set_action_keeps_what_each_version_held(operator, cluster, saved):
    saved_set_action_edit(saved=saved, user=operator, cids="C1")
    assert list(
        SavedSetActionVersion.objects.filter(saved=saved).values_list("version", "customer_count")
    ) == [(2, 1), (1, 3)]


# Deleting.


def test_a_saved_set_action_a_schedule_runs_is_not_deleted_until_the_schedule_is(
    as_operator, saved
):
    schedule = recurring(saved)
    before = row_counts()
    response = as_operator.post(reverse("saved_set_action_delete", args=[saved.pk]), follow=True)
    assert "delete its schedules first" in text(response)
    assert row_counts() == before
    response = as_operator.post(reverse("schedule_delete", args=[schedule.pk]))
    assert response["Location"] == reverse("schedule_list")
    assert not Schedule.objects.exists()
    response = as_operator.post(reverse("saved_set_action_delete", args=[saved.pk]))
    assert response["Location"] == reverse("saved_set_action_list")
    assert not SavedSetAction.objects.exists()
    events = AuditEntry.objects.filter(event__endswith=".deleted").values_list("event", flat=True)
    assert sorted(events) == ["saved_set_action.deleted", "schedule.deleted"]


def test_only_the_owner_or_an_admin_deletes(client, saved):
    schedule = recurring(saved)
    client.force_login(make_user("aud1", "Auditors"))
    other = Client()
    other.force_login(make_user("op2", "Operators"))
    before = row_counts()
    assert client.get(reverse("schedule_delete", args=[schedule.pk])).status_code == 405
    assert client.post(reverse("schedule_delete", args=[schedule.pk])).status_code == 403
    assert client.post(reverse("saved_set_action_delete", args=[saved.pk])).status_code == 403
    assert other.post(reverse("schedule_delete", args=[schedule.pk])).status_code == 404
    assert row_counts() == before
