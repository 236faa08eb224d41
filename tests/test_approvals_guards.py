"""What approvals guarantee whatever else happens: the database refuses a submitter's
decision however it is written, of approvers deciding at once one wins, a worker sends only
what was approved, and a real worker never sends what was not."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEntry
from jobs.models import ApprovalDecision, ApprovalRequest, ApprovalRule, Job, JobCustomer, JobToken
from jobs.services import (
    NOT_AS_APPROVED_MESSAGE,
    ApprovalClosed,
    approval_approve,
    approval_deny,
    approval_withdraw,
    approvals_expire,
    job_submit,
)
from jobs.tasks import run_job
from tests.helpers import THREADS, TOKEN, make_user, run_concurrently, worker


@pytest.fixture
def approvers(db):
    return Group.objects.get(name="Approvers")


@pytest.fixture
def approver(approvers):
    return make_user("ap1", "Approvers")


def submit(user, cluster, cids: str = "C1 C2") -> Job:
    [job] = job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)
    return job


def insert_decision(request_id, decider_id, verdict: str = "APPROVE") -> None:
    """A decision written as another client would: raw SQL, no model, no service."""
    values = [
        ApprovalRequest._meta.pk.get_db_prep_value(request_id, connection),
        decider_id,
        verdict,
        "raw",
        "0" * 64,
        ApprovalDecision._meta.get_field("decided_at").get_db_prep_value(
            timezone.now(), connection
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_approvaldecision "
            "(request_id, decider_id, verdict, comment, digest, decided_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            values,
        )


# The database refuses self-approval.


def test_the_database_refuses_a_decision_by_the_submitter_written_in_raw_sql(
    operator, cluster, approvers, approver
):
    ApprovalRule.objects.create(approvers_group=approvers)
    job = submit(operator, cluster)
    for verdict in ("APPROVE", "DENY"):
        with pytest.raises(IntegrityError, match="submitter"), transaction.atomic():
            insert_decision(job.approval_id, operator.pk, verdict)
    assert not ApprovalDecision.objects.exists()
    # Another user's decision goes in; turning it into the submitter's does not.
    insert_decision(job.approval_id, approver.pk)
    with pytest.raises(IntegrityError, match="submitter"), transaction.atomic():
        ApprovalDecision.objects.update(decider=operator)
    # Nor can the request's submitter be changed to make that decision their own.
    with pytest.raises(IntegrityError, match="submitter"), transaction.atomic():
        ApprovalRequest.objects.update(submitter=approver)
    assert ApprovalDecision.objects.get().decider == approver


# A worker sends only what was approved.


def tamper_customers(job):
    JobCustomer.objects.filter(job=job, cid="C2").update(cid="C9")


def add_customer(job):
    JobCustomer.objects.create(job=job, cid="C3")


def tamper_payload(job):
    Job.objects.filter(pk=job.pk).update(
        request_payload={**job.request_payload, "cids": ["C1", "C2", "C3"]}
    )


def tamper_endpoint(job):
    Job.objects.filter(pk=job.pk).update(action_path="/api/other")


def tamper_action(job):
    Job.objects.filter(pk=job.pk).update(action=4)


def tamper_tls(job):
    Job.objects.filter(pk=job.pk).update(verify_tls=False)


def tamper_approval(job):
    ApprovalDecision.objects.update(digest="0" * 64)


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_customers,
        add_customer,
        tamper_payload,
        tamper_endpoint,
        tamper_action,
        tamper_tls,
        tamper_approval,
    ],
    ids=lambda f: f.__name__,
)
def test_a_worker_refuses_to_send_a_job_changed_after_its_approval(
    operator, cluster, approvers, approver, fake_cluster, run_queued_tasks, tamper
):
    ApprovalRule.objects.create(approvers_group=approvers)
    job = submit(operator, cluster)
    approval_approve(request_id=job.approval_id, user=approver)
    tamper(job)
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", NOT_AS_APPROVED_MESSAGE)
    assert fake_cluster.count(str(job.pk)) == 0
    assert not JobToken.objects.filter(job=job).exists()
    [entry] = AuditEntry.objects.filter(job_id=job.pk, event="job.failed")
    assert entry.details["reason"] == "not_as_approved"


def test_a_worker_refuses_a_held_job_forced_into_the_queue_without_approval(
    operator, cluster, approvers, fake_cluster, run_queued_tasks
):
    ApprovalRule.objects.create(approvers_group=approvers)
    job = submit(operator, cluster)
    Job.objects.filter(pk=job.pk).update(status="IN_PROGRESS")
    run_job.enqueue(str(job.pk))
    run_queued_tasks()
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("FAILED", NOT_AS_APPROVED_MESSAGE)
    assert fake_cluster.count(str(job.pk)) == 0


# Concurrency, on real connections.


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(("required", "winners"), [(1, 1), (2, 2)])
def test_approvers_deciding_at_once_one_decision_wins(operator, cluster, required, winners):
    approvers = Group.objects.get(name="Approvers")
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=required)
    deciders = [make_user(f"ap{n}", "Approvers") for n in range(THREADS)]
    job = submit(operator, cluster)

    # Every decider has read the request pending and passed its checks before any of them
    # writes: what decides then is the database, not the order the threads happened to run.
    checked = threading.Barrier(THREADS, timeout=30)

    def after_the_checks(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "auth_user_groups" in sql:
            checked.wait()
        return result

    # With two required, everyone approves (one denial would end it first); with one, half
    # deny: whichever decision comes first wins.
    def decide(n: int) -> ApprovalRequest:
        with connection.execute_wrapper(after_the_checks):
            if required == 1 and n % 2:
                return approval_deny(request_id=job.approval_id, user=deciders[n], comment="no")
            return approval_approve(request_id=job.approval_id, user=deciders[n])

    results, errors = run_concurrently(decide)
    assert len(results) == winners, errors
    assert len(errors) == THREADS - winners
    assert all(isinstance(error, ApprovalClosed) for error in errors), errors
    assert all("already" in str(error) for error in errors)
    request = ApprovalRequest.objects.get()
    assert request.decisions.count() == winners
    job.refresh_from_db()
    if request.status == "APPROVED":
        assert job.status == "IN_PROGRESS"
        assert DBTaskResult.objects.count() == 1
    else:
        assert (request.status, job.status) == ("DENIED", "DENIED")
        assert DBTaskResult.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_sends_the_approved_job_once_and_nothing_else(
    operator, cluster, fake_cluster
):
    approvers = Group.objects.get(name="Approvers")
    ApprovalRule.objects.create(approvers_group=approvers)
    approver = make_user("ap1", "Approvers")
    approved, denied, expired, withdrawn, waiting = (
        submit(operator, cluster, f"C{n}") for n in range(5)
    )
    approval_approve(request_id=approved.approval_id, user=approver)
    approval_deny(request_id=denied.approval_id, user=approver, comment="no")
    ApprovalRequest.objects.filter(pk=expired.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    approvals_expire()
    approval_withdraw(request_id=withdrawn.approval_id, user=operator)
    # Stray deliveries of each held or ended job's task, as a forged or replayed queue row.
    for job in (denied, expired, withdrawn, waiting):
        run_job.enqueue(str(job.pk))

    process = worker("--batch")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output

    assert Job.objects.get(pk=approved.pk).status == "SUCCESS"
    assert fake_cluster.count(str(approved.pk)) == 1
    for job, status in (
        (denied, "DENIED"),
        (expired, "EXPIRED"),
        (withdrawn, "CANCELLED"),
        (waiting, "PENDING_APPROVAL"),
    ):
        assert Job.objects.get(pk=job.pk).status == status
        assert fake_cluster.count(str(job.pk)) == 0
    assert TOKEN not in output
