"""Saved Set Actions and schedules in a real browser, in Berlin's time zone: an operator saves
a Set Action from the header's menu, schedules it every weekday at 06:00 (the zone the form
starts with is the browser's), and sees its next runs in local time and UTC; a bad rule is
refused next to its field. Every page passes the axe check the other operator pages pass."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from schedules.models import Occurrence, SavedSetAction, Schedule
from schedules.services import saved_set_action_create, schedule_create
from tests.e2e import RESULTS, make_job, sign_in
from tests.e2e.conftest import VIEWPORT
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_no_sideways_scroll
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def berlin_page(browser, live_server, request):
    """A page whose browser lives in Europe/Berlin; its last screen saved as the others'."""
    context = browser.new_context(
        base_url=live_server.url, viewport=VIEWPORT, timezone_id="Europe/Berlin"
    )
    page = context.new_page()
    yield page
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=RESULTS / f"{request.node.name}.png", full_page=True)
    context.close()


def test_save_a_set_action_schedule_it_every_weekday_and_see_its_next_runs(
    berlin_page, operator, cluster
):
    page = berlin_page
    sign_in(page, operator, next="/jobs/")
    page.get_by_role("link", name="Saved Set Actions", exact=True).click()
    expect(page.locator("#no-saved-set-actions")).to_be_visible()
    assert_accessible(page)

    page.click("#new-saved-set-action")
    page.fill("#id_name", "Weekday T-Enable")
    page.select_option("#id_action", "3")
    page.select_option("#id_cluster", str(cluster.pk))
    page.fill("#id_cids", "C1 C2 bad/id")
    page.click("#save-saved-set-action")
    expect(page.locator("[data-field=cids] .field-error")).to_contain_text("bad/id")
    assert_accessible(page)
    assert not SavedSetAction.objects.exists()
    page.fill("#id_cids", "C1 C2")
    page.click("#save-saved-set-action")
    expect(page.locator("#saved-facts")).to_contain_text("T-Enable")
    expect(page.locator("#saved-versions tbody tr")).to_have_count(1)
    assert_accessible(page)
    detail = page.url

    # Run now: the Set Action form, filled in; its review sends nothing.
    page.click("#run-now")
    expect(page.locator("#id_cids")).to_have_value("C1\nC2")
    page.fill("#id_token", TOKEN)
    page.click("#submit-set-action")
    expect(page.get_by_role("heading", name="Review the Set Action")).to_be_visible()
    page.goto(detail)

    page.click("#schedule-it")
    expect(page.locator("#id_timezone")).to_have_value("Europe/Berlin")
    expect(page.locator("#id_rrule")).to_be_hidden()
    expect(page.locator("#id_weekday")).to_be_hidden()
    assert_accessible(page)
    page.select_option("#id_repeat", "rrule")
    expect(page.locator("#id_rrule")).to_be_visible()
    page.fill("#id_rrule", "FREQ=MINUTELY")
    page.click("#create-schedule")
    expect(page.locator("[data-field=rrule] .field-error")).to_contain_text("FREQ is one of")
    assert_accessible(page)
    assert not Schedule.objects.exists()

    page.select_option("#id_repeat", "weekdays")
    page.fill("#id_at_time", "06:00")
    page.click("#create-schedule")
    rows = page.locator("#next-runs tbody tr")
    expect(rows).to_have_count(10)
    for row in rows.all():
        local, utc = row.locator("td").nth(0).inner_text(), row.locator("td").nth(1).inner_text()
        assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 06:00 CES?T", local)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d 0[45]:00 UTC", utc)
    expect(page.locator("#no-occurrences")).to_be_visible()
    assert_accessible(page)

    page.click("#pause-schedule")
    expect(page.locator("#schedule-state")).to_contain_text("Paused")
    assert_accessible(page)

    page.get_by_role("link", name="Schedules", exact=True).click()
    expect(page.locator("#schedules-table tbody tr")).to_have_count(1)
    assert_accessible(page)
    assert Schedule.objects.get().rrule == (
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0;BYSECOND=0"
    )


def test_the_schedules_pages_fit_a_phone_and_pass_the_axe_check(page, operator, cluster):
    phone = page
    phone.set_viewport_size(PHONE)
    saved = saved_set_action_create(
        user=operator, name="Nightly PE-Finalize", action=4, cluster=cluster, cids="C1 C2"
    )
    rule = "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30;BYSECOND=0"
    schedule = schedule_create(
        user=operator, saved_set_action=saved, rrule=rule, timezone_name="Europe/Berlin"
    )
    job = make_job(operator, cluster, Job.Status.SUCCESS)
    day = dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC)
    Occurrence.objects.create(schedule=schedule, occurs_at=day, state="fired", job=job, version=1)
    Occurrence.objects.create(
        schedule=schedule,
        occurs_at=day.replace(year=2025, day=30),
        state="skipped",
        reason="missed: 3 h 10 min late, more than the 15 minutes grace",
    )
    sign_in(phone, operator, next=f"/schedules/{schedule.pk}/")
    expect(phone.locator("#next-runs tbody tr[data-dst]")).to_have_count(10)
    expect(phone.locator("#occurrences-table tbody tr")).to_have_count(2)
    for path in (
        f"/schedules/{schedule.pk}/",
        "/schedules/",
        "/schedules/new/",
        "/saved-set-actions/",
        f"/saved-set-actions/{saved.pk}/",
        f"/saved-set-actions/{saved.pk}/edit/",
        f"/saved-set-actions/{saved.pk}/run/",
    ):
        phone.goto(path)
        assert_no_sideways_scroll(phone)
        assert_accessible(phone)
    phone.goto(f"/jobs/{job.pk}/")
    expect(phone.locator("#run-by-schedule")).to_contain_text(f"schedule {schedule.pk}")
    assert_accessible(phone)
