"""The approval rules through the API: administrators' tokens list, create and delete them, each
change audited; anyone else is refused; bad input is a 400 problem with nothing written; a
rule made here holds a Set Action made through the API for approval, and once deleted no
longer does."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import ApprovalRule, Job
from jobs.services import DuplicateRule, approval_rule_create
from tests.admin_helpers import make_superuser
from tests.helpers import THREADS, TOKEN, make_user, row_counts, run_concurrently

RULES = "/api/v1/approval-rules"
PROBLEM = "application/problem+json"
RULE = {
    "cluster": "eu1",
    "action": "t-enable",
    "min_customers": 2,
    "approvers_group": "Approvers",
    "ttl_seconds": 3600,
    "approvers_required": 2,
    "per_run": True,
}


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


@pytest.fixture
def admin(db):
    return make_superuser()


@pytest.fixture
def admin_secret(admin) -> str:
    return token_create(user=admin, name="rules").secret


def approvers() -> Group:
    return Group.objects.get(name="Approvers")


def call(client, method: str, url: str, secret: str, body=None, **headers):
    send = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **headers}
    if body is None:
        return send(url, **auth)
    return send(url, json.dumps(body), content_type="application/json", **auth)


def test_an_admin_token_lists_creates_and_deletes_rules_each_audited(
    client, admin, admin_secret, cluster
):
    assert call(client, "get", RULES, admin_secret).json()["results"] == []
    created = call(client, "post", RULES, admin_secret, RULE, REMOTE_ADDR="10.2.3.4")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule | {"id": 0, "created_at": ""} == {
        "id": 0,
        "cluster": "eu1",
        "action": "T-Enable",
        "min_customers": 2,
        "approvers_group": "Approvers",
        "ttl_seconds": 3600,
        "approvers_required": 2,
        "per_run": True,
        "created_at": "",
    }
    [listed] = call(client, "get", RULES, admin_secret).json()["results"]
    assert listed == rule
    entry = AuditEntry.objects.get(event=AuditEntry.Event.APPROVAL_RULE_CREATED)
    assert (entry.actor, entry.ip_address) == (admin, "10.2.3.4")
    assert entry.details == {"rule_id": rule["id"]} | {
        key: value for key, value in rule.items() if key not in ("id", "created_at")
    }

    deleted = call(client, "delete", f"{RULES}/{rule['id']}", admin_secret, REMOTE_ADDR="10.2.3.5")
    assert deleted.status_code == 204
    assert not ApprovalRule.objects.exists()
    gone = AuditEntry.objects.get(event=AuditEntry.Event.APPROVAL_RULE_DELETED)
    assert (gone.actor, gone.ip_address, gone.details["rule_id"]) == (admin, "10.2.3.5", rule["id"])
    again = call(client, "delete", f"{RULES}/{rule['id']}", admin_secret)
    assert (again.status_code, again["Content-Type"]) == (404, PROBLEM)
    assert AuditEntry.objects.filter(event=AuditEntry.Event.APPROVAL_RULE_DELETED).count() == 1


def test_left_out_numbers_take_their_defaults_and_any_is_null(
    client, admin_secret, cluster, settings
):
    settings.TMS_APPROVAL_TTL = 5400
    body = {"cluster": None, "action": None, "approvers_group": "Approvers"}
    created = call(client, "post", RULES, admin_secret, body)
    assert created.status_code == 201, created.content
    rule = ApprovalRule.objects.get()
    assert (rule.cluster, rule.action, rule.min_customers) == (None, None, 0)
    assert (rule.ttl_seconds, rule.approvers_required, rule.per_run) == (5400, 1, False)


def test_an_operators_token_is_refused_everything(client, operator, cluster):
    secret = token_create(user=operator, name="pipeline").secret
    rule = ApprovalRule.objects.create(approvers_group=approvers(), cluster=cluster)
    before = written()
    for method, url, body in (
        ("get", RULES, None),
        ("post", RULES, RULE),
        ("delete", f"{RULES}/{rule.pk}", None),
    ):
        response = call(client, method, url, secret, body)
        assert (response.status_code, response["Content-Type"]) == (403, PROBLEM), method
    assert written() == before


def test_a_read_only_admin_token_reads_but_cannot_write(client, admin, cluster):
    secret = token_create(user=admin, name="reader", read_only=True).secret
    rule = ApprovalRule.objects.create(approvers_group=approvers())
    assert call(client, "get", RULES, secret).status_code == 200
    before = written()
    refused = call(client, "post", RULES, secret, RULE)
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]
    assert call(client, "delete", f"{RULES}/{rule.pk}", secret).status_code == 403
    assert written() == before


def test_the_model_permissions_alone_decide(client, cluster):
    keeper = make_user("keeper")
    keeper.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_approvalrule", "add_approvalrule"])
    )
    secret = token_create(user=keeper, name="keeper").secret
    assert call(client, "get", RULES, secret).status_code == 200
    created = call(client, "post", RULES, secret, RULE)
    assert created.status_code == 201
    # No delete_approvalrule: no delete.
    assert call(client, "delete", f"{RULES}/{created.json()['id']}", secret).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cluster": "mars"}, "cluster"),
        ({"approvers_group": "Nobody"}, "approvers_group"),
        ({"action": "Explode"}, "action"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 7 * 24 * 3600 + 1}, "ttl_seconds"),
        ({"approvers_required": 0}, "approvers_required"),
        ({"approvers_required": 3}, "approvers_required"),
        ({"min_customers": -1}, "min_customers"),
        ({"min_customers": 2**31}, "min_customers"),
        ({"min_customers": 10**400}, "min_customers"),
        ({"ttl_seconds": "3600"}, "ttl_seconds"),
        ({"ttl_seconds": 3600.0}, "ttl_seconds"),
        ({"approvers_required": True}, "approvers_required"),
        ({"per_run": "yes"}, "per_run"),
        ({"per_run": 1}, "per_run"),
        ({"per_run": None}, "per_run"),
        ({"min_customers": None}, "min_customers"),
        ({"cluster": 1}, "cluster"),
        ({"approvers_group": ["Approvers"]}, "approvers_group"),
        ({"action": ["1"]}, "action"),
        ({"approvers_group": None}, "approvers_group"),
        # Any cluster or any action is said, never assumed from a missing key.
        ({"cluster": ...}, "cluster"),
        ({"action": ...}, "action"),
        ({"approvers_group": ...}, "approvers_group"),
    ],
)
def test_bad_input_is_a_400_problem_with_nothing_written(
    client, admin_secret, cluster, change, field
):
    body = {key: value for key, value in (RULE | change).items() if value is not ...}
    before = written()
    response = call(client, "post", RULES, admin_secret, body)
    assert (response.status_code, response["Content-Type"]) == (400, PROBLEM), response.content
    assert field in response.json()["errors"]
    assert written() == before


def test_a_body_that_is_not_an_object_is_a_400_with_nothing_written(client, admin_secret):
    before = written()
    for body in ([RULE], "rule", 5):
        response = call(client, "post", RULES, admin_secret, body)
        assert (response.status_code, response["Content-Type"]) == (400, PROBLEM), body
    assert written() == before


def test_the_same_rule_again_is_a_409_with_nothing_written(client, admin_secret, cluster):
    assert call(client, "post", RULES, admin_secret, RULE).status_code == 201
    before = written()
    response = call(client, "post", RULES, admin_secret, RULE | {"action": "3"})
    assert (response.status_code, response["Content-Type"]) == (409, PROBLEM)
    assert "exists already" in response.json()["detail"]
    assert written() == before
    # A rule that differs in any one field is another rule.
    other = call(client, "post", RULES, admin_secret, RULE | {"ttl_seconds": 60})
    assert other.status_code == 201


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_equal_rules_asked_for_at_once_make_one_rule(cluster):
    group = approvers()
    results, errors = run_concurrently(
        lambda n: approval_rule_create(
            rule=ApprovalRule(cluster=cluster, action=1, approvers_group=group, ttl_seconds=60)
        )
    )
    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, DuplicateRule) for error in errors), errors
    assert ApprovalRule.objects.count() == 1
    assert AuditEntry.objects.filter(event=AuditEntry.Event.APPROVAL_RULE_CREATED).count() == 1


@pytest.mark.parametrize("rule_id", ["0", "abc", "99999999999999999999", "1.5", "-1"])
def test_a_malformed_or_unknown_rule_id_is_a_404(client, admin_secret, rule_id):
    response = call(client, "delete", f"{RULES}/{rule_id}", admin_secret)
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)


def submit(client, secret: str, key: str, cids: list[str]):
    body = {"action": "T-Enable", "cluster": "eu1", "cids": cids, "cluster_token": TOKEN}
    return call(client, "post", "/api/v1/set-actions", secret, body, HTTP_IDEMPOTENCY_KEY=key)


def test_a_rule_made_here_holds_set_actions_until_it_is_deleted(
    client, admin_secret, operator, cluster
):
    pipeline = token_create(user=operator, name="pipeline").secret
    rule = call(client, "post", RULES, admin_secret, RULE).json()

    # Fewer customers than the rule's least: not held.
    [one] = submit(client, pipeline, "k1", ["C1"]).json()["jobs"]
    assert one["status"] == "IN_PROGRESS"
    held = submit(client, pipeline, "k2", ["C2", "C3"])
    assert held.status_code == 201, held.content
    assert [job["status"] for job in held.json()["jobs"]] == ["PENDING_APPROVAL"]
    job = Job.objects.select_related("approval").get(pk=held.json()["jobs"][0]["id"])
    assert job.approval.approvers_group.name == "Approvers"
    assert job.approval.approvers_required == 2
    assert job.approval.rule_id == rule["id"]

    assert call(client, "delete", f"{RULES}/{rule['id']}", admin_secret).status_code == 204
    after = submit(client, pipeline, "k3", ["C4", "C5"])
    assert after.status_code == 201, after.content
    assert [job["status"] for job in after.json()["jobs"]] == ["IN_PROGRESS"]
    # What the rule held keeps waiting.
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING_APPROVAL
