"""Approving a schedule's version once: an approval rule that covers scheduled runs is met by
approving the version the schedule runs (editing it asks again), or per run when the rule
says so. The service, the database's own refusal of the owner, the scheduler, the page and
the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import ApprovalRequest, ApprovalRule, Job
from jobs.services import Preapproval, approval_deny, credential_set, job_cancel, job_submit
from notifications.models import Notice
from schedules.models import Occurrence, Schedule, ScheduleApproval
from schedules.services import (
    NothingToApprove,
    StaleVersion,
    saved_set_action_create,
    saved_set_action_edit,
    schedule_approval_state,
    schedule_approve,
    schedule_create,
    scheduler_pass,
)
from tests.helpers import make_user, row_counts

pytestmark = pytest.mark.django_db

UTC = dt.UTC
PROBLEM = "application/problem+json"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def approvers(db) -> Group:
    return Group.objects.get(name="Approvers")


@pytest.fixture
def rule(approvers, cluster) -> ApprovalRule:
    return ApprovalRule.objects.create(cluster=cluster, approvers_group=approvers)


@pytest.fixture
def approver(approvers):
    return make_user("ap1", "Approvers")


@pytest.fixture
def second(approvers):
    return make_user("ap2", "Approvers")


@pytest.fixture
def sched(operator, cluster) -> Schedule:
    credential_set(cluster=cluster, token="svc-approvals-test-credential")
    saved = saved_set_action_create(
        user=operator, name="nightly", action="PE-Finalize", cluster=cluster, cids="C1 C2"
    )
    return schedule_create(
        user=operator,
        saved_set_action=saved,
        rrule="FREQ=HOURLY;BYMINUTE=0",
        now=at("2027-01-01T00:00"),
    )


def fire(hour: int) -> Occurrence:
    """The scheduler pass just after the hour's occurrence; the occurrence it decided."""
    scheduler_pass(now=at(f"2027-01-01T{hour:02}:00:05"))
    return Occurrence.objects.get(occurs_at=at(f"2027-01-01T{hour:02}:00"))


def end_runs() -> None:
    """End the runs in progress, so that the next occurrence does not overlap them."""
    running = list(Job.objects.filter(status="IN_PROGRESS").values_list("pk", flat=True))
    if running:
        job_cancel(job_ids=running)


def straight_to_the_queue(occurrence: Occurrence) -> None:
    assert occurrence.state == "fired", occurrence.reason
    job = occurrence.job
    assert job.status == "IN_PROGRESS" and job.approval_id is None
    assert DBTaskResult.objects.filter(args_kwargs__args=[str(job.pk)]).exists()


# -- The service


def test_approved_once_two_occurrences_both_go_straight_to_the_worker_queue(rule, sched, approver):
    assert not schedule_approval_state(sched).approved
    state = schedule_approve(schedule=sched, user=approver, version=1, ip_address="192.0.2.7")
    assert state.approved and state.approvers == ("ap1",)
    entry = AuditEntry.objects.get(event="schedule.approved")
    assert entry.actor == approver and entry.ip_address == "192.0.2.7"
    assert entry.details["version"] == 1 and entry.details["approved_by"] == ["ap1"]
    first = fire(1)
    straight_to_the_queue(first)
    end_runs()
    second_run = fire(2)
    straight_to_the_queue(second_run)
    assert not ApprovalRequest.objects.exists()
    requested = AuditEntry.objects.get(event="set_action.requested", job_id=second_run.job_id)
    assert requested.details["preapproved"] == {
        "rule_id": rule.pk,
        "schedule": sched.pk,
        "version": 1,
        "approved_by": ["ap1"],
    }
    fired = AuditEntry.objects.get(event="schedule.fired", job_id=first.job_id)
    assert fired.details["preapproved"]["approved_by"] == ["ap1"]


def test_an_unapproved_version_fails_its_run_saying_who_approves_and_notifies(
    rule, sched, operator, mail
):
    operator.email = "op1@example.test"
    operator.save()
    occurrence = fire(1)
    assert occurrence.state == "failed" and occurrence.job is None
    assert occurrence.reason == "version 1 of this schedule waits for approval by Approvers"
    assert not Job.objects.exists() and not ApprovalRequest.objects.exists()
    assert AuditEntry.objects.filter(event="schedule.failed", details__schedule=sched.pk).exists()
    assert Notice.objects.filter(event="schedule.failed").exists()


def test_an_edit_makes_the_next_run_wait_until_the_new_version_is_approved(
    rule, sched, approver, operator
):
    schedule_approve(schedule=sched, user=approver, version=1)
    straight_to_the_queue(fire(1))
    end_runs()
    saved_set_action_edit(saved=sched.saved_set_action, user=operator, cids="C1 C2 C3")
    waiting = fire(2)
    assert waiting.state == "failed"
    assert waiting.reason == "version 2 of this schedule waits for approval by Approvers"
    counts = row_counts()
    with pytest.raises(StaleVersion):
        schedule_approve(schedule=sched, user=approver, version=1)
    assert row_counts() == counts
    schedule_approve(schedule=sched, user=approver, version=2)
    approved = fire(3)
    straight_to_the_queue(approved)
    assert approved.version == 2


