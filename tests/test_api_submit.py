"""POST /api/v1/set-actions, /jobs/{id}/retry and /jobs/{id}/cancel: the web form's rules over
the same services, with idempotency keys, problem details and the cluster token kept secret."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from jobs.models import InFlightCustomer, Job
from jobs.services import job_submit
from tests.helpers import TOKEN, database_text, make_user, row_counts, run_concurrently

SET_ACTIONS = "/api/v1/set-actions"


@pytest.fixture
def secret(operator) -> str:
    return token_create(user=operator, name="pipeline").secret


def post(client, url, body, secret, key="key-1"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


def body(target, **overrides) -> dict:
    return {
        "action": "T-Enable",
        "cluster": target.name,
        "cids": ["C1", "C2"],
        "cluster_token": TOKEN,
    } | overrides


def test_a_set_action_makes_its_job_and_the_same_key_replays_it(client, cluster, secret):
    created = post(client, SET_ACTIONS, body(cluster), secret)
    assert created.status_code == 201, created.content
    [job] = created.json()["jobs"]
    assert created.json()["batch_id"] is None
    assert Job.objects.get(pk=job["id"]).customer_count == 2

    before = written()
    again = post(client, SET_ACTIONS, body(cluster), secret)
    assert (again.status_code, again["Idempotent-Replayed"]) == (200, "true")
    assert again.json() == created.json()
    other = post(client, SET_ACTIONS, body(cluster, cids=["C3"]), secret)
    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert written() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cids": ["not/a/cid"]}, "cids"),
        ({"cids": []}, "cids"),
        ({"cluster": "nowhere"}, "cluster"),
        ({"action": "Explode"}, "action"),
        ({"cluster_token": "two words"}, "cluster_token"),
        ({"cluster_token": 42}, "cluster_token"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    client, cluster, secret, change, field
):
    before = written()
    response = post(client, SET_ACTIONS, body(cluster, **change), secret)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]
    assert written() == before


def test_no_idempotency_key_is_400(client, cluster, secret):
    before = written()
    response = post(client, SET_ACTIONS, body(cluster), secret, key="")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert written() == before


def test_busy_customers_are_409_naming_the_jobs_the_caller_may_see(
    client, operator, cluster, secret
):
    [mine] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    other = make_user("op2", "Operators")
    job_submit(user=other, action=1, cluster=cluster, cids="C2", token=TOKEN)
    before = written()
    response = post(client, SET_ACTIONS, body(cluster), secret)
    assert response.status_code == 409
    assert response.json()["jobs"] == [str(mine.pk)]
    assert written() == before


def test_read_only_tokens_and_users_who_may_not_run_are_refused(client, operator, cluster):
    read_only = token_create(user=operator, name="ro", read_only=True).secret
    auditor = token_create(user=make_user("aud", "Auditors"), name="a").secret
    before = written()
    assert post(client, SET_ACTIONS, body(cluster), read_only).status_code == 403
    assert post(client, SET_ACTIONS, body(cluster), auditor).status_code == 403
    assert written() == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sixteen_concurrent_requests_with_one_key_make_one_set_of_jobs(operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    secret = token_create(user=operator, name="race").secret
    results, errors = run_concurrently(
        lambda n: post(Client(), SET_ACTIONS, body(cluster), secret, key="one-key")
    )
    results += run_concurrently(
        lambda n: post(Client(), SET_ACTIONS, body(cluster), secret, key="one-key")
    )[0]
    assert errors == []
    assert len(results) == 16
    assert sorted(r.status_code for r in results) == [200] * 15 + [201]
    assert len({r.content for r in results}) == 1
    assert Job.objects.count() == 2


def _ended(job: Job, status: str) -> None:
    Job.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now())
    InFlightCustomer.objects.filter(job=job).delete()


def test_retry_makes_a_new_job_and_unknown_needs_a_confirmation(client, operator, cluster, secret):
    [failed] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    _ended(failed, "UNKNOWN")
    url = f"/api/v1/jobs/{failed.pk}/retry"
    before = written()
    refused = post(client, url, {"cluster_token": TOKEN}, secret)
    assert refused.status_code == 400
    assert "confirm_unknown" in refused.json()["errors"]
    assert written() == before
    retried = post(client, url, {"cluster_token": TOKEN, "confirm_unknown": True}, secret)
    assert retried.status_code == 201
    assert retried.json()["jobs"][0]["retry_of"] == str(failed.pk)
    hidden = make_user("op2", "Operators")
    [theirs] = job_submit(user=hidden, action=1, cluster=cluster, cids="C9", token=TOKEN)
    assert post(client, f"/api/v1/jobs/{theirs.pk}/retry", {}, secret).status_code == 404


def test_cancel_a_queued_job_or_409_when_a_worker_has_it(client, operator, cluster, secret):
    [queued, started] = [
        job_submit(user=operator, action=1, cluster=cluster, cids=cid, token=TOKEN)[0]
        for cid in ("C1", "C2")
    ]
    Job.objects.filter(pk=started.pk).update(started_at=timezone.now())
    cancelled = post(client, f"/api/v1/jobs/{queued.pk}/cancel", {}, secret, key="")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "CANCELLED")
    refused = post(client, f"/api/v1/jobs/{started.pk}/cancel", {}, secret, key="")
    assert refused.status_code == 409
    assert Job.objects.get(pk=started.pk).status == "IN_PROGRESS"


def test_the_cluster_token_is_found_nowhere_after_api_submits(client, cluster, secret, caplog):
    caplog.set_level(logging.DEBUG)
    answers = [
        post(client, SET_ACTIONS, body(cluster), secret),
        post(client, SET_ACTIONS, body(cluster, cids=["bad/cid"]), secret, key="k2"),
        post(client, SET_ACTIONS, body(cluster, cids=["C9"]), secret),
        post(client, SET_ACTIONS, body(cluster, cluster="nowhere"), secret, key="k3"),
    ]
    assert [a.status_code for a in answers] == [201, 400, 422, 400]
    assert all(TOKEN not in a.content.decode() for a in answers)
    assert TOKEN not in caplog.text
    assert TOKEN not in database_text()


def test_a_new_jobs_answer_asks_nothing_of_retries_and_a_replay_shows_them(
    client, cluster, secret, operator
):
    with CaptureQueriesContext(connection) as queries:
        created = post(client, SET_ACTIONS, body(cluster), secret)
    [job] = created.json()["jobs"]
    assert job["retries"] == []
    assert not [q for q in queries if re.search(r'WHERE .*"retry_of_id" (=|IN)', q["sql"])]

    retry = baker.make(Job, user=operator, cluster=cluster, retry_of_id=job["id"])
    again = post(client, SET_ACTIONS, body(cluster), secret)
    assert again.status_code == 200
    assert again.json()["jobs"][0]["retries"] == [str(retry.pk)]
