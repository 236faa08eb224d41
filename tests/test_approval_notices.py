"""The notices of approvals: `approval.requested` to the approvers (never the submitter),
`approval.reminder` once at half the wait, `approval.decided` to the submitter and to the
approvers it no longer waits for; written with the change, delivered to a real SMTP server
and a real webhook receiver on loopback, once each."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import transaction
from django.db.models import F
from django_tasks_db.models import DBTaskResult

from jobs.models import ApprovalRequest, ApprovalRule, Job
from jobs.services import (
    approval_approve,
    approval_deny,
    approval_withdraw,
    approvals_expire,
    approvals_remind,
    job_submit,
)
from notifications.approval_events import notices_record_approval
from notifications.delivery import deliver_notice, notice_deliver
from notifications.models import Notice, NotificationPreference, WebhookEndpoint
from ops.housekeeping import housekeeping_pass
from tests.helpers import TOKEN, make_user, row_counts, run_concurrently

APPROVAL_EVENTS = ["approval.requested", "approval.reminder", "approval.decided"]
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def approvers(db):
    return Group.objects.get(name="Approvers")


@pytest.fixture
def rule(approvers):
    return ApprovalRule.objects.create(approvers_group=approvers, ttl_seconds=2 * 3600)


@pytest.fixture
def people(operator, approvers):
    """The submitter (an approver too, with an address) and the group's other members: two
    with an address, one without, one inactive; and someone of another group."""
    operator.email = "op1@example.test"
    operator.save()
    operator.groups.add(approvers)
    make_user("ap1", "Approvers", email="ap1@example.test")
    make_user("ap2", "Approvers", email="ap2@example.test")
    make_user("ap3", "Approvers")
    make_user("gone", "Approvers", email="gone@example.test", is_active=False)
    make_user("aud", "Auditors", email="aud@example.test")
    return operator


@pytest.fixture
def mail_on(settings):
    settings.TMS_MAIL_ENABLED = True


def user(name: str) -> User:
    return User.objects.get(username=name)


def submit(operator, cluster, cids: str = "C1 C2") -> list[Job]:
    return job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)


def request_of(job: Job) -> ApprovalRequest:
    return Job.objects.get(pk=job.pk).approval


def mailed(event: str) -> list[str]:
    notices = Notice.objects.filter(event=event, channel=Notice.Channel.EMAIL)
    return sorted(notices.values_list("user__username", flat=True))


def deliver_all() -> None:
    for notice_id in Notice.objects.values_list("pk", flat=True):
        notice_deliver(notice_id=notice_id)


# Who is told what.


def test_a_request_is_mailed_to_its_approvers_never_to_its_submitter(people, cluster, rule, mail):
    [job] = submit(people, cluster)
    assert mailed("approval.requested") == ["ap1", "ap2"]
    deliver_all()

    messages = {message["To"]: message for message in mail.messages}
    assert set(messages) == {"ap1@example.test", "ap2@example.test"}
    message = messages["ap1@example.test"]
    assert message["Subject"] == (
        f"[tmsdash] Job {job.pk} waits for your approval: Trans-Begin on eu1, 2 customer(s), by op1"
    )
    request = request_of(job)
    for part in (message.get_body(("plain",)), message.get_body(("html",))):
        text = part.get_content()
        assert f"http://127.0.0.1:8000/approvals/{request.pk}/" in text
        assert "op1 asks for approval of this Set Action" in text
        assert request.expires_at.isoformat() in text
        assert TOKEN not in text


def test_a_subscribed_webhook_gets_the_request_with_its_link_and_others_get_nothing(
    people, cluster, rule, receiver, fake_cluster
):
    subscribed = WebhookEndpoint.objects.create(
        url=receiver.url, secret=receiver.secret, events=["approval.requested"]
    )
    WebhookEndpoint.objects.create(url=receiver.url + "/failures", secret="s" * 20)
    elsewhere = WebhookEndpoint.objects.create(
        url=receiver.url + "/elsewhere", secret="s" * 20, events=APPROVAL_EVENTS
    )
    elsewhere.clusters.add(
        type(cluster).objects.create(name="us1", base_url=fake_cluster.url + "/us1")
    )
    cluster.max_cids_per_request = 1
    cluster.save()
    jobs = submit(people, cluster, "C1 C2 C3")
    [notice] = Notice.objects.filter(channel=Notice.Channel.WEBHOOK)
    assert notice.endpoint == subscribed
    deliver_all()

    [delivery] = receiver.received()
    assert delivery.signature_ok
    request = request_of(jobs[0])
    assert delivery.payload == {
        "event": "approval.requested",
        "event_id": str(notice.event_id),
        "approval_id": str(request.pk),
        "batch_id": str(jobs[0].batch_id),
        "status": "PENDING",
        "cluster": "eu1",
        "action": "Trans-Begin",
        "operator": "op1",
        "customer_count": 3,
        "approvers_group": "Approvers",
        "approvers_required": 1,
        "expires_at": request.expires_at.isoformat(),
        "url": f"http://127.0.0.1:8000/approvals/{request.pk}/",
        "occurred_at": request.created_at.isoformat(),
    }


def test_a_denial_tells_the_submitter_with_the_comment_and_the_other_approvers(
    people, cluster, rule, mail
):
    [job] = submit(people, cluster)
    approval_deny(request_id=job.approval_id, user=user("ap1"), comment="Not on a Friday")
    assert mailed("approval.decided") == ["ap2", "op1"]
    [notice, *_] = Notice.objects.filter(event="approval.decided")
    assert (notice.payload["status"], notice.payload["decided_by"]) == ("DENIED", "ap1")
    assert notice.payload["comment"] == "Not on a Friday"
    mail.clear()
    for notice in Notice.objects.filter(event="approval.decided"):
        notice_deliver(notice_id=notice.pk)

    message = {m["To"]: m for m in mail.messages}["op1@example.test"]
    assert message["Subject"] == f"[tmsdash] Job {job.pk} denied by ap1: Trans-Begin on eu1"
    for part in (message.get_body(("plain",)), message.get_body(("html",))):
        text = part.get_content()
        assert "Denied by ap1: its jobs were never sent." in text
        assert "Not on a Friday" in text
        assert f"http://127.0.0.1:8000/approvals/{request_of(job).pk}/" in text


def approve(job):
    approval_approve(request_id=job.approval_id, user=user("ap1"), comment="fine")


def expire(job):
    approvals_expire(now=request_of(job).expires_at)


def withdraw(job):
    approval_withdraw(request_id=job.approval_id, user=job.user)


def withdraw_as_admin(job):
    approval_withdraw(
        request_id=job.approval_id, user=make_user("root", "Approvers", is_superuser=True)
    )


@pytest.mark.parametrize(
    ("end", "status", "decided_by", "told"),
    [
        (approve, "APPROVED", "ap1", ["ap2", "op1"]),
        (expire, "EXPIRED", None, ["ap1", "ap2", "op1"]),
        # The submitter who withdrew it knows; an admin who did is not told either.
        (withdraw, "WITHDRAWN", "op1", ["ap1", "ap2"]),
        (withdraw_as_admin, "WITHDRAWN", "root", ["ap1", "ap2", "op1"]),
    ],
)
def test_every_end_tells_whom_it_concerns_except_whoever_ended_it(
    people, cluster, rule, mail_on, end, status, decided_by, told
):
    [job] = submit(people, cluster)
    end(job)
    assert mailed("approval.decided") == told
    [payload] = {
        n.event_id: n.payload for n in Notice.objects.filter(event="approval.decided")
    }.values()
    assert (payload["status"], payload["decided_by"]) == (status, decided_by)
    assert payload["job_id"] == str(job.pk)


def test_the_first_of_two_approvals_tells_nobody_and_the_second_tells_the_first(
    people, cluster, approvers, mail_on
):
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=2)
    [job] = submit(people, cluster)
    approve(job)
    assert mailed("approval.decided") == []
    approval_approve(request_id=job.approval_id, user=user("ap2"))
    assert mailed("approval.decided") == ["ap1", "op1"]


def test_the_notices_commit_with_the_change_or_not_at_all(people, cluster, rule, mail_on):
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(people, cluster, "C1")
        assert mailed("approval.requested") == ["ap1", "ap2"]
        raise RuntimeError
    assert not Notice.objects.exists()
    [job] = submit(people, cluster, "C1")
    counts = row_counts()
    with pytest.raises(RuntimeError), transaction.atomic():
        approval_deny(request_id=job.approval_id, user=user("ap1"), comment="no")
        assert mailed("approval.decided") == ["ap2", "op1"]
        raise RuntimeError
    assert row_counts() == counts
    assert request_of(job).status == "PENDING"


def test_users_who_turned_a_kind_off_are_not_mailed_it(people, cluster, rule, mail_on):
    NotificationPreference.objects.create(user=user("ap2"), approval_requests=False)
    NotificationPreference.objects.create(user=people, approval_decisions=False)
    [job] = submit(people, cluster)
    approvals_remind(now=request_of(job).reminder_due_at)
    approval_deny(request_id=job.approval_id, user=user("ap1"), comment="no")
    assert mailed("approval.requested") == ["ap1"]
    assert mailed("approval.reminder") == ["ap1"]
    assert mailed("approval.decided") == []


def test_without_email_configured_only_webhooks_are_written(people, cluster, rule, settings):
    settings.TMS_MAIL_ENABLED = False
    WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/", secret="s" * 20, events=APPROVAL_EVENTS
    )
    submit(people, cluster)
    assert list(Notice.objects.values_list("channel", flat=True)) == ["webhook"]


# The reminder: once, at half the wait.


def test_the_reminder_goes_at_half_the_wait_once_and_never_to_who_approved(
    people, cluster, approvers, mail
):
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=2, ttl_seconds=7200)
    [job] = submit(people, cluster)
    approve(job)
    request = request_of(job)
    assert request.reminder_due_at == request.created_at + HOUR
    assert approvals_remind(now=request.reminder_due_at - dt.timedelta(seconds=1)) == []
    assert approvals_remind(now=request.reminder_due_at) == [request.pk]
    assert approvals_remind(now=request.reminder_due_at + dt.timedelta(minutes=1)) == []
    assert mailed("approval.reminder") == ["ap2"]
    request.refresh_from_db()
    assert request.reminded_at == request.reminder_due_at

    mail.clear()
    notice_deliver(notice_id=Notice.objects.get(event="approval.reminder").pk)
    [message] = mail.messages
    assert message["Subject"].startswith(f"[tmsdash] Reminder: Job {job.pk} still waits for")
    assert "Half of its wait has passed" in message.get_body(("plain",)).get_content()


def test_a_request_past_its_deadline_expires_and_is_never_reminded(people, cluster, rule, mail_on):
    [job] = submit(people, cluster)
    report = housekeeping_pass(now=request_of(job).expires_at)
    assert (report.approvals_expired, report.approvals_reminded) == ([job.approval_id], [])
    assert mailed("approval.reminder") == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_housekeeping_rounds_racing_send_each_reminder_once(
    people, cluster, rule, settings, receiver
):
    settings.TMS_MAIL_ENABLED = True
    WebhookEndpoint.objects.create(
        url=receiver.url, secret=receiver.secret, events=["approval.reminder"]
    )
    [job] = submit(people, cluster)
    # Submitted 61 minutes ago, for two hours: past half its wait.
    ApprovalRequest.objects.filter(pk=job.approval_id).update(
        created_at=F("created_at") - 61 * MINUTE, expires_at=F("expires_at") - 61 * MINUTE
    )

    reports, errors = run_concurrently(lambda n: housekeeping_pass())

    assert errors == []
    assert sum(len(report.approvals_reminded) for report in reports) == 1
    reminders = Notice.objects.filter(event="approval.reminder")
    assert sorted(reminders.values_list("channel", flat=True)) == ["email", "email", "webhook"]
    # One delivery task per notice: no round wrote the reminder a second time.
    tasks = DBTaskResult.objects.filter(task_path=deliver_notice.module_path)
    reminded = {str(pk) for pk in reminders.values_list("pk", flat=True)}
    assert sum(task.args_kwargs["args"][0] in reminded for task in tasks) == 3
    assert tasks.count() == Notice.objects.count()
    for notice in reminders.filter(channel="webhook"):
        notice_deliver(notice_id=notice.pk)
        notice_deliver(notice_id=notice.pk)
    assert [d.payload["event"] for d in receiver.received()] == ["approval.reminder"]


def test_an_event_recorded_twice_gives_each_recipient_one_notice(people, cluster, rule, mail_on):
    WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/", secret="s" * 20, events=APPROVAL_EVENTS
    )
    [job] = submit(people, cluster)
    request = request_of(job)
    assert Notice.objects.filter(event="approval.requested").count() == 3
    notices_record_approval(
        request_id=request.pk, event="approval.requested", at=request.created_at
    )
    assert Notice.objects.filter(event="approval.requested").count() == 3


def test_a_digest_lists_an_approval_notice_with_its_subject_and_comment(
    people, cluster, rule, mail
):
    [job] = submit(people, cluster)
    approval_deny(request_id=job.approval_id, user=user("ap1"), comment="Not on a Friday")
    held = Notice.objects.get(event="approval.decided", user=people)
    digest = Notice.objects.create(
        event_id=uuid.uuid4(),
        event=Notice.DIGEST,
        channel=Notice.Channel.EMAIL,
        user=people,
    )
    Notice.objects.filter(pk=held.pk).update(state=Notice.State.HELD, digest=digest)
    mail.clear()
    notice_deliver(notice_id=digest.pk)

    [message] = mail.messages
    text = message.get_body(("plain",)).get_content()
    assert f"[tmsdash] Job {job.pk} denied by ap1: Trans-Begin on eu1" in text
    assert "Not on a Friday" in text
    assert "Not on a Friday" in message.get_body(("html",)).get_content()


def test_the_housekeeping_command_says_how_many_it_reminded(people, cluster, rule, mail_on):
    [job] = submit(people, cluster)
    ApprovalRequest.objects.filter(pk=job.approval_id).update(
        created_at=F("created_at") - 61 * MINUTE, expires_at=F("expires_at") - 61 * MINUTE
    )
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out)
    assert "0 approval request(s) EXPIRED, 1 reminded," in out.getvalue()
    assert mailed("approval.reminder") == ["ap1", "ap2"]
    quiet = io.StringIO()
    call_command("housekeeping", "--once", stdout=quiet)
    assert quiet.getvalue() == ""
