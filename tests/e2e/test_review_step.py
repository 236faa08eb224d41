"""The review step of Set Action in a real browser: what the review shows, Back keeping what
was typed without the token, and a confirmation that runs the job."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from tests.e2e import JOB_URL, fill_set_action, sign_in
from tests.helpers import TOKEN, row_counts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_review_back_and_confirm(page, operator, cluster):
    sign_in(page, operator)
    expect(page.locator("#id_action option:checked")).to_have_text("Choose an action")
    before = row_counts()
    cids = "C1, C2\nC3\n" + " ".join(f"D{n}" for n in range(10))
    fill_set_action(page, cluster=cluster, token=TOKEN, cids=cids)
    page.click("#submit-set-action")

    expect(page.get_by_role("heading", level=1)).to_have_text("Review the Set Action")
    facts = page.locator("dl.facts")
    expect(facts.locator("dt")).to_have_text(
        ["Action", "Cluster", "Address", "Customers", "Customer IDs", "Sent with", "Jobs"]
    )
    expect(facts.locator("dd")).to_have_text(
        [
            "T-Enable",
            "eu1",
            cluster.base_url,
            "13",
            "C1, C2, C3, D0, D1, D2, D3, D4, D5, D6 and 3 more",
            "the cluster API token you gave",
            "1",
        ]
    )
    assert TOKEN not in page.content()
    assert row_counts() == before

    page.get_by_role("button", name="Back").click()
    expect(page.locator("#id_action")).to_have_value("3")
    expect(page.locator("#id_cluster")).to_have_value(str(cluster.pk))
    expect(page.locator("#id_cids")).to_have_value(cids)
    expect(page.locator("#id_token")).to_have_value("")
    expect(page.locator("[data-field=token] .field-error")).to_have_text(
        "The API token was cleared; type it again."
    )
    assert row_counts() == before

    page.fill("#id_token", TOKEN)
    page.click("#submit-set-action")
    page.get_by_role("button", name="Confirm and run").click()
    expect(page).to_have_url(JOB_URL)
    job = Job.objects.get()
    assert job.customer_count == 13 and str(job.pk) == JOB_URL.search(page.url)[1]
