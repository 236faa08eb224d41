"""Every operator page on a 390 px wide phone: nothing scrolls the page sideways, the Set Action
form takes the whole width, and a table too wide scrolls in its own box with the job's status
in view. The admin's failed-jobs list fits a 1280 px screen."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Locator, Page, expect

from jobs.models import ApprovalRule, Job
from jobs.services import job_submit
from tests import e2e
from tests.e2e import sign_in
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(page: Page) -> Page:
    page.set_viewport_size(PHONE)
    return page


def make_job(user, cluster, status: str, **fields) -> Job:
    """A job whose texts are long enough to need the room a phone lacks."""
    error = "The cluster refused the token for this action" if status == "FAILED" else ""
    customers = {"CUST-42": "A message long enough to matter"}
    return e2e.make_job(user, cluster, status, customers=customers, error_message=error, **fields)


def assert_no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{page.url} scrolls sideways: {widths}"


def assert_in_view(locator: Locator, page: Page) -> None:
    box = locator.bounding_box()
    assert box is not None
    width = page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{box} is outside 0..{width}"


def assert_table_scrolls_with_status_in_view(page: Page, table: str) -> None:
    scroller = page.locator(f".table-scroll:has({table})")
    assert scroller.evaluate("box => box.scrollWidth > box.clientWidth"), "the table fits"
    assert scroller.evaluate("box => getComputedStyle(box).overflowX") == "auto"
    badge = page.locator(f"{table} tbody .badge[data-status]").first
    header = page.locator(f"{table} thead th.status, #batch-jobs thead th:nth-child(4)").first
    for position in ("0", "box.scrollWidth"):
        scroller.evaluate(f"box => {{ box.scrollLeft = {position}; }}")
        assert_in_view(badge, page)
        assert_in_view(header, page)
    assert_no_sideways_scroll(page)


def test_sign_in_on_a_phone(phone, operator):
    phone.goto("/accounts/login/")
    expect(phone.locator("#id_username")).to_be_visible()
    assert_no_sideways_scroll(phone)
    sign_in(phone, operator)
    assert_no_sideways_scroll(phone)


def test_set_action_stacks_on_a_phone(phone, operator, cluster):
    make_job(operator, cluster, Job.Status.SUCCESS)
    sign_in(phone, operator)
    form = phone.locator("form#set-action-form")
    expect(form).to_be_visible()
    columns = phone.locator(".columns > *")
    first, second = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert first and second
    assert first["x"] == second["x"] and second["y"] > first["y"] + first["height"] - 1
    # The form takes the width of the screen, less the page's margins.
    assert first["width"] >= PHONE["width"] - 40
    assert_in_view(phone.locator("#submit-set-action"), phone)
    assert_no_sideways_scroll(phone)


def test_top_bar_wraps_on_a_phone(phone, operator):
    sign_in(phone, operator)
    for link in phone.locator(".topbar a, .topbar button").all():
        assert_in_view(link, phone)
    assert_no_sideways_scroll(phone)


def test_jobs_list_on_a_phone(phone, operator, cluster):
    for status in (Job.Status.SUCCESS, Job.Status.FAILED, Job.Status.IN_PROGRESS):
        make_job(operator, cluster, status)
    sign_in(phone, operator, next="/jobs/")
    expect(phone.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(3)
    assert_table_scrolls_with_status_in_view(phone, "#jobs-table")


@pytest.mark.parametrize("status", [Job.Status.FAILED, Job.Status.IN_PROGRESS])
def test_job_page_on_a_phone(phone, operator, cluster, status):
    job = make_job(operator, cluster, status, batch_id=uuid.uuid4(), batch_seq=1)
    sign_in(phone, operator, next=f"/jobs/{job.pk}/")
    expect(phone.locator("#job-status .badge")).to_have_attribute("data-status", status)
    assert_in_view(phone.locator("#job-status .badge"), phone)
    assert_no_sideways_scroll(phone)


def test_batch_page_on_a_phone(phone, operator, cluster):
    batch_id = uuid.uuid4()
    for seq, status in enumerate([Job.Status.SUCCESS, Job.Status.FAILED], start=1):
        make_job(operator, cluster, status, batch_id=batch_id, batch_seq=seq)
    sign_in(phone, operator, next=f"/batches/{batch_id}/")
    expect(phone.locator("#batch-jobs tbody tr[data-job-id]")).to_have_count(2)
    assert_table_scrolls_with_status_in_view(phone, "#batch-jobs")


def test_customer_history_on_a_phone(phone, operator, cluster):
    make_job(operator, cluster, Job.Status.SUCCESS)
    make_job(operator, cluster, Job.Status.FAILED)
    sign_in(phone, operator, next="/customers/?cid=CUST-42")
    expect(phone.locator("#customer-jobs tbody tr[data-job-id]")).to_have_count(2)
    assert_table_scrolls_with_status_in_view(phone, "#customer-jobs")


def test_admin_failed_jobs_list_shows_every_column_at_1280(page, auditor, operator, cluster):
    page.set_viewport_size({"width": 1280, "height": 800})
    for status in (Job.Status.FAILED, Job.Status.UNKNOWN):
        make_job(operator, cluster, status, http_status=401 if status == "FAILED" else None)
    sign_in(page, auditor, next="/jobs/")
    page.goto("/admin/jobs/failedjob/")
    table = page.locator("#result_list")
    expect(table.locator("tbody tr")).to_have_count(2)
    columns = table.locator("thead th").evaluate_all(
        "cells => cells.map(c => [c.innerText, Math.round(c.getBoundingClientRect().right)])"
    )
    # The action checkbox and ten columns, each ending inside the screen.
    assert len(columns) == 11
    assert all(right <= 1280 for _, right in columns), columns
    scroller = page.locator("#changelist-form .results")
    widths = scroller.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert widths[0] <= widths[1], (widths, columns)
    assert_no_sideways_scroll(page)


def test_jobs_list_shows_every_column_at_1280(page, auditor, operator, cluster):
    """An auditor's list (with the Operator column) of jobs whose errors are as long as the list
    shows them fits the screen: no column is cut, nothing scrolls sideways."""
    page.set_viewport_size({"width": 1280, "height": 800})
    long_error = "The cluster refused the token for this action: " + "x" * 200
    for status in (Job.Status.FAILED, Job.Status.SUCCESS, Job.Status.UNKNOWN):
        e2e.make_job(operator, cluster, status, http_status=401, error_message=long_error)
    sign_in(page, auditor, next="/jobs/")
    table = page.locator("#jobs-table")
    expect(table.locator("tbody tr[data-job-id]")).to_have_count(3)
    columns = table.locator("thead th").evaluate_all(
        "cells => cells.map(c => [c.innerText, Math.round(c.getBoundingClientRect().right)])"
    )
    assert len(columns) == 10
    assert all(right <= 1280 for _, right in columns), str(columns)
    scroller = page.locator(".table-scroll:has(#jobs-table)")
    widths = scroller.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert widths[0] <= widths[1], (widths, columns)
    assert_no_sideways_scroll(page)


def test_approval_pages_on_a_phone(phone, operator, approver, cluster):
    ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))
    cids = " ".join(f"CUSTOMER-WITH-A-LONG-ID-{n}" for n in range(40))
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids=cids, token=TOKEN)
    sign_in(phone, operator, next=f"/jobs/{job.pk}/")
    expect(phone.locator("#job-approval")).to_be_visible()
    assert_no_sideways_scroll(phone)
    phone.context.clear_cookies()
    sign_in(phone, approver, next="/approvals/")
    expect(phone.locator("#approvals-table tbody tr")).to_have_count(1)
    assert_no_sideways_scroll(phone)
    phone.goto(f"/approvals/{job.approval_id}/")
    expect(phone.locator("#decision-form")).to_be_visible()
    for button in ("#approve-button", "#deny-button"):
        assert_in_view(phone.locator(button), phone)
    assert_no_sideways_scroll(phone)