def test_the_owner_cannot_approve_their_own_schedule(rule, sched, operator, approvers):
    operator.groups.add(approvers)
    counts = row_counts()
    with pytest.raises(PermissionDenied, match="owner"):
        schedule_approve(schedule=sched, user=operator, version=1)
    assert row_counts() == counts
    assert fire(1).state == "failed"


def test_the_database_refuses_an_approval_by_the_owner(rule, sched, operator):
    counts = row_counts()
    with pytest.raises(IntegrityError, match="owner"), transaction.atomic():
        ScheduleApproval.objects.create(schedule=sched, version=1, rule=rule, decided_by=operator)
    assert row_counts() == counts


def test_the_database_refuses_turning_an_approval_into_the_owners(rule, sched, operator, approver):
    schedule_approve(schedule=sched, user=approver, version=1)
    with pytest.raises(IntegrityError, match="owner"), transaction.atomic():
        ScheduleApproval.objects.update(decided_by=operator)
    with pytest.raises(IntegrityError, match="owner"), transaction.atomic():
        Schedule.objects.filter(pk=sched.pk).update(owner=approver)
    assert ScheduleApproval.objects.get().decided_by == approver


def test_a_non_member_cannot_approve(rule, sched):
    outsider = make_user("op9", "Operators")
    counts = row_counts()
    with pytest.raises(PermissionDenied, match="Only members of Approvers"):
        schedule_approve(schedule=sched, user=outsider, version=1)
    assert row_counts() == counts


def test_an_approver_who_left_the_group_no_longer_counts(rule, sched, approver, approvers):
    schedule_approve(schedule=sched, user=approver, version=1)
    approver.groups.remove(approvers)
    assert fire(1).state == "failed"


def test_two_approvers_required_need_two_distinct_members(rule, sched, approver, second):
    ApprovalRule.objects.filter(pk=rule.pk).update(approvers_required=2)
    schedule_approve(schedule=sched, user=approver, version=1)
    counts = row_counts()
    again = schedule_approve(schedule=sched, user=approver, version=1)
    assert row_counts() == counts
    assert again.approvers == ("ap1",) and not again.approved
    assert fire(1).state == "failed"
    state = schedule_approve(schedule=sched, user=second, version=1)
    assert state.approved and state.approvers == ("ap1", "ap2")
    straight_to_the_queue(fire(2))


def test_a_per_run_rule_keeps_each_run_waiting_for_its_own_approval(rule, sched, approver):
    ApprovalRule.objects.filter(pk=rule.pk).update(per_run=True)
    counts = row_counts()
    with pytest.raises(NothingToApprove, match="each run"):
        schedule_approve(schedule=sched, user=approver, version=1)
    assert row_counts() == counts
    first = fire(1)
    assert first.state == "fired" and first.job.status == "PENDING_APPROVAL"
    approval_deny(request_id=first.job.approval_id, user=approver, comment="not tonight")
    second_run = fire(2)
    assert second_run.job.status == "PENDING_APPROVAL"
    assert ApprovalRequest.objects.count() == 2


def test_a_stricter_rule_added_after_the_approval_still_asks_per_request(
    rule, sched, approver, cluster
):
    schedule_approve(schedule=sched, user=approver, version=1)
    strict = make_user("boss", "Approvers")
    ApprovalRule.objects.create(
        cluster=cluster, approvers_group=strict.groups.get(), approvers_required=2
    )
    # The covering rule is now the stricter one: one approval does not meet it.
    assert fire(1).state == "failed"
    assert not Job.objects.exists()


def test_nothing_to_approve_without_a_covering_rule(sched, approver):
    with pytest.raises(NothingToApprove):
        schedule_approve(schedule=sched, user=approver, version=1)
    straight_to_the_queue(fire(1))


def test_a_preapproval_waives_only_the_rule_it_names(rule, operator, cluster):
    credential_set(cluster=cluster, token="svc-approvals-test-credential")
    other = ApprovalRule.objects.create(approvers_group=rule.approvers_group, min_customers=5)

    def submit(rule_id: int, cids: str) -> Job:
        preapproval = Preapproval(rule_id=rule_id, schedule_id=1, version=1, approvers=("ap1",))
        [job] = job_submit(
            user=operator,
            action=1,
            cluster=cluster,
            cids=cids,
            stored_credential=True,
            unattended=True,
            preapproval=preapproval,
        )
        return job

    assert submit(other.pk, "A1").status == "PENDING_APPROVAL"
    waived = submit(rule.pk, "A2")
    assert waived.status == "IN_PROGRESS" and waived.approval_id is None
    assert ApprovalRequest.objects.count() == 1


