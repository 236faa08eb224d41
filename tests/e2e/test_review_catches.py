"""The reviews in a real browser: Set Action's review names busy customers and runs the free
ones without asking for the token again; a retry and a batch retry are reviewed, then
confirmed once; the cluster's environment label is on the form, the reviews and the job page.
Each new review state passes axe at 1,280 and 390 px and does not scroll sideways."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from jobs.models import InFlightCustomer, Job, JobCustomer
from jobs.services import job_submit
from tests.e2e import JOB_URL, fill_set_action, make_job, sign_in
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_phone_widths import PHONE, assert_no_sideways_scroll
from tests.helpers import TOKEN, row_counts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDE = {"width": 1280, "height": 800}


def check_both_widths(page: Page) -> None:
    """axe at 1,280 px and at 390 px, where nothing may scroll sideways either."""
    for size in (WIDE, PHONE):
        page.set_viewport_size(size)
        assert_accessible(page)
    assert_no_sideways_scroll(page)
    page.set_viewport_size(WIDE)


def test_busy_customers_are_named_at_the_review_and_the_free_ones_run_without_the_token(
    page, operator, cluster
):
    cluster.environment = "production"
    cluster.save()
    [busy] = job_submit(user=operator, action=1, cluster=cluster, cids="C2", token=TOKEN)
    sign_in(page, operator)
    expect(page.locator("#cluster-environments .env-label")).to_have_text("production")
    expect(page.locator("#id_cluster option:checked")).to_have_text("eu1 (production)")
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2 C3")
    before = row_counts()
    page.click("#submit-set-action")

    expect(page.locator("#review-busy")).to_contain_text("1 customer is busy")
    link = page.locator("#review-busy-list a")
    expect(link).to_have_attribute("href", f"/jobs/{busy.pk}/")
    expect(page.locator("#review-busy-list li")).to_have_text(f"C2: job {str(busy.pk)[:8]}")
    expect(page.locator("#review-cluster .env-label")).to_have_text("production")
    expect(page.locator("#review-address")).to_have_text(cluster.base_url)
    expect(page.locator("#confirm-set-action")).to_have_text("Run the 2 free ones")
    assert row_counts() == before
    assert TOKEN not in page.content()
    check_both_widths(page)

    page.click("#confirm-set-action")
    expect(page).to_have_url(JOB_URL)
    new = Job.objects.get(pk=JOB_URL.search(page.url)[1])
    assert list(new.customers.values_list("cid", flat=True)) == ["C1", "C3"]
    assert Job.objects.count() == 2
    expect(page.locator("#job-cluster-environment .env-label")).to_have_text("production")
    expect(page.locator("#job-cluster-environment")).to_have_text("Cluster eu1: production")


def test_every_customer_busy_offers_back_only(page, operator, cluster):
    job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1")
    page.click("#submit-set-action")
    expect(page.locator("#review-busy")).to_contain_text("No customer is free")
    expect(page.locator("#confirm-set-action")).to_have_count(0)
    check_both_widths(page)


def test_a_retry_is_reviewed_and_a_double_confirm_makes_one_job(page, operator, cluster):
    cluster.environment = "staging"
    cluster.save()
    job = make_job(operator, cluster, Job.Status.FAILED, customers={"C1": "", "C2": "", "C3": ""})
    JobCustomer.objects.filter(job=job, cid__in=["C1", "C3"]).update(outcome="FAILED")
    sign_in(page, operator, next=f"/jobs/{job.pk}/")
    page.fill("#id_retry_token", TOKEN)
    before = row_counts()
    page.click("#retry-button")

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Retry 2 failed customers of T-Enable on eu1"
    )
    expect(page.locator("#review-cluster .env-label")).to_have_text("staging")
    assert row_counts() == before
    assert TOKEN not in page.content()
    check_both_widths(page)

    form = page.eval_on_selector("#confirm-retry-form", "f => Object.fromEntries(new FormData(f))")
    page.click("#confirm-retry")
    expect(page).to_have_url(JOB_URL)
    retry = Job.objects.get(retry_of=job)
    assert page.url.endswith(f"/jobs/{retry.pk}/")
    # The same confirmation again, as a second click that got through would send it.
    again = page.request.post(f"/jobs/{job.pk}/retry/", form=form, max_redirects=0)
    assert again.status == 302
    assert again.headers["location"] == f"/jobs/{retry.pk}/"
    assert Job.objects.filter(retry_of=job).count() == 1
    assert list(retry.customers.values_list("cid", flat=True)) == ["C1", "C3"]


def test_a_batch_retry_is_reviewed_then_confirmed(page, operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    parts = job_submit(user=operator, action=1, cluster=cluster, cids="A B", token=TOKEN)
    Job.objects.filter(pk__in=[part.pk for part in parts]).update(
        status="FAILED", finished_at=timezone.now()
    )
    InFlightCustomer.objects.filter(job__in=parts).delete()
    sign_in(page, operator, next=f"/batches/{parts[0].batch_id}/")
    page.fill("#batch-retry-form [name=retry_token]", TOKEN)
    before = row_counts()
    page.click("#batch-retry-button")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Retry 2 customers of Trans-Begin on eu1"
    )
    expect(page.locator("#retry-review")).to_contain_text(f"2 parts of batch {parts[0].batch_id}")
    assert row_counts() == before
    check_both_widths(page)
    page.click("#confirm-retry")
    expect(page).to_have_url(f"/batches/{Job.objects.filter(retry_of=parts[0]).get().batch_id}/")
    assert Job.objects.filter(retry_of__in=parts).count() == 2
