"""Schemathesis runs requests generated from the API's OpenAPI description against the app
itself, with every check it has: no answer may be a 5xx or contradict the description (its
status codes, content types, headers and bodies); a request the description allows is
accepted (positive data acceptance) and one it forbids is refused (negative data rejection);
a method a path does not serve is a 405 with Allow; a missing required header and a missing
token are refused.

What no description can say is left to a client's knowledge, in the requests the description
allows (positive ones): the names of things that exist (the active cluster a Set Action or a
run grant or an approval rule names, the user an `operator` filter or a run grant names, a
run grant's group, an approval rule's approvers' group), a
cursor (one a page's link handed out: left out), a new
Idempotency-Key for each submit, and that `created_before` is after `created_after` (the last
two said in words). Everything else about them is
generated."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils.dateparse import parse_datetime
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from api.tokens import token_create
from jobs.services.input import MAX_KEY_LENGTH
from schedules.services import saved_set_action_create
from tests.helpers import make_user
from tmsdash.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", application)


@pytest.fixture
def in_process():
    """Requests served in this thread keep the test's database connection, as with Django's
    test client (a request's end would otherwise close it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def user(db):
    """An operator who may run Set Actions and, as an auditor, read every job and the audit
    log, and who manages run grants and approval rules: every operation can answer 200."""
    user = make_user("op1", "Operators")
    user.groups.add(*make_user("aud1", "Auditors").groups.all())
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                f"{verb}_{model}"
                for verb in ("view", "add", "delete")
                for model in ("rungrant", "approvalrule")
            ]
        )
    )
    return user


@pytest.fixture
def secret(in_process, user, cluster, settings) -> str:
    """A full token of that user, with limits the run cannot reach."""
    settings.TMS_API_READS_PER_MINUTE = 1_000_000
    settings.TMS_API_SUBMITS_PER_MINUTE = 1_000_000
    return token_create(user=user, name="schemathesis").secret


def with_token(case, secret: str) -> None:
    """The token in place of a generated bearer credential. A request generated without one,
    or with a malformed one, keeps what it has: it must be refused (401)."""
    headers = case.headers or {}
    if headers.get("Authorization", "").startswith("Bearer "):
        headers["Authorization"] = f"Bearer {secret}"


@pytest.fixture
def saved(user, cluster):
    return saved_set_action_create(user=user, name="saved", action=1, cluster=cluster, cids="C1")


def as_a_schedule_client_knows(body: dict, saved: int) -> None:
    """What a client knows of saved Set Actions and schedules (see the module docstring)."""
    if "saved_set_action" in body:
        body["saved_set_action"] = saved
        if "rrule" in body:
            body.pop("run_at", None)
            body["rrule"] = "FREQ=DAILY;BYHOUR=6;BYMINUTE=0"
        else:
            body["run_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        body.pop("start", None)
        if "timezone" in body:
            body["timezone"] = "Europe/Berlin"
    elif "cids" in body and "name" in body:
        body["name"] = f"saved {uuid.uuid4().hex[:8]}"


def as_a_client_knows(case, *, cluster: str, operator: str, saved: int) -> None:
    """A request the description allows, with what a client knows besides it."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    if isinstance(case.body, dict):
        as_a_schedule_client_knows(case.body, saved)
    if isinstance(case.body, dict):
        for name, value in (
            ("cluster", cluster),
            ("user", operator),
            ("group", "Operators"),
            ("approvers_group", "Approvers"),
        ):
            # null (any cluster) is left as generated.
            if case.body.get(name) is not None:
                case.body[name] = value
    query = case.query or {}
    for name, value in (("cluster", cluster), ("operator", operator)):
        if query.get(name):
            query[name] = value
    query.pop("cursor", None)
    headers = case.headers or {}
    if "Idempotency-Key" in headers:
        # A new key for each submit, as the description asks: a generated one made unique.
        key = uuid.uuid4().hex[:8] + headers["Idempotency-Key"]
        headers["Idempotency-Key"] = key[:MAX_KEY_LENGTH]
    if "after" in query:
        query["after"] = dt.datetime.now(dt.UTC).isoformat()
    after, before = query.get("created_after"), query.get("created_before")
    if after and before and parse_datetime(after) >= parse_datetime(before):
        del query["created_before"]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_description(case, secret, user, cluster, saved):
    with_token(case, secret)
    as_a_client_knows(case, cluster=cluster.name, operator=user.username, saved=saved.pk)
    case.call_and_validate()
