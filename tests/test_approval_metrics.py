"""/metrics counts approval requests made and how they ended, and those pending now."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from jobs.models import ApprovalRule, Job
from jobs.services import (
    approval_approve,
    approval_deny,
    approvals_expire,
    job_cancel,
    job_submit,
)
from tests.helpers import TOKEN, make_user

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
OUTCOMES = ("requested", "approved", "denied", "expired", "withdrawn")


@pytest.fixture
def rule(db):
    return ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))


def scrape(client, settings) -> set[str]:
    settings.TMS_METRICS_TOKEN = METRICS_TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    return set(response.content.decode().splitlines())


def counted(lines: set[str]) -> dict[str, int]:
    values = {}
    for outcome in OUTCOMES:
        [line] = [
            line
            for line in lines
            if line.startswith(f'tmsdash_approvals_total{{outcome="{outcome}"}} ')
        ]
        values[outcome] = int(line.rsplit(" ", 1)[1])
    [pending] = [line for line in lines if line.startswith("tmsdash_approvals_pending ")]
    values["pending"] = int(pending.rsplit(" ", 1)[1])
    return values


def test_metrics_count_requests_by_outcome_and_the_pending_ones(
    client, settings, operator, cluster, rule
):
    lines = scrape(client, settings)
    assert "# TYPE tmsdash_approvals_total counter" in lines
    assert "# TYPE tmsdash_approvals_pending gauge" in lines
    assert counted(lines) == dict.fromkeys([*OUTCOMES, "pending"], 0)

    approver = make_user("ap1", "Approvers")
    jobs = [
        job_submit(user=operator, action=1, cluster=cluster, cids=f"C{n}", token=TOKEN)[0]
        for n in range(5)
    ]
    approval_approve(request_id=jobs[0].approval_id, user=approver)
    approval_deny(request_id=jobs[1].approval_id, user=approver, comment="no")
    approvals_expire(now=Job.objects.get(pk=jobs[2].pk).approval.expires_at)
    job_cancel(job_ids=[jobs[3].pk], user=operator)

    assert counted(scrape(client, settings)) == {
        "requested": 5,
        "approved": 1,
        "denied": 1,
        "expired": 1,
        "withdrawn": 1,
        "pending": 1,
    }
    # A request ended once is counted once: a second expiry round changes nothing.
    approvals_expire(now=Job.objects.get(pk=jobs[2].pk).approval.expires_at)
    assert counted(scrape(client, settings))["expired"] == 1
