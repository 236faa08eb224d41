"""The operator's pages in a real browser, against a live server, a real worker and the fake
cluster: what an operator sees when signing in, submitting, watching and finding jobs."""

from __future__ import annotations

import re

import pytest
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import expect

from jobs.models import Job
from jobs.services import job_submit
from tests.e2e import (
    BATCH_URL,
    JOB_TIMEOUT,
    JOB_URL,
    PASSWORD,
    expect_status,
    fill_set_action,
    job_badge,
    review_and_confirm,
    set_action,
    sign_in,
)
from tests.helpers import TOKEN, row_counts, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_sign_in_shows_the_operator_and_sign_out_ends_the_session(page, operator):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "operator")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".error[role=alert]")).to_be_visible()
    expect(page.locator(".who")).to_have_count(0)

    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_have_text("operator")
    expect(page.locator("form#set-action-form")).to_be_visible()

    page.click("button#sign-out")
    expect(page.locator(".who")).to_have_count(0)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_job_page_turns_success_green_in_place(page, operator, cluster, fake_cluster, start_worker):
    sign_in(page, operator)
    job_id = set_action(page, cluster=cluster, token=TOKEN, cids="C1, C2")
    expect(page.locator("[data-testid=job-id]")).to_have_text(job_id)
    # No worker runs yet, so the page is certain to be seen in progress before it ends.
    expect_status(job_badge(page), "IN_PROGRESS")
    page.evaluate("window.e2eNotReloaded = true")

    start_worker()
    expect_status(job_badge(page), "SUCCESS")
    expect(job_badge(page)).to_have_text(re.compile("SUCCESS"))
    assert page.evaluate("window.e2eNotReloaded") is True, "the page reloaded"
    expect(page.locator("#job-http-status")).to_contain_text("200")
    links = page.locator("table#job-customers a.cid-link")
    expect(links).to_have_text(["C1", "C2"])
    expect(links.first).to_have_attribute("href", "/customers/?cid=C1")
    assert fake_cluster.count(job_id) == 1

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-job-id")
    expect(page.locator("#copy-job-id")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == job_id


def test_bad_token_fails_red_with_the_http_status_on_the_jobs_list(page, operator, cluster, worker):
    sign_in(page, operator)
    job_id = set_action(page, cluster=cluster, token="bad-token", cids="C1 C2")
    expect_status(job_badge(page), "FAILED")
    expect(page.locator("#job-http-status")).to_contain_text("401")
    expect(page.locator("#job-error")).to_contain_text("Invalid token")

    page.goto("/jobs/")
    badge = page.locator(f"#jobs-table tbody tr[data-job-id='{job_id}'] .badge[data-status]")
    expect_status(badge, "FAILED")
    expect(badge).to_have_attribute("title", re.compile(r"^HTTP 401 - .*Invalid token"))


def test_retrying_a_failed_job_with_a_good_token_succeeds(page, operator, cluster, worker):
    sign_in(page, operator)
    failed_id = set_action(page, cluster=cluster, token="bad-token", cids="C1")
    expect_status(job_badge(page), "FAILED")

    # The operator comes back to the failed job from the jobs list.
    page.goto("/jobs/")
    page.click(f"#jobs-table tr[data-job-id='{failed_id}'] a[href='/jobs/{failed_id}/']")
    expect(page).to_have_url(re.compile(f"/jobs/{failed_id}/$"))
    page.fill("#id_retry_token", TOKEN)
    page.click("#retry-button")
    expect(page.locator("#retry-review-heading")).to_contain_text("Retry 1 customer of")
    page.click("#confirm-retry")
    expect(page).not_to_have_url(re.compile(failed_id))
    expect(page).to_have_url(JOB_URL)
    expect_status(job_badge(page), "SUCCESS")
    retry = Job.objects.get(pk=JOB_URL.search(page.url)[1])
    assert str(retry.retry_of_id) == failed_id
    assert Job.objects.get(pk=failed_id).status == "FAILED"


def test_csv_of_1200_customers_gives_a_batch_of_three_jobs(
    page, operator, cluster, fake_cluster, worker
):
    sign_in(page, operator)
    csv = "cid\n" + "".join(f"CSV-{n:04}\n" for n in range(1, 1201))
    fill_set_action(page, cluster=cluster, token=TOKEN)
    page.set_input_files(
        "#id_csv_file",
        {"name": "customers.csv", "mimeType": "text/csv", "buffer": csv.encode()},
    )
    review_and_confirm(page)

    expect(page).to_have_url(BATCH_URL)
    batch_id = BATCH_URL.search(page.url)[1]
    rows = page.locator("table#batch-jobs tr[data-job-id]")
    expect(rows).to_have_count(3)
    counts = page.locator("#batch-counts")
    expect(counts.locator("[data-count=SUCCESS]")).to_have_text("3", timeout=JOB_TIMEOUT)
    expect(counts.locator("[data-count=QUEUED]")).to_have_text("0")
    expect(counts.locator("[data-count=RUNNING]")).to_have_text("0")
    expect(counts.locator("[data-count=FAILED]")).to_have_text("0")
    expect(page.locator("progress#batch-progress")).to_be_visible()

    jobs = Job.objects.filter(batch_id=batch_id).order_by("batch_seq")
    assert [job.customer_count for job in jobs] == [500, 500, 200]
    assert {row.get_attribute("data-job-id") for row in rows.all()} == {str(j.pk) for j in jobs}
    assert [fake_cluster.count(str(job.pk)) for job in jobs] == [1, 1, 1]


def test_double_click_on_confirm_gives_one_job(page, operator, cluster, fake_cluster, worker):
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2")
    page.click("#submit-set-action")
    # At machine speed Chromium folds both clicks of a dblclick() into one submission, so
    # the second click comes, as an operator's does, once the first request is on its way.
    box = page.locator("#confirm-set-action").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    with page.expect_request(lambda request: request.method == "POST"):
        page.mouse.click(x, y)
    page.mouse.click(x, y)
    expect(page).to_have_url(JOB_URL)
    expect_status(job_badge(page), "SUCCESS")

    assert Job.objects.count() == 1
    job = Job.objects.get()
    page.goto("/jobs/")
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(1)
    expect(page.locator(f"#jobs-table tbody tr[data-job-id='{job.pk}']")).to_be_visible()
    assert fake_cluster.count(str(job.pk)) == 1


def test_the_same_confirm_sent_twice_at_once_gives_one_job(page, live_server, operator, cluster):
    sign_in(page, operator)
    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 C2")
    page.click("#submit-set-action")
    # The review page is in: the click only sends the form.
    expect(page.locator("form#confirm-set-action-form")).to_be_attached()
    # What a browser does when the confirmation is resubmitted: the same fields, idempotency
    # key and sealed token included, posted again; here twice at once, with no script to stop
    # the second.
    final_urls = page.evaluate(
        """async () => {
            const form = document.querySelector('form#confirm-set-action-form');
            // Not form.action: the input named "action" shadows it.
            const url = form.getAttribute('action') || location.href;
            const send = () => fetch(url, {method: 'POST', body: new FormData(form)});
            const answers = await Promise.all([send(), send()]);
            return answers.map(answer => answer.url);
        }"""
    )
    assert Job.objects.count() == 1
    job_url = f"{live_server.url}/jobs/{Job.objects.get().pk}/"
    assert final_urls == [job_url, job_url]


def test_bad_input_shows_field_errors_and_writes_nothing(page, operator, cluster):
    sign_in(page, operator)
    before = row_counts()
    fill_set_action(page, cluster=cluster, token="", cids="C1")
    page.click("#submit-set-action")
    # The browser itself refuses a form without a token.
    expect(page.locator("#id_token:invalid")).to_be_visible()
    expect(page.locator("#submit-set-action")).to_be_enabled()

    fill_set_action(page, cluster=cluster, token=TOKEN, cids="C1 not/a/cid")
    page.click("#submit-set-action")
    expect(page.locator("[data-field=cids] .field-error")).to_contain_text("not/a/cid")
    assert row_counts() == before


def test_jobs_list_filters_by_failed_and_by_job_id(page, operator, cluster, worker):
    sign_in(page, operator)
    good_id = set_action(page, cluster=cluster, token=TOKEN, cids="C1")
    expect_status(job_badge(page), "SUCCESS")
    bad_id = set_action(page, cluster=cluster, token="bad-token", cids="C2")
    expect_status(job_badge(page), "FAILED")

    page.goto("/jobs/")
    rows = page.locator("#jobs-table tbody tr[data-job-id]")
    expect(rows).to_have_count(2)
    # Newest first.
    expect(rows.first).to_have_attribute("data-job-id", bad_id)
    page.select_option("#jobs-filter select[name=status]", "FAILED")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"[?&]status=FAILED"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", bad_id)
    expect(rows.first.locator(".badge")).to_have_attribute("data-status", "FAILED")

    page.goto("/jobs/")
    page.fill("#jobs-filter input[name=q]", good_id[:8])
    page.click("#apply-filters")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", good_id)


def test_searching_a_customer_id_opens_the_customer_history(page, operator, cluster, worker):
    sign_in(page, operator)
    first_id = set_action(page, cluster=cluster, token=TOKEN, cids="CUST-42 CUST-43")
    expect_status(job_badge(page), "SUCCESS")
    second_id = set_action(page, cluster=cluster, token="bad-token", cids="CUST-42")
    expect_status(job_badge(page), "FAILED")
    # A job without CUST-42 stays out of its history.
    set_action(page, cluster=cluster, token=TOKEN, cids="CUST-43")

    page.goto("/jobs/")
    page.fill("#jobs-filter input[name=q]", "CUST-42")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"/customers/\?cid=CUST-42$"))
    rows = page.locator("table#customer-jobs tr[data-job-id]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-job-id", second_id)
    expect(rows.nth(1)).to_have_attribute("data-job-id", first_id)
    expect(rows.nth(1).locator("td.outcome")).to_contain_text(re.compile("success", re.I))


