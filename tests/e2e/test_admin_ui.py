"""The admin in a real browser: what an auditor sees of jobs matches the operator UI."""

from __future__ import annotations

import pytest
from model_bakery import baker

from jobs.models import Job
from tests.e2e import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def background(page, selector: str) -> str:
    return page.locator(selector).evaluate("node => getComputedStyle(node).backgroundColor")


@pytest.mark.parametrize("status", [Job.Status.FAILED, Job.Status.UNKNOWN])
def test_admin_status_badge_looks_like_the_operator_uis(page, auditor, operator, cluster, status):
    job = baker.make(
        Job, user=operator, cluster=cluster, action=1, status=status, error_message="no"
    )
    sign_in(page, auditor, next=f"/jobs/{job.pk}/")
    in_ui = background(page, "#job-status .badge")

    page.goto("/admin/jobs/failedjob/")
    in_admin = background(page, f"#result_list .badge[data-status={status}]")
    assert in_admin == in_ui
    # Not the grey of a badge whose stylesheet is missing.
    assert in_ui != "rgb(153, 153, 153)"
