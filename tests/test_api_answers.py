"""The API names every problem of a refused request in one answer and writes nothing; a 201
says where its jobs are (`Location`), and every job in an answer links to its page (`url`)."""

from __future__ import annotations

import json

import pytest
from model_bakery import baker

from api.tokens import token_create
from jobs.models import Cluster, Job
from tests.helpers import TOKEN, row_counts

SET_ACTIONS = "/api/v1/set-actions"


@pytest.fixture
def auth(operator) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=operator, name='s').secret}"}


def post(client, url: str, body: object, auth: dict, key: str | None = "key-1"):
    headers = {**auth, **({"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {})}
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def test_every_problem_of_a_set_action_comes_in_one_answer_and_nothing_is_written(
    client, cluster, auth
):
    before = written()
    refused = post(
        client,
        SET_ACTIONS,
        {"action": "Explode", "cluster": "nowhere", "cids": ["C1", "not/a/cid"]},
        auth,
        key=None,
    )
    assert refused.status_code == 400, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    errors = refused.json()["errors"]
    assert set(errors) == {"Idempotency-Key", "cluster_token", "action", "cluster", "cids"}
    assert errors["cluster_token"] == ["This field is required."]
    assert errors["cluster"] == ["No active cluster nowhere."]
    assert errors["cids"] == ["1 invalid customer ID(s): 'not/a/cid' (item 2)."]
    assert written() == before


def test_a_missing_token_comes_with_the_services_problems_of_the_other_fields(
    client, cluster, auth
):
    before = written()
    refused = post(
        client, SET_ACTIONS, {"action": "T-Enable", "cluster": "nowhere", "cids": ["C1"]}, auth
    )
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "cluster_token": ["This field is required."],
        "cluster": ["No active cluster nowhere."],
    }
    assert written() == before


def test_a_field_refused_for_its_shape_is_named_once(client, cluster, auth):
    refused = post(client, SET_ACTIONS, {"action": 7, "cluster": cluster.name, "cids": []}, auth)
    assert refused.status_code == 400
    errors = refused.json()["errors"]
    assert set(errors) == {"action", "cids", "cluster_token"}
    assert len(errors["action"]) == len(errors["cids"]) == 1


def test_a_bad_header_comes_with_the_bodys_problems(client, cluster, auth):
    refused = post(
        client,
        SET_ACTIONS,
        {"action": "T-Enable", "cluster": cluster.name, "cids": ["C1"], "cluster_token": "a b"},
        auth,
        key="",
    )
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"Idempotency-Key", "cluster_token"}


def test_a_retry_names_the_header_and_the_body_together(client, operator, auth):
    job = baker.make(Job, user=operator, action=1, status="FAILED", cluster_url="http://x")
    before = written()
    refused = post(client, f"/api/v1/jobs/{job.pk}/retry", {"confirm_again": "maybe"}, auth, None)
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"Idempotency-Key", "cluster_token", "confirm_again"}
    assert written() == before


def test_a_201_says_where_its_job_is_and_the_job_links_to_its_page(client, cluster, auth, settings):
    settings.TMS_PUBLIC_URL = "https://tms.example.net"
    made = post(
        client,
        SET_ACTIONS,
        {"action": "T-Enable", "cluster": cluster.name, "cids": ["C1"], "cluster_token": TOKEN},
        auth,
    )
    assert made.status_code == 201
    [job] = made.json()["jobs"]
    assert made["Location"] == f"http://testserver/api/v1/jobs/{job['id']}"
    assert job["url"] == f"https://tms.example.net/jobs/{job['id']}/"
    assert client.get(made["Location"], **auth).json()["id"] == job["id"]
    [listed] = client.get("/api/v1/jobs", **auth).json()["results"]
    assert listed["url"] == job["url"]
    assert client.get(job["url"].removeprefix("https://tms.example.net")).status_code == 302


def test_a_201_of_several_jobs_says_where_their_batch_is(client, operator, auth, fake_cluster):
    split = baker.make(
        Cluster, name="split", base_url=fake_cluster.url, is_active=True, max_cids_per_request=1
    )
    made = post(
        client,
        SET_ACTIONS,
        {"action": "T-Enable", "cluster": split.name, "cids": ["C1", "C2"], "cluster_token": TOKEN},
        auth,
    )
    assert made.status_code == 201
    batch_id = made.json()["batch_id"]
    assert made["Location"] == f"http://testserver/api/v1/batches/{batch_id}"
    assert client.get(made["Location"], **auth).json()["batch_id"] == batch_id
    replay = post(
        client,
        SET_ACTIONS,
        {"action": "T-Enable", "cluster": split.name, "cids": ["C1", "C2"], "cluster_token": TOKEN},
        auth,
    )
    assert replay.status_code == 200
