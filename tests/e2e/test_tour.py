"""The docs' tour: what an operator (and an admin) sees, taken as screenshots on the way.

The screenshots go to test-results/e2e/tour/; with UPDATE_SCREENSHOTS=1 they replace the docs'
in docs/screenshots/ (`make screenshots` does that). tests/test_docs.py checks that the docs
show each of them, and nothing else from that folder.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import (
    BATCH_URL,
    JOB_TIMEOUT,
    RESULTS,
    ROOT,
    expect_status,
    fill_set_action,
    job_badge,
    review_and_confirm,
    set_action,
    sign_in,
)
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TOUR = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else RESULTS / "tour"


def screenshot(page: Page, name: str) -> None:
    """The visible part of the page (1200x800): enough for the docs, and small."""
    TOUR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=TOUR / name, animations="disabled", caret="hide")


def test_docs_tour(page, open_page, operator, auditor, cluster, worker):
    sign_in(page, operator)
    set_action(page, cluster=cluster, token=TOKEN, cids="C1001, C1002, C1003")
    expect_status(job_badge(page), "SUCCESS")
    screenshot(page, "job-success.png")

    set_action(page, cluster=cluster, token="bad-token", cids="C2001")
    expect_status(job_badge(page), "FAILED")
    expect(page.locator("#retry-form")).to_be_visible()
    screenshot(page, "job-failed.png")

    page.goto("/jobs/")
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(2)
    expect(page.locator("#jobs-table .badge[data-status=FAILED]")).to_be_visible()
    screenshot(page, "jobs-list.png")

    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C3001\nC3002\nC3003")
    screenshot(page, "set-action.png")
    page.click("#submit-set-action")
    expect(page.locator("#set-action-review")).to_be_visible()
    screenshot(page, "set-action-review.png")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/jobs/")
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(2)
    screenshot(page, "jobs-list-phone.png")

    # A batch: the cluster takes two customers a call, so five make three parts.
    page.set_viewport_size({"width": 1200, "height": 800})
    cluster.max_cids_per_request = 2
    cluster.save()
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1001 C4001 C4002 C4003 C4004")
    review_and_confirm(page)
    expect(page).to_have_url(BATCH_URL)
    expect(page.locator("[data-count=SUCCESS]")).to_have_text("3", timeout=JOB_TIMEOUT)
    screenshot(page, "batch.png")

    page.goto("/customers/?cid=C1001")
    expect(page.locator("table#customer-jobs tr[data-job-id]")).to_have_count(2)
    screenshot(page, "customer-history.png")

    admin = open_page()
    sign_in(admin, auditor, next="/jobs/")
    admin.goto("/admin/jobs/failedjob/")
    expect(admin.locator("#result_list .badge[data-status=FAILED]")).to_be_visible()
    screenshot(admin, "admin-failed-jobs.png")
