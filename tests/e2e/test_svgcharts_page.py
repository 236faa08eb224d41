"""The server-rendered charts (lib/svgcharts.py) in Chromium, on a test-only page
(tests/chart_urls.py): bars reached with Tab show their focus, axe-core finds no violation,
the CSP reports none, a 390 px phone scrolls nothing sideways, and the zone switch writes the
charts' time labels in the browser's zone, in content htmx swaps in too. And the two pages
the Overview leads to: an UNKNOWN job marked as looked at, the jobs list's ended filter."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from tests.e2e import make_job, sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_security_headers import COLLECT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.urls("tests.chart_urls"),
]

URL = "/e2e-charts/"
PHONE = {"width": 390, "height": 844}


def open_charts(page, operator):
    page.add_init_script(f"({COLLECT})()")
    sign_in(page, operator, next=URL)
    expect(page.locator("h1")).to_have_text("Charts")


def test_tab_reaches_each_bar_segment_and_shows_its_focus(page, live_server, operator):
    open_charts(page, operator)
    first = page.locator("#chart-jobs-per-hour a.chart-link").first
    stroke = "el => getComputedStyle(el.querySelector('.chart-seg')).strokeWidth"
    unfocused = first.evaluate(stroke)

    first.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")

    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "SUCCESS: 10 jobs, 2026-12-06 00:00 to 01:00 UTC"
    assert (unfocused, first.evaluate(stroke)) == ("1px", "3px")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "UNKNOWN: 1 job, 2026-12-06 00:00 to 01:00 UTC"
    )
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        f"{live_server.url}/jobs/?status=UNKNOWN"
        "&ended_from=2026-12-06T00%3A00%3A00Z&ended_to=2026-12-06T01%3A00%3A00Z"
    )
    expect(page.locator("#ended-filter")).to_be_visible()


def test_no_axe_violation_and_no_csp_violation(page, operator):
    open_charts(page, operator)
    page.locator("details").first.evaluate("d => d.open = true")
    assert_accessible(page)
    assert page.evaluate("window.__violations") == []


def test_readable_at_390_px_without_sideways_scroll(open_page, operator):
    page = open_page()
    page.set_viewport_size(PHONE)
    open_charts(page, operator)
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], widths
    # The smallest label is drawn 10 px high or more, and time labels do not overlap.
    sizes = page.evaluate(
        "[...document.querySelectorAll('svg.chart .chart-text')]"
        ".map(t => t.getBoundingClientRect().height)"
    )
    assert min(sizes) >= 10, min(sizes)
    boxes = page.evaluate(
        "[...document.querySelectorAll('#chart-jobs-per-hour [data-time]')]"
        ".map(t => { const r = t.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    assert len(boxes) == 6
    assert all(left[1] < right[0] for left, right in itertools.pairwise(boxes))
    assert page.evaluate("window.__violations") == []


def test_the_zone_switch_writes_chart_times_in_the_browsers_zone_also_after_a_swap(
    browser, live_server, operator
):
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Kolkata")
    try:
        page = context.new_page()
        open_charts(page, operator)
        ticks = page.locator("#chart-jobs-per-hour [data-time]")
        zone = page.locator("#chart-jobs-per-hour [data-time-zone]")
        expect(ticks.first).to_have_text("00:00")
        expect(zone).to_have_text("UTC")

        page.click("#zone-switch")

        expect(ticks.first).to_have_text("05:30")
        expect(zone).to_have_text("GMT+5:30")
        cell = page.locator("table.chart-table tbody tr").first.locator("td").first
        expect(cell).to_contain_text("2026-12-06 05:30 to 06:30 GMT+5:30")
        page.click("#load-more")
        expect(page.locator("#swapped-chart [data-time]").first).to_have_text("05:30")
        expect(page.locator("#swapped-chart [data-time-zone]")).to_have_text("GMT+5:30")

        page.click("#zone-switch")
        expect(page.locator("#swapped-chart [data-time]").first).to_have_text("00:00")
        expect(cell).to_contain_text("2026-12-06 00:00 to 01:00 UTC")
    finally:
        context.close()


def test_an_unknown_job_marked_as_looked_at_from_its_page(page, operator, cluster):
    job = make_job(operator, cluster, Job.Status.UNKNOWN)
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    expect(page.locator("#looked-at-form")).to_be_visible()
    assert_accessible(page)

    page.fill("#id_note", "The cluster shows PE-Enable applied to C1 and C2.")
    page.click("#looked-at-button")

    expect(page.locator(".message")).to_have_text("Marked as looked at.")
    expect(page.locator("#job-review")).to_contain_text("operator looked at this job on")
    expect(page.locator("#job-review-note")).to_have_text(
        "The cluster shows PE-Enable applied to C1 and C2."
    )
    expect(page.locator("#looked-at-form")).to_have_count(0)
    assert_accessible(page)


def test_the_jobs_list_ended_filter_shown_removed_and_refused(page, operator, cluster):
    job = make_job(operator, cluster, Job.Status.FAILED)
    make_job(
        operator, cluster, Job.Status.FAILED, finished_at=job.finished_at - dt.timedelta(days=2)
    )
    start = job.finished_at.replace(minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(hours=1)
    sign_in(page, operator, next="/jobs/")
    page.goto(
        f"/jobs/?status=FAILED&ended_from={start:%Y-%m-%dT%H:%M:%SZ}&ended_to={end:%Y-%m-%dT%H:%M:%SZ}"
    )
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(1)
    expect(page.locator("#ended-filter")).to_be_visible()
    assert_accessible(page)

    # Apply keeps the filter (hidden inputs); the link removes it.
    page.click("#apply-filters")
    expect(page.locator("#ended-filter")).to_be_visible()
    page.click("#remove-ended-filter")
    expect(page.locator("#ended-filter")).to_have_count(0)
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(2)

    page.goto(f"/jobs/?ended_from={start:%Y-%m-%dT%H:%M:%SZ}&ended_to={start:%Y-%m-%dT%H:%M:%SZ}")
    expect(page.locator("#id_ended_to_error")).to_contain_text("is not after")
    assert_accessible(page)
