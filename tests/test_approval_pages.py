"""Approvals in the operator UI: the review saying a submission will wait, what waits for an
approver (the list and the header's count), a request's page with its decisions, and the job
page and its timeline while it waits and once it is decided."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import ApprovalRequest, ApprovalRule, Job
from jobs.services import approval_approve, approval_deny, job_submit
from tests.helpers import TOKEN, make_user, row_counts


@pytest.fixture
def approvers(db):
    return Group.objects.get(name="Approvers")


@pytest.fixture
def rule(approvers):
    return ApprovalRule.objects.create(approvers_group=approvers, ttl_seconds=3 * 3600)


@pytest.fixture
def approver(approvers):
    return make_user("ap1", "Approvers")


def submit(user, cluster, cids: str = "C1 C2") -> list[Job]:
    return job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN)


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def detail_url(job: Job) -> str:
    return reverse("approval_detail", args=[job.approval_id])


def decide(client, job: Job, decision: str, comment: str = ""):
    return client.post(detail_url(job), {"decision": decision, "comment": comment})


# The review and the pages of a waiting submission.


def test_the_review_says_it_will_wait_by_whom_and_how_long(client, operator, cluster, rule):
    client.force_login(operator)
    form = {"action": 1, "cluster": cluster.pk, "cids": "C1", "token": TOKEN}
    content = client.post(reverse("set_action"), form | {"idempotency_key": "k"}).content.decode()
    assert "This submission will wait for approval" in content
    assert "<strong>Approvers</strong>" in content and "at most 3 hours" in content
    assert "Submit for approval" in content and "Confirm and run" not in content
    ApprovalRule.objects.all().delete()
    content = client.post(reverse("set_action"), form | {"idempotency_key": "k2"}).content.decode()
    assert "will wait for approval" not in content and "Confirm and run" in content


def test_a_waiting_job_page_says_it_waits_and_is_followed_live(client, operator, cluster, rule):
    [job] = submit(operator, cluster)
    content = page(client, operator, reverse("job_detail", args=[job.pk]))
    assert "Waits for approval</strong> by Approvers (1 approver)" in content
    assert detail_url(job) in content
    assert "Withdraw the request" in content
    # Polled like a job in progress, so that the decision shows without a reload.
    assert "part=state&amp;v=" in content
    assert "waits for approval by Approvers (1 approver)" in content  # its timeline


def test_the_batch_page_says_it_waits(client, operator, cluster, rule):
    cluster.max_cids_per_request = 1
    cluster.save()
    jobs = submit(operator, cluster)
    content = page(client, operator, reverse("batch_detail", args=[jobs[0].batch_id]))
    assert "Waits for approval</strong> by Approvers" in content
    assert "Withdraw the request" in content


# What waits for an approver.


def test_the_list_shows_only_what_the_user_may_decide_nearest_deadline_first(
    client, operator, cluster, approvers, rule, approver
):
    later, sooner = submit(operator, cluster, "C1")[0], submit(operator, cluster, "C2")[0]
    ApprovalRequest.objects.filter(pk=sooner.approval_id).update(
        expires_at=timezone.now() + dt.timedelta(minutes=30)
    )
    approver.groups.add(Group.objects.get(name="Operators"))
    own = submit(approver, cluster, "C3")[0]
    other_group = Group.objects.create(name="Others")
    others = ApprovalRule.objects.create(approvers_group=other_group, cluster=cluster, action=4)
    elsewhere = job_submit(user=operator, action=4, cluster=cluster, cids="C4", token=TOKEN)[0]
    assert elsewhere.approval.approvers_group_id == others.approvers_group_id
    expired = submit(operator, cluster, "C5")[0]
    ApprovalRequest.objects.filter(pk=expired.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    content = page(client, approver, reverse("approval_list"))
    shown = [str(sooner.approval_id), str(later.approval_id)]
    rows = [line for line in content.splitlines() if "data-approval-id=" in line]
    assert [row.split('"')[1] for row in rows] == shown
    assert 'id="approvals-count">2<' in content
    # The header's count is one query, whatever the number of requests.
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("job_list"))
    assert sum("jobs_approvalrequest" in query["sql"] for query in queries) == 1
    assert str(own.approval_id) not in content
    # Decided by them (the first of two): no longer waiting for them.
    ApprovalRequest.objects.filter(pk=sooner.approval_id).update(approvers_required=2)
    approval_approve(request_id=sooner.approval_id, user=approver)
    content = page(client, approver, reverse("approval_list"))
    assert str(sooner.approval_id) not in content and 'id="approvals-count">1<' in content


def test_the_badge_is_for_approvers_only(client, operator, cluster, rule, approver):
    content = page(client, approver, reverse("job_list"))
    assert 'id="approvals-link"' in content and "approvals-count" not in content
    assert 'id="approvals-link"' not in page(client, operator, reverse("job_list"))
    submit(operator, cluster)
    assert 'id="approvals-count">1<' in page(client, approver, reverse("job_list"))


# A request's page and the decisions on it.


def test_the_request_page_shows_what_will_run_and_the_decision_form(
    client, operator, cluster, rule, approver
):
    [job] = submit(operator, cluster, " ".join(f"C{n}" for n in range(150)))
    content = page(client, approver, detail_url(job))
    assert "Trans-Begin" in content and cluster.name in content and cluster.base_url in content
    assert 'id="approval-customers">150<' in content and "op1" in content
    assert "C0, C1," in content and "C99" in content and "C100," not in content
    assert "Customers 1 to 100 of 150" in content
    assert "2 h 59 min left" in content
    assert 'id="approve-button"' in content and 'id="deny-button"' in content
    # The approver sees no one's jobs: the request names its jobs without linking them.
    assert reverse("job_detail", args=[job.pk]) not in content
    assert "C149" in page(client, approver, detail_url(job) + "?page=2")


def test_approve_queues_the_job(client, operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    client.force_login(approver)
    response = decide(client, job, "approve", "fine")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS
    assert DBTaskResult.objects.count() == 1
    content = page(client, approver, detail_url(job))
    assert "Approved: its jobs are queued" in content
    assert 'data-outcome="APPROVED"' in content and 'id="approve-button"' not in content


def test_deny_needs_a_comment_and_ends_the_job_denied(client, operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    client.force_login(approver)
    before = row_counts()
    response = decide(client, job, "deny", "   ")
    assert response.status_code == 400
    assert "Say why the request is denied." in response.content.decode()
    assert row_counts() == before
    response = decide(client, job, "deny", "<script>alert(1)</script> not now")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.DENIED
    for url in (detail_url(job),):
        content = page(client, approver, url)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; not now" in content
        assert "<script>alert(1)" not in content
    content = page(client, operator, reverse("job_detail", args=[job.pk]))
    assert 'data-event="approval.denied">&lt;script&gt;alert(1)&lt;/script&gt; not now' in content
    assert "<script>alert(1)" not in content


def test_the_submitter_sees_no_decision_buttons_and_may_not_decide(
    client, cluster, approvers, rule
):
    submitter = make_user("op2", "Operators")
    submitter.groups.add(approvers)
    [job] = submit(submitter, cluster)
    content = page(client, submitter, detail_url(job))
    assert 'id="approve-button"' not in content and 'id="deny-button"' not in content
    assert 'id="withdraw-button"' in content and "another member of Approvers" in content
    before = row_counts()
    assert decide(client, job, "approve").status_code == 403
    assert row_counts() == before


def test_others_get_404_and_a_member_of_another_group_403_on_deciding(
    client, operator, cluster, rule, approver
):
    [job] = submit(operator, cluster)
    stranger = make_user("op3", "Operators")
    client.force_login(stranger)
    assert client.get(detail_url(job)).status_code == 404
    assert decide(client, job, "approve").status_code == 404
    auditor = make_user("aud", "Auditors")
    content = page(client, auditor, detail_url(job))
    assert 'id="approve-button"' not in content and 'id="withdraw-button"' not in content
    before = row_counts()
    assert decide(client, job, "approve").status_code == 403
    assert row_counts() == before


def test_an_expired_request_shows_no_buttons_and_refuses_a_decision(
    client, operator, cluster, rule, approver
):
    [job] = submit(operator, cluster)
    ApprovalRequest.objects.filter(pk=job.approval_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    for user in (approver, operator):
        content = page(client, user, detail_url(job))
        assert 'data-outcome="EXPIRED"' in content
        assert "<button" not in content.split("</header>")[1]
    client.force_login(approver)
    before = row_counts()
    response = decide(client, job, "approve")
    assert row_counts() == before
    content = page(client, approver, response["Location"])
    assert "This request expired at" in content
    content = page(client, operator, reverse("job_detail", args=[job.pk]))
    assert "Its approval deadline passed" in content and "Withdraw the request" not in content


def test_a_second_decision_is_told_it_was_decided(client, operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    other = make_user("ap2", "Approvers")
    # The second approver opened the page before the first decided.
    assert 'id="approve-button"' in page(client, other, detail_url(job))
    approval_deny(request_id=job.approval_id, user=approver, comment="no")
    before = row_counts()
    response = decide(client, job, "approve")
    assert response.status_code == 302 and row_counts() == before
    content = page(client, other, response["Location"])
    assert "This request was already denied (by ap1)." in content
    assert 'data-outcome="DENIED"' in content and 'id="approve-button"' not in content


def test_two_approvers_shows_who_approved_so_far(client, operator, cluster, approvers, approver):
    ApprovalRule.objects.create(approvers_group=approvers, approvers_required=2)
    [job] = submit(operator, cluster)
    client.force_login(approver)
    response = decide(client, job, "approve", "one")
    assert response.status_code == 302
    content = page(client, approver, detail_url(job))
    assert "waits for a second approver" in content
    assert "2 approvers required, 1 so far" in content and "by ap1" in content
    assert 'id="approve-button"' not in content
    assert 'id="approve-button"' in page(client, make_user("ap2", "Approvers"), detail_url(job))
    content = page(client, operator, reverse("job_detail", args=[job.pk]))
    assert "approval 1 of 2: waits for another approver" in content


def test_the_submitter_withdraws_the_request(client, operator, cluster, rule, approver):
    [job] = submit(operator, cluster)
    client.force_login(approver)
    assert client.post(reverse("approval_withdraw", args=[job.approval_id])).status_code == 403
    client.force_login(operator)
    response = client.post(reverse("approval_withdraw", args=[job.approval_id]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    content = page(client, operator, response["Location"])
    assert "Withdrawn: 1 job(s) cancelled" in content and 'data-outcome="WITHDRAWN"' in content
    assert 'id="withdraw-button"' not in content
    content = page(client, operator, reverse("job_detail", args=[job.pk]))
    assert "Approval request withdrawn" in content
