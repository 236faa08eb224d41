"""The OpenAPI description of the read endpoints: generated without a warning, each with its
parameters and its problem responses."""

from __future__ import annotations

import io
import json

from django.core.management import call_command


def test_the_schema_validates_without_warnings(db):
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())


def test_each_read_endpoint_describes_its_parameters_and_problems(client):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    expected = {
        "/api/v1/jobs": ({"status", "action", "cluster", "operator", "customer"}, {400, 401}),
        "/api/v1/jobs/{id}": ({"id", "wait"}, {400, 401, 404}),
        "/api/v1/jobs/{id}/customers": ({"id", "failed", "cursor"}, {400, 401, 404}),
        "/api/v1/batches/{id}": ({"id"}, {401, 404}),
        "/api/v1/customers/{cid}/jobs": ({"cid", "cursor", "page_size"}, {400, 401}),
        "/api/v1/audit": ({"event", "actor", "job", "after", "before"}, {400, 401, 403}),
    }
    for path, (parameters, problems) in expected.items():
        operation = schema["paths"][path]["get"]
        assert parameters <= {p["name"] for p in operation["parameters"]}, path
        for code in problems:
            content = operation["responses"][str(code)]["content"]
            problem = content["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}, (path, code)
    # A wait beyond the bounds on waits (api.waits) is refused with a 429 saying when to retry.
    busy = schema["paths"]["/api/v1/jobs/{id}"]["get"]["responses"]["429"]
    assert busy["headers"]["Retry-After"]["required"] is True
    assert "TMS_API_WAITS_PER_TOKEN" in busy["description"]
    assert "TMS_API_WAITS_PER_PROCESS" in busy["description"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert "cluster_url" not in job and "request_payload" not in job
