"""Approvals through the API: POST /jobs/{id}/approve and /deny with a token created with the
approve scope, GET /approvals, and a Set Action a rule covers answered PENDING_APPROVAL."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from api.models import ApiToken
from api.tokens import token_create
from jobs.models import ApprovalRule, Job
from jobs.services import approval_approve, job_submit
from tests.helpers import TOKEN, make_user, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(db):
    return ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))


@pytest.fixture
def approver(db):
    return make_user("ap1", "Approvers")


def scoped(user, **extra) -> str:
    return token_create(user=user, name="approves", can_approve=True, **extra).secret


def post(client, url: str, secret: str, body: dict | None = None, **headers):
    return client.post(
        url,
        json.dumps(body if body is not None else {}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )


def get(client, url: str, secret: str, **params):
    return client.get(url, params, HTTP_AUTHORIZATION=f"Bearer {secret}")


def written() -> dict[str, int]:
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def held(operator, cluster, cids: str = "C1 C2") -> Job:
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
    return job


def test_a_covered_set_action_answers_its_jobs_pending_approval(client, operator, cluster, rule):
    secret = token_create(user=operator, name="pipeline").secret
    answer = client.post(
        "/api/v1/set-actions",
        json.dumps(
            {"action": "T-Enable", "cluster": cluster.name, "cids": ["C1"], "cluster_token": TOKEN}
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert answer.status_code == 201, answer.content
    [job] = answer.json()["jobs"]
    assert (job["status"], job["shown_status"]) == ("PENDING_APPROVAL", "PENDING APPROVAL")


def test_a_scoped_token_of_an_approver_approves_and_queues_the_job(
    client, operator, cluster, rule, approver
):
    job = held(operator, cluster)
    answer = post(client, f"/api/v1/jobs/{job.pk}/approve", scoped(approver), {"comment": "ok"})
    assert answer.status_code == 200, answer.content
    assert (answer.json()["id"], answer.json()["status"]) == (str(job.pk), "IN_PROGRESS")
    assert DBTaskResult.objects.count() == 1
    again = post(client, f"/api/v1/jobs/{job.pk}/deny", scoped(approver), {"comment": "no"})
    assert again.status_code == 409
    assert again.json()["detail"] == "This request was already approved (by ap1)."


def test_a_deny_needs_its_comment_and_ends_the_job(client, operator, cluster, rule, approver):
    job = held(operator, cluster)
    secret = scoped(approver)
    before = written()
    for body in ({}, {"comment": ""}, {"comment": "   "}, {"comment": "a\x00b"}):
        answer = post(client, f"/api/v1/jobs/{job.pk}/deny", secret, body)
        assert answer.status_code == 400, (body, answer.content)
    assert written() == before
    answer = post(client, f"/api/v1/jobs/{job.pk}/deny", secret, {"comment": "Too large"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "DENIED"
    assert answer.json()["error"] == "Denied by ap1: Too large"


def test_who_may_not_decide_is_refused_and_nothing_is_written(
    client, operator, cluster, rule, approver
):
    job = held(operator, cluster)
    outsider = make_user("aud1", "Auditors")
    cases = [
        # A token without the approve scope, whatever its owner may do.
        (token_create(user=approver, name="plain").secret, 403, "approve scope"),
        # The submitter, with a scoped token, even as a member of the group.
        (scoped(operator), 403, "someone else"),
        # Someone who sees every job but is not in the group.
        (scoped(outsider), 403, "Only members of Approvers"),
    ]
    operator.groups.add(Group.objects.get(name="Approvers"))
    before = written()
    for secret, status, detail in cases:
        answer = post(client, f"/api/v1/jobs/{job.pk}/approve", secret)
        assert answer.status_code == status, answer.content
        assert detail in answer.json()["detail"]
    assert written() == before


def test_a_job_neither_seen_nor_waiting_for_the_caller_is_404(client, operator, cluster, approver):
    [plain] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    secret = scoped(approver)
    for job_id in (plain.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert post(client, f"/api/v1/jobs/{job_id}/approve", secret).status_code == 404
    # One the caller sees, that waits for nobody, is a conflict.
    answer = post(client, f"/api/v1/jobs/{plain.pk}/approve", scoped(operator))
    assert (answer.status_code, answer.json()["detail"]) == (
        409,
        "This job does not wait for approval.",
    )


def test_approvals_lists_what_waits_for_the_caller(client, operator, cluster, rule, approver):
    cluster.max_cids_per_request = 1
    cluster.save()
    batch = job_submit(user=operator, action=1, cluster=cluster, cids="C1 C2", token=TOKEN)
    other = held(operator, cluster, "C3")
    approval_approve(request_id=other.approval_id, user=approver)
    secret = scoped(approver)
    [pending] = get(client, "/api/v1/approvals", secret).json()["results"]
    assert pending["id"] == str(batch[0].approval_id)
    assert pending["jobs"] == [str(job.pk) for job in batch]
    assert (pending["customer_count"], pending["approvals"], pending["submitter"]) == (
        2,
        0,
        "op1",
    )
    [approved] = get(client, "/api/v1/approvals", secret, status="approved").json()["results"]
    assert (approved["id"], approved["approvals"]) == (str(other.approval_id), 1)
    # Nothing waits for the submitter, nor for someone outside the group.
    assert get(client, "/api/v1/approvals", scoped(operator)).json()["results"] == []
    assert get(client, "/api/v1/approvals", secret, status="nope").status_code == 400


def test_the_approve_scope_is_chosen_at_creation_and_shown(client, operator):
    call_command(
        "create_api_token",
        user="op1",
        name="ci",
        can_approve=True,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert ApiToken.objects.get(name="ci").can_approve
    client.force_login(operator)
    page = client.post(
        reverse("api_tokens"), {"name": "approver", "expires_days": 90, "can_approve": "on"}
    )
    assert ApiToken.objects.get(name="approver").can_approve, page.content
    assert "Read and write, approves" in client.get(reverse("api_tokens")).content.decode()
    before = written()
    refused = client.post(
        reverse("api_tokens"),
        {"name": "both", "expires_days": 90, "read_only": "on", "can_approve": "on"},
    )
    assert refused.status_code == 400
    assert "A read-only token cannot approve" in refused.content.decode()
    assert written() == before
