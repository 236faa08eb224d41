"""The README's tour: what an operator sees, taken as screenshots on the way.

The screenshots go to test-results/e2e/tour/; with UPDATE_SCREENSHOTS=1 they replace the
README's in docs/screenshots/:

    UPDATE_SCREENSHOTS=1 make test PYTEST_ARGS="tests/e2e/test_tour.py"
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import (
    RESULTS,
    ROOT,
    expect_status,
    fill_set_action,
    job_badge,
    set_action,
    sign_in,
)
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TOUR = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else RESULTS / "tour"


def screenshot(page: Page, name: str) -> None:
    """The visible part of the page (1200x800): enough for the README, and small."""
    TOUR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=TOUR / name, animations="disabled", caret="hide")


def test_readme_tour(page, operator, cluster, worker):
    sign_in(page, operator)
    set_action(page, cluster=cluster, token=TOKEN, cids="C1001, C1002, C1003")
    expect_status(job_badge(page), "SUCCESS")
    screenshot(page, "job-success.png")

    set_action(page, cluster=cluster, token="bad-token", cids="C2001")
    expect_status(job_badge(page), "FAILED")
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
