"""Four-eyes approvals in a real browser, against a live server, a real worker and the fake
cluster: an operator submits a Set Action a rule covers and sees it wait; another user, an
approver, finds it by the header's count, opens it and approves or denies it; the operator's
job page follows the decision without a reload."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from jobs.models import ApprovalRule, Job
from tests.e2e import JOB_URL, expect_status, fill_set_action, job_badge, sign_in
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def rule(transactional_db, cluster) -> ApprovalRule:
    return ApprovalRule.objects.create(
        approvers_group=Group.objects.get(name="Approvers"), cluster=cluster
    )


def submit_for_approval(page, cluster) -> str:
    """Submit a covered Set Action through its review, which says it will wait."""
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2")
    page.click("#submit-set-action")
    expect(page.locator("#approval-needed")).to_contain_text(
        "This submission will wait for approval by a member of Approvers"
    )
    expect(page.locator("#approval-needed")).to_contain_text("at most 24 hours")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page).to_have_url(JOB_URL)
    expect_status(job_badge(page), "PENDING_APPROVAL")
    expect(page.locator("#job-approval")).to_contain_text("Waits for approval by Approvers")
    return JOB_URL.search(page.url)[1]


def open_the_request(page, approver) -> None:
    """As the approver: the header's count, the list, the request's page."""
    sign_in(page, approver, next="/jobs/")
    expect(page.locator("#approvals-count")).to_contain_text("1")
    page.click("#approvals-link")
    expect(page.locator("#approvals-table tbody tr")).to_have_count(1)
    page.locator("#approvals-table tbody a").click()
    expect(page.locator("#approval-state")).to_contain_text("Waiting for approval")


def test_an_approver_approves_and_the_job_runs_to_success(
    page, open_page, operator, approver, cluster, rule, fake_cluster, worker
):
    sign_in(page, operator)
    job_id = submit_for_approval(page, cluster)
    page.evaluate("window.e2eNotReloaded = true")
    assert fake_cluster.count(job_id) == 0

    approving = open_page()
    open_the_request(approving, approver)
    expect(approving.locator("#approval-customers")).to_have_text("2")
    expect(approving.locator("#approval-submitter")).to_have_text("operator")
    expect(approving.locator("#approval-cids")).to_have_text("C1, C2")
    approving.fill("#id_comment", "Checked with the customer")
    approving.click("#approve-button")
    expect(approving.locator(".message")).to_contain_text("Approved")
    expect(approving.locator("#approval-state")).to_contain_text("Approved")
    expect(approving.locator("#approve-button")).to_have_count(0)
    expect(approving.locator("#approvals-count")).to_have_count(0)

    # The operator's page, left open, follows the approval and the run.
    expect_status(job_badge(page), "SUCCESS")
    assert page.evaluate("window.e2eNotReloaded") is True, "the page reloaded"
    expect(page.locator("#job-timeline")).to_contain_text("Checked with the customer")
    assert fake_cluster.count(job_id) == 1


def test_a_denial_with_its_comment_shows_on_the_operators_job_page(
    page, open_page, operator, approver, cluster, rule, fake_cluster, worker
):
    sign_in(page, operator)
    job_id = submit_for_approval(page, cluster)

    denying = open_page()
    open_the_request(denying, approver)
    # Deny without a comment: the form says why it is refused, nothing is written.
    denying.click("#deny-button")
    expect(denying.locator("[data-field=comment] .field-error")).to_have_text(
        "Say why the request is denied."
    )
    assert Job.objects.get(pk=job_id).status == Job.Status.PENDING_APPROVAL
    denying.fill("#id_comment", "<b>Not</b> during the freeze")
    denying.click("#deny-button")
    expect(denying.locator("#approval-state")).to_contain_text("Denied")

    expect_status(job_badge(page), "DENIED")
    expect(page.locator("#job-timeline q.comment")).to_have_text("<b>Not</b> during the freeze")
    expect(page.locator("#job-error")).to_contain_text("Denied by approver")
    assert fake_cluster.count(job_id) == 0


def test_the_submitter_sees_no_decision_buttons_and_may_withdraw(
    page, operator, approver, cluster, rule
):
    sign_in(page, operator)
    submit_for_approval(page, cluster)
    page.click("#job-approval-link")
    expect(page.locator("#own-request")).to_be_visible()
    expect(page.locator("#approve-button, #deny-button")).to_have_count(0)
    page.click("#withdraw-button")
    expect(page.locator("#approval-state")).to_contain_text("Withdrawn")
    expect(page.locator("button#withdraw-button")).to_have_count(0)
    page.goto("/jobs/")
    expect(page.locator("#jobs-table .badge[data-status]")).to_have_attribute(
        "data-status", re.compile("CANCELLED")
    )
