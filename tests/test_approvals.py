"""Four-eyes approvals: which submissions wait, what waiting holds, and every way a request
ends: approved (queued, run once), denied, expired or withdrawn (never sent)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEntry
from jobs.badges import shown_status, status_badge
from jobs.lanes import lane_queue
from jobs.management.commands.set_action import Command as SetActionCommand
from jobs.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalRule,
    InFlightCustomer,
    Job,
    JobToken,
)
from jobs.services import (
    ApprovalClosed,
    CustomerConflict,
    approval_approve,
    approval_deny,
    approval_needed,
    approval_withdraw,
    approvals_expire,
    job_cancel,
    job_reap_stale,
    job_run,
    job_submit,
    job_submit_preview,
)
from ops.housekeeping import housekeeping_pass
from tests.helpers import TOKEN, make_user, row_counts

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def approvers(db):
    return Group.objects.get(name="Approvers")


@pytest.fixture
def rule(approvers):
    return ApprovalRule.objects.create(approvers_group=approvers)


@pytest.fixture
def approver(approvers):
    return make_user("ap1", "Approvers")


def submit(user, cluster, cids: str = "C1 C2", **extra) -> list[Job]:
    return job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN, **extra)


def request_of(job: Job) -> ApprovalRequest:
    return Job.objects.get(pk=job.pk).approval


def statuses(jobs: list[Job]) -> list[str]:
    return [Job.objects.get(pk=job.pk).status for job in jobs]


# Which submissions wait.


def test_no_rule_no_wait(operator, cluster):
    assert approval_needed(action=1, cluster=cluster, customers=10_000) is None
    [job] = submit(operator, cluster)
    assert (job.status, job.approval_id) == ("IN_PROGRESS", None)


def test_a_rule_covers_its_cluster_its_action_and_from_its_least_customers(
    cluster, approvers, fake_cluster
):
    other = Group.objects.create(name="Other")
    ApprovalRule.objects.create(approvers_group=other, cluster=cluster, action=4, min_customers=3)
    assert approval_needed(action=4, cluster=cluster, customers=2) is None
    assert approval_needed(action=1, cluster=cluster, customers=3) is None
    needed = approval_needed(action=4, cluster=cluster, customers=3)
    assert (needed.group, needed.required, needed.ttl_seconds) == ("Other", 1, 24 * 3600)
    elsewhere = type(cluster).objects.create(name="eu2", base_url=fake_cluster.url + "/x")
    assert approval_needed(action=4, cluster=elsewhere, customers=3) is None


def test_of_several_rules_the_strictest_then_the_most_specific_decides(cluster, approvers):
    named = Group.objects.create(name="Named")
    two = Group.objects.create(name="Two")
    ApprovalRule.objects.create(approvers_group=approvers)
    ApprovalRule.objects.create(approvers_group=named, cluster=cluster)
    assert approval_needed(action=1, cluster=cluster, customers=1).group == "Named"
    ApprovalRule.objects.create(approvers_group=named, cluster=cluster, action=1, min_customers=1)
    ApprovalRule.objects.create(approvers_group=two, approvers_required=2)
    needed = approval_needed(action=1, cluster=cluster, customers=1)
    assert (needed.group, needed.required) == ("Two", 2)


def test_a_rule_waits_at_most_seven_days_in_validation_and_in_the_database(approvers):
    rule = ApprovalRule(approvers_group=approvers, ttl_seconds=7 * 24 * 3600 + 1)
    with pytest.raises(ValidationError) as error:
        rule.full_clean()
    assert set(error.value.message_dict) == {"ttl_seconds"}
    for fields in ({"ttl_seconds": 7 * 24 * 3600 + 1}, {"approvers_required": 3}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ApprovalRule.objects.create(approvers_group=approvers, **fields)


def test_the_review_says_who_must_approve(operator, cluster, rule):
    preview = job_submit_preview(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    assert (preview.approval.group, preview.approval.required) == ("Approvers", 1)


# What a waiting submission holds.


def test_a_covered_submit_waits_holding_its_token_and_customers_and_queues_nothing(
    operator, cluster, rule
):
    cluster.max_cids_per_request = 2
    cluster.save()
    jobs = submit(operator, cluster, "C1 C2 C3", ip_address="10.0.0.7")
    assert [job.status for job in jobs] == ["PENDING_APPROVAL"] * 2
    [request] = ApprovalRequest.objects.all()
    assert {job.approval_id for job in jobs} == {request.pk}
    assert (request.status, request.submitter, request.batch_id) == (
        "PENDING",
        operator,
        jobs[0].batch_id,
    )
    assert (request.approvers_group.name, request.approvers_required) == ("Approvers", 1)
    assert request.expires_at - request.created_at == dt.timedelta(hours=24)
    assert len(request.part_digests) == 2
    assert DBTaskResult.objects.count() == 0
    assert JobToken.objects.filter(job__in=jobs).count() == 2
    assert InFlightCustomer.objects.filter(job__in=jobs).count() == 3
    entries = AuditEntry.objects.filter(event="approval.requested")
    assert sorted(e.job_id for e in entries) == sorted(job.pk for job in jobs)
    assert entries[0].details["approval_id"] == str(request.pk)
    assert entries[0].ip_address == "10.0.0.7"
    # Its customers are held against other jobs on the cluster.
    with pytest.raises(CustomerConflict):
        submit(operator, cluster, "C3")


def test_a_pending_submit_replayed_by_its_key_returns_the_same_jobs(operator, cluster, rule):
    first = submit(operator, cluster, idempotency_key="k1")
    before = row_counts()
    again = submit(operator, cluster, idempotency_key="k1")
    assert again.replayed and [job.pk for job in again] == [job.pk for job in first]
    assert row_counts() == before


# Approving.


def test_approval_queues_the_jobs_and_the_worker_calls_the_cluster_once(
    operator, cluster, rule, approver, fake_cluster, run_queued_tasks
):
    [job] = submit(operator, cluster)
    request = approval_approve(
        request_id=job.approval_id, user=approver, comment="ok", ip_address="10.0.0.8"
    )
    assert (request.status, request.decided_at is not None) == ("APPROVED", True)
    assert statuses([job]) == ["IN_PROGRESS"]
    # On its cluster's queue, which a worker whose share of the cluster is taken passes over.
    assert list(DBTaskResult.objects.values_list("queue_name", flat=True)) == [
        lane_queue(cluster.pk)
    ]
    [decision] = ApprovalDecision.objects.all()
    assert (decision.decider, decision.verdict, decision.digest) == (
        approver,
        "APPROVE",
        request.digest,
    )
    [entry] = AuditEntry.objects.filter(event="approval.approved")
    assert (entry.actor, entry.job_id, entry.details["comment"]) == (approver, job.pk, "ok")
    run_queued_tasks()
    assert statuses([job]) == ["SUCCESS"]
    assert fake_cluster.count(str(job.pk)) == 1


def test_an_approved_job_waits_its_queue_expiry_from_the_approval(
    operator, cluster, rule, approver, settings
):
    [job] = submit(operator, cluster)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - 20 * HOUR)
    approval_approve(request_id=job.approval_id, user=approver)
    assert job_reap_stale().expired == []
    assert job_reap_stale(now=timezone.now() + dt.timedelta(seconds=settings.TMS_QUEUE_EXPIRY + 1))
    assert statuses([job]) == ["FAILED"]


def test_the_submitter_may_not_approve_even_as_an_approver_or_an_admin(cluster, rule):
    submitter = make_user("boss", "Approvers", is_superuser=True)
    submitter.groups.add(Group.objects.get(name="Operators"))
    [job] = submit(submitter, cluster)
    before = row_counts()
    with pytest.raises(PermissionDenied, match="someone else"):
        approval_approve(request_id=job.approval_id, user=submitter)
    with pytest.raises(PermissionDenied, match="someone else"):
        approval_deny(request_id=job.approval_id, user=submitter, comment="no")
    assert row_counts() == before


def test_only_members_of_the_group_may_decide(operator, cluster, rule):
    outsider = make_user("admin2", "Operators", is_superuser=True)
    [job] = submit(operator, cluster)
    before = row_counts()
    with pytest.raises(PermissionDenied, match="Only members of Approvers"):
        approval_approve(request_id=job.approval_id, user=outsider)
    assert row_counts() == before


def test_a_denial_needs_a_comment(operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    before = row_counts()
    with pytest.raises(ValidationError):
        approval_deny(request_id=job.approval_id, user=approver, comment="  ")
    assert row_counts() == before


def test_two_approvers_rule_waits_for_a_second_distinct_approver(
    operator, cluster, approvers, approver, run_queued_tasks, fake_cluster
):
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=2)
    second = make_user("ap2", "Approvers")
    [job] = submit(operator, cluster)
    assert approval_approve(request_id=job.approval_id, user=approver).status == "PENDING"
    assert statuses([job]) == ["PENDING_APPROVAL"]
    assert DBTaskResult.objects.count() == 0
    with pytest.raises(ApprovalClosed, match="already approved"):
        approval_approve(request_id=job.approval_id, user=approver)
    assert approval_approve(request_id=job.approval_id, user=second).status == "APPROVED"
    assert ApprovalDecision.objects.filter(verdict="APPROVE").count() == 2
    run_queued_tasks()
    assert fake_cluster.count(str(job.pk)) == 1


def test_a_deny_after_the_first_of_two_approvals_ends_it(
    operator, cluster, approvers, approver, run_queued_tasks, fake_cluster
):
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=2)
    second = make_user("ap2", "Approvers")
    [job] = submit(operator, cluster)
    approval_approve(request_id=job.approval_id, user=approver)
    approval_deny(request_id=job.approval_id, user=second, comment="not now")
    assert statuses([job]) == ["DENIED"]
    run_queued_tasks()
    assert fake_cluster.count(str(job.pk)) == 0


# Ending without approval: never sent, the token deleted, the customers released.


def deny(job, approver, operator):
    return approval_deny(request_id=job.approval_id, user=approver, comment="Too many customers")


def expire(job, approver, operator):
    ApprovalRequest.objects.filter(pk=job.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    return approvals_expire()


def withdraw(job, approver, operator):
    return approval_withdraw(request_id=job.approval_id, user=operator)


def cancel(job, approver, operator):
    return job_cancel(job_ids=[job.pk], user=operator)


@pytest.mark.parametrize(
    ("end", "job_status", "request_status", "event", "message"),
    [
        (deny, "DENIED", "DENIED", "approval.denied", "Denied by ap1: Too many customers"),
        (expire, "EXPIRED", "EXPIRED", "approval.expired", "Expired: not approved by "),
        (withdraw, "CANCELLED", "WITHDRAWN", "approval.withdrawn", "Withdrawn by op1 "),
        (cancel, "CANCELLED", "WITHDRAWN", "approval.withdrawn", "Withdrawn by op1 "),
    ],
    ids=["deny", "expire", "withdraw", "cancel"],
)
def test_a_request_ended_unapproved_ends_every_job_of_it_and_never_reaches_the_cluster(
    operator,
    cluster,
    rule,
    approver,
    fake_cluster,
    run_queued_tasks,
    end,
    job_status,
    request_status,
    event,
    message,
):
    cluster.max_cids_per_request = 1
    cluster.save()
    jobs = submit(operator, cluster)
    end(jobs[0], approver, operator)
    assert statuses(jobs) == [job_status] * 2
    assert ApprovalRequest.objects.get().status == request_status
    for job in Job.objects.filter(pk__in=[job.pk for job in jobs]):
        assert job.error_message.startswith(message)
        assert job.finished_at is not None
        assert AuditEntry.objects.filter(job_id=job.pk, event=event).count() == 1
    assert not JobToken.objects.exists()
    assert not InFlightCustomer.objects.exists()
    # Nothing to run, even for a task queued by hand.
    assert all(not job_run(job_id=job.pk) for job in jobs)
    run_queued_tasks()
    assert [fake_cluster.count(str(job.pk)) for job in jobs] == [0, 0]
    # A decision on it now is refused, and says why.
    with pytest.raises(ApprovalClosed, match=request_status.lower()):
        approval_approve(request_id=jobs[0].approval_id, user=approver)
    # Its customers are free again.
    assert submit(operator, cluster, "C1 C2")


def test_approval_after_the_deadline_is_refused_before_housekeeping_ends_it(
    operator, cluster, rule, approver
):
    [job] = submit(operator, cluster)
    ApprovalRequest.objects.filter(pk=job.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    before = row_counts()
    with pytest.raises(ApprovalClosed, match="expired at"):
        approval_approve(request_id=job.approval_id, user=approver)
    with pytest.raises(ApprovalClosed, match="expired at"):
        approval_withdraw(request_id=job.approval_id, user=operator)
    assert (
        job_cancel(job_ids=[job.pk], user=operator)
        .refused[job.pk]
        .startswith("This request expired at")
    )
    assert row_counts() == before
    report = housekeeping_pass(now=timezone.now())
    assert report.approvals_expired == [job.approval_id]
    assert "1 approval request(s) EXPIRED" in str(report)
    assert statuses([job]) == ["EXPIRED"]


def test_only_the_submitter_or_an_admin_may_withdraw(operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    with pytest.raises(PermissionDenied):
        approval_withdraw(request_id=job.approval_id, user=approver)
    admin = make_user("root", is_superuser=True)
    assert approval_withdraw(request_id=job.approval_id, user=admin) == [job.pk]


# How waiting and its ends look.


def test_the_jobs_list_filters_jobs_pending_approval(client, operator, cluster, rule):
    ApprovalRule.objects.all().update(min_customers=2)
    pending, queued = submit(operator, cluster, "C1 C2")[0], submit(operator, cluster, "C3")[0]
    client.force_login(operator)
    content = client.get(reverse("job_list"), {"status": "PENDING_APPROVAL"}).content.decode()
    assert str(pending.pk) in content and str(queued.pk) not in content


def test_badges_say_pending_approval_denied_and_expired_with_why(operator, cluster, rule, approver):
    pending, denied = submit(operator, cluster, "C1")[0], submit(operator, cluster, "C2")[0]
    approval_deny(request_id=denied.approval_id, user=approver, comment="<not> today")
    pending.refresh_from_db()
    denied.refresh_from_db()
    assert shown_status(pending) == "PENDING APPROVAL"
    assert 'class="badge badge-pending_approval"' in status_badge(pending)
    badge = status_badge(denied)
    assert 'class="badge badge-denied"' in badge
    assert 'title="Denied by ap1: &lt;not&gt; today"' in badge


def test_the_batch_page_counts_parts_pending_approval_as_not_ended(client, operator, cluster, rule):
    cluster.max_cids_per_request = 1
    cluster.save()
    jobs = submit(operator, cluster, "C1 C2")
    client.force_login(operator)
    content = client.get(reverse("batch_detail", args=[jobs[0].batch_id])).content.decode()
    assert 'data-count="PENDING_APPROVAL">2<' in content
    assert "0 of 2 jobs ended" in content


def test_set_action_waits_through_approval_and_exits_1_when_denied(
    operator, cluster, rule, approver
):
    [job] = submit(operator, cluster)
    approval_deny(request_id=job.approval_id, user=approver, comment="No")
    out = io.StringIO()
    command = SetActionCommand(stdout=out)
    assert command.wait_for([job.pk]) == 1
    assert out.getvalue() == f"{job.pk} DENIED no HTTP status Denied by ap1: No\n"
