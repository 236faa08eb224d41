"""Schemathesis runs requests generated from the API's OpenAPI description against the app
itself: no answer may be a 5xx, and none may contradict the description (its status codes,
content types, headers and bodies). Whether the description rejects every request the app
rejects is not checked: the app's rules (customer ID pattern, active clusters, visibility)
are richer than a schema says."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.tokens import token_create
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
def auth(in_process, operator, cluster, settings):
    """A full token of an operator who may run Set Actions on an active cluster, with limits
    the run cannot reach."""
    settings.TMS_API_READS_PER_MINUTE = 1_000_000
    settings.TMS_API_SUBMITS_PER_MINUTE = 1_000_000
    return {"Authorization": f"Bearer {token_create(user=operator, name='schemathesis').secret}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_description(case, auth):
    case.call_and_validate(
        headers=auth,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_headers_conformance,
            checks.response_schema_conformance,
        ],
    )
