"""axe-core in a real browser: every operator page, in each of its states, has no violation.

axe-core is the npm package pinned in package.json (installed by `npm ci`); it runs inside the
page as the page is, after its scripts ran, with the stylesheets the server really serves.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Page, expect

from jobs.models import ApprovalRule, Cluster, Job, RunGrant
from notifications.models import Notice
from tests.e2e import COLOURS, ROOT, fill_set_action, make_job, sign_in
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/e2e-axe-core/axe.min.js"


def axe_violations(page: Page) -> list[dict]:
    # The CSP allows scripts from the site only (no inline script, which is what
    # add_script_tag(path=...) would add): axe comes from a same-site address that the browser
    # context answers itself, so the page runs under its real policy.
    page.context.route(f"**{AXE_URL}", lambda route: route.fulfill(path=AXE))
    page.add_script_tag(url=AXE_URL)
    return page.evaluate("axe.run().then(results => results.violations)")


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary']}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe found on {page.url}:\n{describe(violations)}"


def test_set_action_refused_by_the_grants_and_without_any_grant(page, operator, cluster):
    group = operator.groups.get()
    us1 = Cluster.objects.create(name="us1", base_url="http://127.0.0.1:9")
    RunGrant.objects.filter(group=group).delete()
    RunGrant.objects.create(group=group, cluster=cluster, action=Job.Action.T_ENABLE)
    RunGrant.objects.create(group=group, cluster=us1, action=Job.Action.PE_ENABLE)
    sign_in(page, operator)
    # Both actions and both clusters are offered; PE-Enable on this cluster is not granted.
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1", action="2")
    page.click("#submit-set-action")
    expect(page.locator(".form-errors[role=alert]")).to_contain_text("no run grant covers it")
    assert_accessible(page)
    RunGrant.objects.filter(group=group).delete()
    page.goto("/")
    expect(page.locator("#set-action-no-grant")).to_be_visible()
    assert_accessible(page)


def test_sign_in_page_with_and_without_an_error(page, operator):
    page.goto("/accounts/login/")
    assert_accessible(page)
    page.fill("#id_username", "operator")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".error[role=alert]")).to_be_visible()
    assert_accessible(page)


def test_signed_out_page(page, operator):
    sign_in(page, operator)
    page.click("button#sign-out")
    expect(page.locator(".message")).to_have_text("You are signed out.")
    assert_accessible(page)


def test_set_action_empty_and_with_field_errors(page, operator, cluster):
    sign_in(page, operator)
    expect(page.locator("form#set-action-form")).to_be_visible()
    assert_accessible(page)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 not/a/cid")
    page.click("#submit-set-action")
    expect(page.locator("[data-field=cids] .field-error")).to_contain_text("not/a/cid")
    assert_accessible(page)
    page.fill("#id_cids", "C1 C2")
    page.fill("#id_token", TOKEN)
    page.click("#submit-set-action")
    expect(page.locator("#set-action-review")).to_be_visible()
    assert_accessible(page)


def test_retry_forms_with_their_errors(page, operator, cluster):
    job = make_job(operator, cluster, Job.Status.UNKNOWN)
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    page.fill("#id_retry_token", TOKEN)
    page.click("#retry-button")
    expect(page.locator("[data-field=confirm_unknown] .field-error")).to_be_visible()
    assert_accessible(page)


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        (Job.Status.SUCCESS, {"http_status": 200, "response_summary": "2 customers updated"}),
        (Job.Status.FAILED, {"http_status": 401, "error_message": "Invalid token"}),
        (Job.Status.UNKNOWN, {"error_message": "The worker stopped mid-call"}),
        (Job.Status.IN_PROGRESS, {}),
        (Job.Status.CANCELLED, {}),
    ],
)
def test_job_page_in_each_status(page, operator, cluster, status, fields):
    job = make_job(operator, cluster, status, **fields)
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    badge = page.locator("#job-status .badge")
    expect(badge).to_have_attribute("data-status", status)
    expect(badge).to_have_css("background-color", COLOURS[status])
    assert_accessible(page)


def test_batch_page(page, operator, cluster):
    batch_id = uuid.uuid4()
    for seq, status in enumerate([Job.Status.SUCCESS, Job.Status.FAILED, Job.Status.CANCELLED]):
        make_job(operator, cluster, status, batch_id=batch_id, batch_seq=seq + 1)
    sign_in(page, operator, next=f"/batches/{batch_id}/")
    expect(page.locator("table#batch-jobs tr[data-job-id]")).to_have_count(3)
    assert_accessible(page)


def test_jobs_list_plain_filtered_and_with_a_filter_error(page, operator, cluster):
    for status in Job.Status.values:
        make_job(operator, cluster, status, error_message="no" if status == "FAILED" else "")
    sign_in(page, operator, next="/jobs/")
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(len(Job.Status))
    assert_accessible(page)

    page.goto("/jobs/?status=FAILED&action=3")
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(1)
    assert_accessible(page)

    page.goto("/jobs/?created_from=2024-02-01&created_to=2024-01-01")
    expect(page.locator("[data-field=created_to] .field-error")).to_be_visible()
    assert_accessible(page)


def test_jobs_list_with_customer_suggestions(page, operator, cluster):
    make_job(operator, cluster, Job.Status.SUCCESS)
    sign_in(page, operator, next="/jobs/?q=c1")
    expect(page.locator("#customer-suggestions a")).to_have_text(["C1"])
    assert_accessible(page)


def test_customer_history_page(page, operator, cluster):
    make_job(operator, cluster, Job.Status.SUCCESS, created_at=timezone.now() - dt.timedelta(1))
    make_job(operator, cluster, Job.Status.FAILED, error_message="no")
    sign_in(page, operator, next="/customers/?cid=C1")
    expect(page.locator("table#customer-jobs tr[data-job-id]")).to_have_count(2)
    assert_accessible(page)


def test_not_found_page(page, operator):
    sign_in(page, operator)
    response = page.goto(f"/jobs/{uuid.uuid4()}/")
    assert response is not None and response.status == 404
    assert_accessible(page)


def test_notifications_page_for_an_operator_and_for_an_auditor(
    page, open_page, operator, auditor, cluster
):
    job = make_job(operator, cluster, Job.Status.FAILED)
    Notice.objects.create(
        event_id=uuid.uuid4(), event="job.failed", channel="email", user=operator, job=job
    )
    sign_in(page, operator, next="/accounts/notifications/")
    expect(page.locator("#notices tr[data-notice]")).to_have_count(1)
    expect(page.locator("#no-address")).to_be_visible()
    assert_accessible(page)
    page.uncheck("#id_own_jobs")
    page.click("#save-notifications")
    expect(page.locator(".message")).to_have_text("Saved.")
    assert_accessible(page)

    everyone = open_page()
    sign_in(everyone, auditor, next="/accounts/notifications/")
    everyone.check("#id_all_jobs")
    everyone.check(f"input[name=clusters][value='{cluster.pk}']")
    # Deactivated while the page was open: the choice is refused next to the clusters.
    Cluster.objects.filter(pk=cluster.pk).update(is_active=False)
    everyone.click("#save-notifications")
    expect(everyone.locator("[data-field=clusters] .field-error")).to_be_visible()
    assert_accessible(everyone)


def test_approval_pages_in_each_state(page, open_page, operator, approver, cluster):
    ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2")
    page.click("#submit-set-action")
    expect(page.locator("#approval-needed")).to_be_visible()
    assert_accessible(page)
    page.click("#confirm-set-action")
    expect(page.locator("#job-approval")).to_be_visible()
    assert_accessible(page)
    page.click("#job-approval-link")
    expect(page.locator("#own-request")).to_be_visible()
    assert_accessible(page)

    approving = open_page()
    sign_in(approving, approver, next="/approvals/")
    expect(approving.locator("#approvals-table tbody tr")).to_have_count(1)
    assert_accessible(approving)
    approving.locator("#approvals-table tbody a").click()
    expect(approving.locator("#decision-form")).to_be_visible()
    assert_accessible(approving)
    approving.click("#deny-button")
    expect(approving.locator("[data-field=comment] .field-error")).to_be_visible()
    assert_accessible(approving)
    approving.fill("#id_comment", "Not today")
    approving.click("#deny-button")
    expect(approving.locator("#approval-decisions")).to_contain_text("Not today")
    assert_accessible(approving)
    approving.goto("/approvals/")
    expect(approving.locator("#no-approvals")).to_be_visible()
    assert_accessible(approving)

    page.goto("/jobs/")
    page.locator("#jobs-table tbody a").first.click()
    expect(page.locator("#job-status .badge")).to_have_attribute("data-status", "DENIED")
    assert_accessible(page)


@pytest.mark.parametrize("width", [1280, 390])
def test_main_pages_in_the_dark_theme(page, operator, cluster, width):
    """The system's dark setting (prefers-color-scheme) turns the pages dark, and axe-core finds
    no violation there: a representative page of each kind, at a desktop's and a phone's width."""
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": width, "height": 800})
    Cluster.objects.filter(pk=cluster.pk).update(environment="production")
    failed = make_job(operator, cluster, Job.Status.FAILED, http_status=401, error_message="no")
    failed.customers.filter(cid="C1").update(outcome="FAILED", message="refused")
    Job.objects.filter(pk=failed.pk).update(
        cluster_answer_status=401,
        cluster_answer_content_type="text/html",
        cluster_answer_body="<h1>Unauthorized</h1>",
    )
    unknown = make_job(operator, cluster, Job.Status.UNKNOWN, error_message="stopped mid-call")
    for status in (Job.Status.SUCCESS, Job.Status.CANCELLED, Job.Status.IN_PROGRESS):
        make_job(operator, cluster, status)

    page.goto("/accounts/login/")
    # The page's own background, not the light theme's #f5f7fa.
    assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == (
        "rgb(17, 22, 29)"
    )
    assert_accessible(page)
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 not/a/cid")
    page.click("#submit-set-action")
    expect(page.locator("[data-field=cids] .field-error")).to_be_visible()
    assert_accessible(page)
    for url in (f"/jobs/{failed.pk}/", f"/jobs/{unknown.pk}/", "/jobs/", "/schedules/"):
        page.goto(url)
        assert_accessible(page)
    page.goto("/overview/")
    expect(page.locator("svg.chart").first).to_be_visible()
    assert_accessible(page)
    page.goto("/accounts/notifications/")
    assert_accessible(page)
    operator.groups.add(Group.objects.get(name="Auditors"))
    page.goto("/audit/")
    expect(page.locator("h1")).to_have_text("Audit log")
    assert_accessible(page)
