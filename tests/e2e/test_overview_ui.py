"""The Overview in Chromium: it updates live when a job ends, a bar opens the jobs list
filtered to its hour and outcome (by mouse and by keyboard), and axe-core finds no violation at
1,280 and 390 px, where nothing scrolls sideways."""

from __future__ import annotations

import re

import pytest
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import Page, expect

from jobs.models import Job
from jobs.services import job_submit
from tests.e2e import sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.helpers import TOKEN

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}


def run(user, cluster, cids: str, token: str = TOKEN) -> Job:
    """Submit and run a job in this process, as a worker would."""
    [job] = job_submit(user=user, action="PE-Enable", cluster=cluster, cids=cids, token=token)
    for result in DBTaskResult.objects.ready().order_by("enqueued_at"):
        arguments = result.args_kwargs
        result.task.call(*arguments["args"], **arguments["kwargs"])
    job.refresh_from_db()
    return job


def test_the_overview_updates_live_and_a_bar_opens_its_jobs(page: Page, auditor, operator, cluster):
    run(operator, cluster, "C1")
    page.set_viewport_size(WIDE)
    sign_in(page, auditor, next="/overview/")
    summary = page.locator("#overview-live figure").first.locator("figcaption")
    expect(summary).to_contain_text("1 job")
    assert_accessible(page)

    failed = run(operator, cluster, "C2", token="bad-token")
    assert failed.status == Job.Status.FAILED
    expect(summary).to_contain_text("2 jobs", timeout=15_000)

    segment = page.locator("#overview-live a.chart-link[aria-label^='Failed']").first
    segment.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/jobs/\?status=FAILED&ended_from="))
    rows = page.locator("#jobs-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(str(failed.pk)[:8])


def test_the_overview_stacks_at_390_px_and_passes_axe(page: Page, auditor, operator, cluster):
    run(operator, cluster, "C1")
    run(operator, cluster, "C2", token="bad-token")
    page.set_viewport_size(PHONE)
    sign_in(page, auditor, next="/overview/")
    expect(page.get_by_role("heading", name=re.compile("Jobs by outcome"))).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)
    page.get_by_text("The numbers").first.click()
    expect(page.locator("table.chart-table").first).to_be_visible()
    assert_accessible(page)


def test_the_server_out_of_reach_the_overview_says_so_and_catches_up(
    page: Page, auditor, operator, cluster
):
    run(operator, cluster, "C1")
    sign_in(page, auditor, next="/overview/")
    summary = page.locator("#overview-live figure").first.locator("figcaption")
    expect(summary).to_contain_text("1 job")
    page.route("**/*part=live*", lambda route: route.abort("connectionrefused"))
    banner = page.locator("#live-banner")
    expect(banner).to_have_text("Connection lost, retrying.", timeout=15_000)

    run(operator, cluster, "C2")
    page.unroute("**/*part=live*")
    expect(summary).to_contain_text("2 jobs", timeout=15_000)
    expect(banner).to_be_hidden()
