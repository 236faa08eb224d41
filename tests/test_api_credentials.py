"""Clusters' stored credentials through the API: administrators' tokens set, replace and
remove one, each change audited; anyone else is refused; bad input is a 400 problem with
nothing written; no answer ever holds the token, and the cluster list says only whether one
is set and when it last changed."""

from __future__ import annotations

import json

import pytest

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import ClusterCredential
from jobs.tokens import token_decrypt
from tests.admin_helpers import make_superuser
from tests.helpers import make_user, row_counts

URL = "/api/v1/clusters/eu1/credential"
PROBLEM = "application/problem+json"
STORED = "svc-Stored-credential-4b7e-never-in-clear"


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


@pytest.fixture
def admin(db):
    return make_superuser()


@pytest.fixture
def admin_secret(admin) -> str:
    return token_create(user=admin, name="credentials").secret


def call(client, method: str, url: str, secret: str, body=None, **extra):
    send = getattr(client, method)
    content_type = extra.pop("content_type", "application/json")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **extra}
    if body is None:
        return send(url, **auth)
    if not isinstance(body, str):
        body = json.dumps(body)
    return send(url, body, content_type=content_type, **auth)


def test_an_admin_token_sets_replaces_and_removes_a_credential_each_audited(
    client, admin_secret, cluster
):
    answer = call(client, "put", URL, admin_secret, {"token": STORED}, REMOTE_ADDR="10.2.3.4")
    assert (answer.status_code, answer.content) == (204, b"")
    assert token_decrypt(ClusterCredential.objects.get(cluster=cluster).ciphertext) == STORED
    assert call(client, "put", URL, admin_secret, {"token": "svc-2"}).status_code == 204
    assert token_decrypt(ClusterCredential.objects.get(cluster=cluster).ciphertext) == "svc-2"
    assert call(client, "delete", URL, admin_secret).status_code == 204
    assert not ClusterCredential.objects.exists()
    events = list(AuditEntry.objects.order_by("id").values_list("event", "actor_username"))
    assert [event for event, _ in events if event.startswith("credential.")] == [
        "credential.set",
        "credential.changed",
        "credential.removed",
    ]
    first = AuditEntry.objects.get(event="credential.set")
    assert (first.actor_username, first.ip_address) == ("admin", "10.2.3.4")


def test_removing_a_credential_that_is_not_there_is_a_404_with_nothing_written(
    client, admin_secret, cluster
):
    before = written()
    answer = call(client, "delete", URL, admin_secret)
    assert (answer.status_code, answer["Content-Type"]) == (404, PROBLEM)
    assert answer.json()["detail"] == "Cluster eu1 has no stored credential."
    assert written() == before


def test_an_unknown_cluster_is_a_404(client, admin_secret, cluster):
    for method, body in (("put", {"token": STORED}), ("delete", None)):
        answer = call(client, method, "/api/v1/clusters/nope/credential", admin_secret, body)
        assert (answer.status_code, answer["Content-Type"]) == (404, PROBLEM)


@pytest.mark.parametrize(
    "body",
    [
        {"token": ""},
        {"token": "x" * 4097},
        {"token": "line\nbreak"},
        {"token": "nul\x00"},
        {"token": "two words"},
        {"token": 42},
        {"token": None},
        {},
        ["svc"],
        "not json",
        '{"token": ',
    ],
)
def test_bad_input_is_a_400_problem_with_nothing_written(client, admin_secret, cluster, body):
    before = written()
    answer = call(client, "put", URL, admin_secret, body)
    assert (answer.status_code, answer["Content-Type"]) == (400, PROBLEM), answer.content
    assert written() == before
    if isinstance(body, dict) and isinstance(body.get("token"), str) and body["token"]:
        assert body["token"] not in answer.content.decode()


def test_a_body_that_is_not_json_is_a_415(client, admin_secret, cluster):
    before = written()
    answer = call(client, "put", URL, admin_secret, "token=svc", content_type="text/plain")
    assert (answer.status_code, answer["Content-Type"]) == (415, PROBLEM)
    assert written() == before


def test_operators_and_read_only_admin_tokens_are_refused(client, admin, cluster):
    operator = make_user("op1", "Operators")
    for secret in (
        token_create(user=operator, name="op").secret,
        token_create(user=admin, name="ro", read_only=True).secret,
    ):
        before = written()
        assert call(client, "put", URL, secret, {"token": STORED}).status_code == 403
        assert call(client, "delete", URL, secret).status_code == 403
        assert written() == before
    assert call(client, "put", URL, "tms_bogus", {"token": STORED}).status_code == 401


def test_the_cluster_list_says_only_whether_one_is_set_and_when(client, admin_secret, cluster):
    operator = make_user("op1", "Operators")
    secret = token_create(user=operator, name="op").secret
    [listed] = call(client, "get", "/api/v1/clusters", secret).json()
    assert listed["credential"] == {"set": False, "changed_at": None}
    call(client, "put", URL, admin_secret, {"token": STORED})
    answer = call(client, "get", "/api/v1/clusters", secret)
    [listed] = answer.json()
    changed_at = ClusterCredential.objects.get(cluster=cluster).changed_at
    assert listed["credential"]["set"] is True
    assert listed["credential"]["changed_at"].startswith(changed_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert STORED not in answer.content.decode()
    assert set(listed["credential"]) == {"set", "changed_at"}