def test_an_operator_cannot_open_another_operators_job(
    page, open_page, operator, other_operator, auditor, cluster
):
    [theirs] = job_submit(user=other_operator, action=3, cluster=cluster, cids="C9", token=TOKEN)
    sign_in(page, operator)
    response = page.goto(f"/jobs/{theirs.pk}/")
    assert response is not None and response.status == 404
    # Their customer is not found either: the search falls back to job ids, and finds none.
    page.goto("/jobs/?q=C9")
    expect(page).to_have_url(re.compile(r"/jobs/\?q=C9$"))
    expect(page.locator("#jobs-table tbody tr[data-job-id]")).to_have_count(0)

    auditors_page = open_page()
    sign_in(auditors_page, auditor, next="/jobs/")
    response = auditors_page.goto(f"/jobs/{theirs.pk}/")
    assert response is not None and response.status == 200
    expect(auditors_page.locator("[data-testid=job-id]")).to_have_text(str(theirs.pk))


def test_an_auditor_sees_every_operators_jobs_but_cannot_set_action(
    page, operator, other_operator, auditor, cluster
):
    [mine] = job_submit(user=operator, action=3, cluster=cluster, cids="C1", token=TOKEN)
    [theirs] = job_submit(user=other_operator, action=3, cluster=cluster, cids="C2", token=TOKEN)
    sign_in(page, auditor, next="/jobs/")
    response = page.goto("/")
    assert response is not None and response.status == 403

    page.goto("/jobs/")
    rows = page.locator("#jobs-table tbody tr[data-job-id]")
    expect(rows).to_have_count(2)
    expect_status(rows.first.locator(".badge[data-status]"), "IN_PROGRESS")
    page.select_option("#jobs-filter select[name=operator]", label="operator2")
    page.click("#apply-filters")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", str(theirs.pk))
    response = page.goto(f"/jobs/{mine.pk}/")
    assert response is not None and response.status == 200


def test_a_queued_job_cancelled_from_its_page_never_reaches_the_cluster(
    page, operator, cluster, fake_cluster, start_worker
):
    sign_in(page, operator)
    job_id = set_action(page, cluster=cluster, token=TOKEN, cids="C1")
    # No worker runs yet: the job is queued.
    expect_status(job_badge(page), "IN_PROGRESS")

    page.click("#cancel-button")

    expect_status(job_badge(page), "CANCELLED")
    expect(page.locator(".message")).to_contain_text("Cancelled 1 job(s)")
    expect(page.locator("#cancel-button")).to_have_count(0)
    # A worker then takes the job's task, and finds nothing to run.
    start_worker()
    wait_until(lambda: not DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).exists())
    assert fake_cluster.count(job_id) == 0
    page.goto("/jobs/?status=CANCELLED")
    expect(page.locator("table .badge")).to_have_text(["CANCELLED"])
