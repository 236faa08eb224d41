"""GET /api/v1/audit: the audit log for those who may read it in the admin, filtered, newest
first, in cursor pages."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from api.tokens import token_create
from audit.models import AuditEntry
from audit.services import audit_bulk_append
from tests.admin_helpers import make_auditor

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def bearer(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='script').secret}"}


def get(client, auth: dict, **params):
    response = client.get("/api/v1/audit", params, **auth)
    return response.status_code, json.loads(response.content)


def events(body: dict) -> list[tuple[str, str]]:
    return [(entry["event"], entry["actor"]) for entry in body["results"]]


@pytest.fixture
def job_id(operator):
    """A job's three entries, a minute apart from T0, besides the tokens' own (now)."""
    job = uuid.uuid4()
    rows = [
        ("set_action.requested", operator, "op1", job),
        ("job.failed", None, "", job),
        ("legacy.t-enable", None, "olduser", None),
    ]
    for minute, (event, actor, username, job_id) in enumerate(rows):
        audit_bulk_append(
            [
                AuditEntry(
                    event=event,
                    actor=actor,
                    actor_username=username,
                    job_id=job_id,
                    created_at=T0 + dt.timedelta(minutes=minute),
                )
            ]
        )
    return job


def test_operators_may_not_read_the_audit_log(client, operator):
    response = client.get("/api/v1/audit", **bearer(operator))
    assert (response.status_code, response["Content-Type"]) == (403, "application/problem+json")
    assert "audit.view_auditentry" in json.loads(response.content)["detail"]
    response = client.get("/api/v1/audit")
    assert (response.status_code, response["Content-Type"]) == (401, "application/problem+json")


def test_an_auditor_reads_it_newest_first_in_pages(client, job_id):
    auth = bearer(make_auditor())
    status, body = get(client, auth, before="2026-03-02T00:00:00Z", page_size=2)
    assert status == 200 and set(body) == {"next", "previous", "results"}
    assert events(body) == [("legacy.t-enable", "olduser"), ("job.failed", "")]
    assert body["results"][1] == {
        "id": body["results"][1]["id"],
        "created_at": "2026-03-01T12:01:00Z",
        "event": "job.failed",
        "event_label": "Job failed",
        "actor": "",
        "job_id": str(job_id),
        "ip_address": None,
        "details": {},
    }
    rest = json.loads(client.get(body["next"], **auth).content)
    assert events(rest) == [("set_action.requested", "op1")] and rest["next"] is None


def test_each_audit_filter_narrows_it(client, job_id):
    auth = bearer(make_auditor())
    cases = {
        "event": ("job.failed", [("job.failed", "")]),
        "actor": ("olduser", [("legacy.t-enable", "olduser")]),
        "job": (str(job_id), [("job.failed", ""), ("set_action.requested", "op1")]),
        "before": ("2026-03-01T12:01:00Z", [("set_action.requested", "op1")]),
    }
    for name, (value, expected) in cases.items():
        status, body = get(client, auth, **{name: value})
        assert (status, events(body)) == (200, expected), name
    # After T0 + 2 min: the legacy entry and the token's creation now.
    assert [e for e, _ in events(get(client, auth, after="2026-03-01T12:02:00Z")[1])] == [
        "api_token.created",
        "legacy.t-enable",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("job", "12345"), ("after", "noon"), ("before", "2026-02-30"), ("event", "e" * 65)],
)
def test_invalid_audit_filters_are_400_problems(client, db, name, value):
    status, body = get(client, bearer(make_auditor()), **{name: value})
    assert status == 400 and list(body["errors"]) == [name]
