"""Live pages in a real browser: regions that follow the job without losing the operator's
place, say when the server is gone or the session ended, and keep the tab's title current.

Jobs are submitted through the service and moved along by writing to the database, as a worker
would, so that each step happens exactly when the test says."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from jobs.models import InFlightCustomer, Job, JobCustomer
from jobs.services import job_submit
from tests.e2e import expect_status, job_badge, sign_in
from tests.helpers import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SELECTED = "() => getSelection().toString()"


def submit(operator, cluster, cids: str) -> Job:
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
    return job


def select_text_of(page: Page, selector: str) -> None:
    page.evaluate(
        """(selector) => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector(selector));
            getSelection().removeAllRanges();
            getSelection().addRange(range);
        }""",
        selector,
    )


def test_a_live_job_page_keeps_page_2_and_the_selection_while_the_job_runs(page, operator, cluster):
    cluster.max_cids_per_request = 500
    cluster.save()
    job = submit(operator, cluster, " ".join(f"C{n:03}" for n in range(500)))
    sign_in(page, operator, next=f"/jobs/{job.pk}/?page=2")
    expect(page.locator("#job-customers tbody tr").first).to_contain_text("C100")
    select_text_of(page, "#job-customers tbody tr:first-child td")
    page.evaluate("document.getElementById('job-state').dataset.mark = 'kept'")

    # Nothing changes: the server answers 204, twice, and nothing on the page is replaced.
    for _ in range(2):
        with page.expect_response(lambda r: "part=state" in r.url and r.status == 204):
            pass
    assert page.evaluate("document.getElementById('job-state').dataset.mark") == "kept"
    assert page.evaluate(SELECTED) == "C100"

    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
    expect(job_badge(page)).to_have_text("RUNNING")
    expect(page).to_have_title(re.compile(r"^RUNNING · Job "))
    expect(page.locator("#live-announcer")).to_have_text(f"Job {str(job.pk)[:8]} is RUNNING.")
    assert page.evaluate(SELECTED) == "C100", "a change to the state keeps the customers' text"

    JobCustomer.objects.filter(job=job).update(outcome="SUCCESS")
    Job.objects.filter(pk=job.pk).update(status="SUCCESS", finished_at=timezone.now())
    expect_status(job_badge(page), "SUCCESS")
    expect(page.locator("#job-customers tbody tr").first).to_contain_text("SUCCESS")
    expect(page.locator("#job-customers tbody tr").first).to_contain_text("C100")
    assert page.url.endswith("?page=2")
    expect(page).to_have_title(re.compile(r"^SUCCESS · Job "))


def test_signed_out_in_another_tab_the_page_says_so_and_keeps_the_job(open_page, operator, cluster):
    job = submit(operator, cluster, "C1")
    page = open_page()
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    other = page.context.new_page()
    other.goto("/jobs/")
    other.click("#sign-out")
    expect(other.locator(".message.info")).to_have_text("You are signed out.")

    banner = page.locator("#live-banner")
    expect(banner).to_have_text(
        "You were signed out; sign in again. What the page shows stopped updating."
    )
    expect(page.locator("#job-id")).to_have_text(str(job.pk))
    expect(banner.get_by_role("link", name="sign in again")).to_have_attribute(
        "href", f"/accounts/login/?next=%2Fjobs%2F{job.pk}%2F"
    )


def test_the_server_out_of_reach_the_page_says_so_and_recovers(page, operator, cluster):
    job = submit(operator, cluster, "C1")
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    page.route("**/*part=state*", lambda route: route.abort("connectionrefused"))
    banner = page.locator("#live-banner")
    expect(banner).to_have_text("Connection lost, retrying.")
    page.unroute("**/*part=state*")
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now())
    expect(job_badge(page)).to_have_text("RUNNING")
    expect(banner).to_be_hidden()


def test_the_batch_page_and_recent_jobs_follow_their_jobs(page, operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    first, second = job_submit(user=operator, action=1, cluster=cluster, cids="A B", token=TOKEN)
    sign_in(page, operator, next=f"/batches/{first.batch_id}/")
    expect(page).to_have_title(re.compile(r"^0/2 ended · Batch "))
    Job.objects.filter(pk=first.pk).update(status="FAILED", finished_at=timezone.now())
    expect(page.locator("[data-count=FAILED]")).to_have_text("1")
    expect(page).to_have_title(re.compile(r"^1/2 ended, 1 FAILED · Batch "))

    page.goto("/")
    recent = page.locator(f"#recent-jobs a[href='/jobs/{second.pk}/']").locator("xpath=../..")
    expect(recent.locator(".badge")).to_have_text("QUEUED")
    Job.objects.filter(pk=second.pk).update(status="SUCCESS", finished_at=timezone.now())
    expect_status(recent.locator(".badge"), "SUCCESS")


def test_times_switch_between_utc_and_the_browsers_zone(browser, live_server, operator, cluster):
    job = submit(operator, cluster, "C1")
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    page = context.new_page()
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    created = page.locator("dl.facts time").first
    utc = job.created_at.astimezone(dt.UTC)
    expect(created).to_have_text(f"{utc:%Y-%m-%d %H:%M:%S} UTC")
    page.click("#zone-switch")
    tokyo = utc + dt.timedelta(hours=9)
    expect(created).to_have_text(f"{tokyo:%Y-%m-%d %H:%M:%S} GMT+9")
    expect(page.locator("#zone-switch")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(created).to_have_text(f"{tokyo:%Y-%m-%d %H:%M:%S} GMT+9")
    context.close()


def test_retry_failed_parts_appears_when_the_batch_ends_and_makes_one_new_batch(
    page, operator, cluster
):
    cluster.max_cids_per_request = 1
    cluster.save()
    first, second = job_submit(user=operator, action=1, cluster=cluster, cids="A B", token=TOKEN)
    sign_in(page, operator, next=f"/batches/{first.batch_id}/")
    Job.objects.filter(pk=first.pk).update(status="FAILED", finished_at=timezone.now())
    InFlightCustomer.objects.filter(job=first).delete()
    expect(page.locator("[data-count=FAILED]")).to_have_text("1")
    expect(page.locator("#batch-retry-form")).to_have_count(0)

    Job.objects.filter(pk=second.pk).update(status="SUCCESS", finished_at=timezone.now())
    InFlightCustomer.objects.filter(job=second).delete()
    page.fill("#batch-retry-form [name=retry_token]", TOKEN)
    page.click("#batch-retry-button")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Retry 1 customer of Trans-Begin on eu1"
    )
    page.click("#confirm-retry")

    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    retry = Job.objects.get(retry_of=first)
    assert page.url.endswith(f"/jobs/{retry.pk}/")
    assert list(retry.customers.values_list("cid", flat=True)) == ["A"]
