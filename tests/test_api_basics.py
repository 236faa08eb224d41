"""The API's frame: its OpenAPI description and docs served from the dashboard, a read-only
token's limits, errors as problem details, the clusters list."""

from __future__ import annotations

import json
import re

from api.tokens import token_create
from jobs.models import Cluster
from tmsdash.views import server_error

CLUSTERS = "/api/v1/clusters"


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_schema_is_openapi_3_and_describes_the_endpoints(client):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/clusters" in schema["paths"]


def test_the_docs_load_nothing_from_the_internet(client):
    page = client.get("/api/v1/docs").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(not re.match(r"(https?:)?//", source) for source in sources)
    assert "<script>" not in page, "no inline script: the CSP refuses it"


def test_a_read_only_token_reads_but_cannot_write(client, operator):
    read_only = token_create(user=operator, name="monitor", read_only=True).secret
    full = token_create(user=operator, name="pipeline").secret
    assert client.get(CLUSTERS, **bearer(read_only)).status_code == 200
    refused = client.post(CLUSTERS, {}, content_type="application/json", **bearer(read_only))
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert json.loads(refused.content)["detail"].startswith("This token is read-only")
    # The same request with a full token reaches the view, which takes no POST.
    assert (
        client.post(CLUSTERS, {}, content_type="application/json", **bearer(full)).status_code
        == 405
    )


def test_clusters_are_the_active_ones_by_name_without_urls(client, operator, cluster):
    Cluster.objects.create(name="old", base_url="http://127.0.0.1:9/", is_active=False)
    secret = token_create(user=operator, name="x").secret
    body = json.loads(client.get(CLUSTERS, **bearer(secret)).content)
    assert body == [
        {
            "name": cluster.name,
            "max_cids_per_request": cluster.max_cids_per_request,
            "max_concurrent_calls": cluster.max_concurrent_calls,
            "credential": {"set": False, "changed_at": None},
        }
    ]


def test_errors_outside_the_views_are_problems_under_the_api_and_pages_elsewhere(client):
    missing = client.get("/api/v1/nothing-here")
    assert (missing.status_code, missing["Content-Type"]) == (404, "application/problem+json")
    malformed = client.get("/api/v1/clusters?q=%00")
    assert (malformed.status_code, malformed["Content-Type"]) == (400, "application/problem+json")
    assert client.get("/nothing-here").content.decode().lstrip().startswith("<!doctype html>")


def test_a_server_error_under_the_api_is_a_problem(rf):
    answer = server_error(rf.get("/api/v1/jobs"))
    assert (answer.status_code, answer["Content-Type"]) == (500, "application/problem+json")
    assert json.loads(answer.content)["title"] == "Internal Server Error"
    assert server_error(rf.get("/jobs/"))["Content-Type"].startswith("text/html")
