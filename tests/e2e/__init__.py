"""Real-browser tests: Playwright drives Debian's Chromium against a live server, a real
`db_worker` process and the fake cluster. The helpers below act as an operator would.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.auth.models import User
from django.utils import timezone
from model_bakery import baker
from playwright.sync_api import Locator, Page, expect

from jobs.models import Cluster, Job, JobCustomer

ROOT = Path(__file__).resolve().parents[2]
# Git-ignored: each test's last screen, and its worker's output.
RESULTS = ROOT / "test-results" / "e2e"
PASSWORD = "e2e-Pass-4-browser-tests"
# A job reaches its end well within this (milliseconds) once a worker runs.
JOB_TIMEOUT = 20_000
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Plain groups: Playwright hands these patterns to JavaScript, which has no (?P<name>...).
JOB_URL = re.compile(rf"/jobs/({UUID})/$")
BATCH_URL = re.compile(rf"/batches/({UUID})/$")
# The badges' colours (static/css/badges.css): each status its own, at WCAG AA's 4.5:1 with
# its text.
COLOURS = {
    "SUCCESS": "rgb(46, 125, 50)",
    "FAILED": "rgb(198, 40, 40)",
    "IN_PROGRESS": "rgb(21, 101, 192)",
    "UNKNOWN": "rgb(255, 179, 0)",
    "CANCELLED": "rgb(97, 97, 97)",
    "PENDING_APPROVAL": "rgb(106, 27, 154)",
    "DENIED": "rgb(173, 20, 87)",
    "EXPIRED": "rgb(93, 64, 55)",
}


def sign_in(page: Page, user: User, *, next: str = "/") -> None:
    """Sign in through the login page, which then shows the page `next`."""
    page.goto(f"/accounts/login/?next={next}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_have_text(user.username)


def fill_set_action(
    page: Page, *, cluster: Cluster, token: str, cids: str = "", action: str = "3"
) -> None:
    """Open Set Action and fill in its form, without submitting it."""
    page.goto("/")
    page.select_option("#id_action", action)
    page.select_option("#id_cluster", str(cluster.pk))
    page.fill("#id_cids", cids)
    page.fill("#id_token", token)


def review_and_confirm(page: Page) -> None:
    """Submit the filled-in Set Action form, and confirm it on its review page."""
    page.click("#submit-set-action")
    expect(page.get_by_role("heading", name="Review the Set Action")).to_be_visible()
    page.click("#confirm-set-action")


def set_action(page: Page, *, cluster: Cluster, token: str, cids: str) -> str:
    """Submit a Set Action for one job; return the job id from the page it redirects to."""
    fill_set_action(page, cluster=cluster, token=token, cids=cids)
    review_and_confirm(page)
    expect(page).to_have_url(JOB_URL)
    return JOB_URL.search(page.url)[1]


def job_badge(page: Page) -> Locator:
    return page.locator("#job-status .badge")


def expect_status(badge: Locator, status: str) -> None:
    """Wait until the badge shows `status`, in its colour."""
    expect(badge).to_have_attribute("data-status", status, timeout=JOB_TIMEOUT)
    expect(badge).to_have_css("background-color", COLOURS[status])


def make_job(user: User, cluster: Cluster, status: str, *, customers=None, **fields) -> Job:
    """A job in `status`, written straight to the database (ended now unless in progress), with
    `customers` ({cid: message}; C1 and C2 when None)."""
    customers = {"C1": "", "C2": ""} if customers is None else customers
    now = timezone.now()
    ended = {"started_at": now, "finished_at": now} if status != Job.Status.IN_PROGRESS else {}
    job = baker.make(
        Job,
        user=user,
        cluster=cluster,
        cluster_url=cluster.base_url,
        action=3,
        status=status,
        customer_count=len(customers),
        **(ended | fields),
    )
    JobCustomer.objects.bulk_create(
        [JobCustomer(job=job, cid=cid, message=message) for cid, message in customers.items()]
    )
    return job
