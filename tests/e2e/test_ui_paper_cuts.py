"""Paper cuts of the operator UI and the admin, in a real browser: the skip link, where the
focus starts after Review, Confirm and a navigation, the customers' outcome badges, and the
admin's filters beside their list and its index in the operators' words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from jobs.models import Job, JobCustomer
from tests.e2e import JOB_URL, fill_set_action, make_job, sign_in
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def focused(page: Page) -> str:
    """The focused element, as tag#id (or its text for a heading)."""
    return page.evaluate(
        "(() => { const e = document.activeElement;"
        " return e.tagName === 'H1' ? 'h1:' + e.innerText.trim() : e.tagName + '#' + e.id; })()"
    )


FIRST_FOCUSABLE = """document.querySelector(
    'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])'
)"""


def test_the_first_tab_reaches_skip_to_content_and_enter_moves_to_main(page: Page, operator):
    sign_in(page, operator)
    # Typed in: the focus starts at the top of the page.
    page.goto("/jobs/")
    skip = page.locator("a.skip-link")
    expect(skip).not_to_be_in_viewport()
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    # The next Tab goes on inside the page's content, past the header's links.
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_the_sign_in_page_starts_with_the_skip_link(page: Page):
    page.goto("/accounts/login/")
    # The username field asks for the focus (autofocus) and keeps it.
    expect(page.locator("#id_username")).to_be_focused()
    assert page.evaluate(f"{FIRST_FOCUSABLE}.className") == "skip-link"


def test_error_pages_have_the_skip_link(page: Page, operator):
    sign_in(page, operator)
    response = page.goto("/jobs/00000000-0000-0000-0000-000000000000/")
    assert response is not None and response.status == 404
    page.keyboard.press("Tab")
    expect(page.locator("a.skip-link")).to_be_focused()


def test_focus_moves_to_the_heading_after_review_confirm_and_a_navigation(
    page: Page, operator, cluster
):
    sign_in(page, operator)
    # Arrived from the sign-in page: the heading.
    assert focused(page) == "h1:Set Action"
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2")
    page.click("#submit-set-action")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review the Set Action")
    assert focused(page) == "h1:Review the Set Action"
    expect(page.locator("main h1")).to_have_attribute("tabindex", "-1")

    page.click("#confirm-set-action")
    expect(page).to_have_url(JOB_URL)
    expect(page.locator("main h1")).to_be_focused()

    page.click(".topbar a[href='/jobs/']")
    expect(page.get_by_role("heading", level=1)).to_have_text("User Jobs Audit")
    assert focused(page) == "h1:User Jobs Audit"


def test_a_field_with_an_error_or_a_fragment_keeps_the_focus_off_the_heading(
    page: Page, operator, cluster
):
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 not/a/cid")
    page.click("#submit-set-action")
    expect(page.locator("[data-field=cids] .field-error")).to_contain_text("not/a/cid")
    # The first field in error has it, its error read as its description.
    expect(page.locator("#id_cids")).to_be_focused()

    # From another page of the site to an address with a fragment: the browser's place stands.
    # (Chromium takes the focus away to the fragment soon after, so every element that had the
    # focus is recorded.)
    page.add_init_script(
        "window.focusedTags = [];"
        " addEventListener('focusin', (e) => window.focusedTags.push(e.target.tagName));"
    )
    page.click(".topbar a[href='/overview/']")
    expect(page.locator("main h1")).to_be_focused()
    page.evaluate("location.assign('/jobs/#jobs-table')")
    expect(page).to_have_url(re.compile("/jobs/#jobs-table$"))
    # Once tmsdash.js ran (it gives the heading its tabindex).
    expect(page.locator("main h1")).to_have_attribute("tabindex", "-1")
    assert page.evaluate("document.referrer").endswith("/overview/")
    assert "H1" not in page.evaluate("window.focusedTags")


def test_failed_and_unknown_customers_stand_out_with_their_word(page: Page, operator, cluster):
    job = make_job(operator, cluster, Job.Status.FAILED, customers={"C1": "", "C2": "", "C3": ""})
    job.customers.filter(cid="C1").update(outcome=JobCustomer.Outcome.SUCCESS)
    job.customers.filter(cid="C2").update(outcome=JobCustomer.Outcome.FAILED, message="refused")
    unknown = make_job(operator, cluster, Job.Status.UNKNOWN, customers={"U1": ""})
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    rows = page.locator("#job-customers tbody tr")
    expect(rows.locator("td.outcome")).to_have_text(["SUCCESS", "FAILED", "—"])
    failed = rows.nth(1)
    expect(failed).to_have_class("customer-failed")
    expect(failed.locator(".badge[data-outcome=FAILED]")).to_have_css(
        "background-color", "rgb(198, 40, 40)"
    )
    # Marked by more than colour: a thick left edge on the row as well.
    assert "inset" in failed.locator("td").first.evaluate("c => getComputedStyle(c).boxShadow")
    expect(rows.nth(0)).not_to_have_class("customer-failed")
    expect(rows.nth(2)).not_to_have_class("customer-failed")

    page.goto(f"/jobs/{unknown.pk}/")
    row = page.locator("#job-customers tbody tr")
    expect(row).to_have_class("customer-unknown")
    expect(row.locator(".badge[data-outcome=UNKNOWN]")).to_have_text("UNKNOWN")


def test_admin_filters_sit_beside_a_wide_list_at_1280(page: Page, auditor, operator, cluster):
    page.set_viewport_size({"width": 1280, "height": 800})
    for status in (Job.Status.FAILED, Job.Status.UNKNOWN):
        make_job(operator, cluster, status, error_message="The cluster refused the token")
    sign_in(page, auditor, next="/jobs/")
    for url in ("/admin/jobs/failedjob/", "/admin/jobs/job/", "/admin/audit/auditentry/"):
        page.goto(url)
        results = page.locator("#changelist-form").bounding_box()
        filters = page.locator("#changelist-filter").bounding_box()
        assert results and filters, url
        # To the right of the list, starting at its top, and inside the screen.
        assert filters["x"] >= results["x"] + results["width"], (url, results, filters)
        assert filters["y"] < results["y"] + results["height"] / 2, (url, results, filters)
        assert filters["x"] + filters["width"] <= 1280, (url, filters)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), url


def test_admin_index_says_what_each_app_and_model_is_for(page: Page, auditor):
    auditor.is_superuser = True
    auditor.save()
    sign_in(page, auditor, next="/jobs/")
    page.goto("/admin/")
    expect(page.locator(".app-axes caption .app-purpose")).to_have_text(
        "Sign-in lockouts: failed sign-in attempts and locked accounts."
    )
    expect(
        page.locator(".app-django_tasks_database .model-dbtaskresult .model-purpose")
    ).to_contain_text("Each background task")
    purposes = page.locator("#content-main tr[class^=model-]")
    count = purposes.count()
    assert count > 20
    expect(page.locator("#content-main tr[class^=model-] .model-purpose")).to_have_count(count)
    # The Jobs app's own index too.
    page.goto("/admin/jobs/")
    expect(page.locator(".app-jobs .model-rungrant .model-purpose")).to_have_text(
        "Who may run which action on which cluster."
    )