# -- The page


def test_the_page_shows_the_state_and_an_approver_approves_with_its_button(
    client, rule, sched, approver, operator
):
    url = reverse("schedule_detail", args=[sched.pk])
    client.force_login(operator)
    page = client.get(url).content.decode()
    assert "Needs approval by Approvers" in page and "schedule-approve" not in page
    client.force_login(approver)
    page = client.get(url).content.decode()
    assert "Needs approval by Approvers" in page and 'id="schedule-approve"' in page
    response = client.post(reverse("schedule_approve", args=[sched.pk]), {"version": "1"})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Approved by ap1 for version 1" in page and 'id="schedule-approve"' not in page
    assert ScheduleApproval.objects.get().decided_by == approver


def test_the_owner_posting_approve_is_refused_and_nothing_written(
    client, rule, sched, operator, approvers
):
    operator.groups.add(approvers)
    client.force_login(operator)
    counts = row_counts()
    response = client.post(
        reverse("schedule_approve", args=[sched.pk]), {"version": "1"}, follow=True
    )
    assert "cannot approve" in response.content.decode()
    assert row_counts() == counts


def test_a_stale_version_on_the_page_is_refused(client, rule, sched, approver, operator):
    saved_set_action_edit(saved=sched.saved_set_action, user=operator, cids="C9")
    client.force_login(approver)
    counts = row_counts()
    response = client.post(
        reverse("schedule_approve", args=[sched.pk]), {"version": "1"}, follow=True
    )
    assert "no longer current" in response.content.decode()
    assert row_counts() == counts


@pytest.mark.parametrize("version", ["", "x", "-1", "99999999999999999999"])
def test_a_bad_version_on_the_page_is_refused(client, rule, sched, approver, version):
    client.force_login(approver)
    counts = row_counts()
    response = client.post(
        reverse("schedule_approve", args=[sched.pk]), {"version": version}, follow=True
    )
    assert response.status_code == 200
    assert row_counts() == counts


def test_someone_neither_owner_nor_approver_cannot_open_the_page(client, rule, sched):
    client.force_login(make_user("op9", "Operators"))
    assert client.get(reverse("schedule_detail", args=[sched.pk])).status_code == 404
    counts = row_counts()
    response = client.post(reverse("schedule_approve", args=[sched.pk]), {"version": "1"})
    assert response.status_code == 404
    assert row_counts() == counts


def test_a_per_run_rule_shows_per_run_and_no_button(client, rule, sched, approver):
    ApprovalRule.objects.filter(pk=rule.pk).update(per_run=True)
    client.force_login(approver)
    page = client.get(reverse("schedule_detail", args=[sched.pk])).content.decode()
    assert "each run waits for its own approval by Approvers" in page
    assert 'id="schedule-approve"' not in page


# -- The API


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def api_approve(client, sched, secret: str, body):
    return client.post(
        f"/api/v1/schedules/{sched.pk}/approve",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )


def test_the_api_approves_with_an_approve_scoped_token(client, rule, sched, approver):
    secret = token_create(user=approver, name="ci", can_approve=True).secret
    response = api_approve(client, sched, secret, {"version": 1})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "schedule": sched.pk,
        "version": 1,
        "needed": True,
        "per_run": False,
        "approvers_group": "Approvers",
        "approvers_required": 1,
        "approved_by": ["ap1"],
        "approved": True,
    }
    straight_to_the_queue(fire(1))


def test_the_api_refuses_a_token_without_the_approve_scope(client, rule, sched, approver):
    secret = token_create(user=approver, name="ci").secret
    counts = written()
    response = api_approve(client, sched, secret, {"version": 1})
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM
    assert "approve scope" in response.json()["detail"]
    assert written() == counts


def test_the_api_refuses_the_owner_and_a_stale_version(client, rule, sched, operator, approvers):
    operator.groups.add(approvers)
    approver = make_user("ap1", "Approvers")
    mine = token_create(user=operator, name="own", can_approve=True).secret
    theirs = token_create(user=approver, name="ci", can_approve=True).secret
    counts = written()
    response = api_approve(client, sched, mine, {"version": 1})
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM
    assert "owner" in response.json()["detail"]
    response = api_approve(client, sched, theirs, {"version": 2})
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM
    assert "no longer current" in response.json()["detail"]
    response = api_approve(client, sched, theirs, {"version": "1"})
    assert response.status_code == 400
    assert written() == counts


def test_the_api_hides_a_schedule_from_someone_neither_owner_nor_approver(client, rule, sched):
    outsider = make_user("op9", "Operators")
    secret = token_create(user=outsider, name="ci", can_approve=True).secret
    counts = written()
    assert api_approve(client, sched, secret, {"version": 1}).status_code == 404
    assert written() == counts
