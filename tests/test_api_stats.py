"""GET /api/v1/stats: the Overview's numbers, everyone's for a token whose user sees every job,
its user's own for any other; bad parameters are 400 problems naming them, writing nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from api.views.stats import StatsSerializer, stats_data
from jobs.models import Cluster
from jobs.services import (
    OUTCOMES,
    PERIODS,
    EndedJob,
    count_jobs_added,
    job_cancel,
    job_submit,
    overview_stats,
)
from tests.admin_helpers import make_auditor
from tests.helpers import TOKEN, make_user, row_counts

MS = dt.timedelta(milliseconds=1)


def bearer(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='script').secret}"}


def get(client, auth: dict, **params) -> tuple[int, dict]:
    response = client.get("/api/v1/stats", params, **auth)
    return response.status_code, json.loads(response.content)


def cancel_one(user, cluster, cid: str, action: int = 1) -> None:
    [job] = job_submit(user=user, action=action, cluster=cluster, cids=cid, token=TOKEN)
    assert job_cancel(job_ids=[job.pk], user=user).cancelled == [job.pk]


def totals(body: dict) -> dict[str, int]:
    return {o: sum(b["counts"][o] for b in body["bins"]) for o in OUTCOMES}


@pytest.fixture
def ended(operator, cluster):
    other = make_user("op2", "Operators")
    cancel_one(operator, cluster, "C1")
    cancel_one(other, cluster, "C2", action=2)
    return other


def test_an_auditor_gets_everyones_numbers_and_an_operator_their_own(
    client, operator, cluster, ended
):
    status, body = get(client, bearer(make_auditor()))
    assert status == 200
    assert body["scope"] == "all"
    assert (body["period"], body["bin_seconds"], len(body["bins"])) == ("24h", 3600, 24)
    assert totals(body)["CANCELLED"] == 2
    assert list(body["bins"][-1]["counts"]) == OUTCOMES
    assert body["bins"][-1]["end"] == body["end"]
    assert body["end"].endswith(("Z", "+00:00"))
    [failures] = body["failures"]
    assert failures["cluster"] == "eu1"
    assert (failures["sent"], failures["rate"], failures["rate_last_hour"]) == (0, None, None)
    assert body["call_times"] == []
    assert body["version"]

    status, body = get(client, bearer(operator))
    assert (status, body["scope"], totals(body)["CANCELLED"]) == (200, "own", 1)


def test_filters_by_period_cluster_and_action(client, cluster, ended):
    auth = bearer(make_auditor())
    status, body = get(client, auth, period="7d", cluster="eu1", action="pe-enable")
    assert (status, body["bin_seconds"], len(body["bins"])) == (200, 6 * 3600, 28)
    assert totals(body)["CANCELLED"] == 1
    status, body = get(client, auth, period="30d", action="1")
    assert (status, len(body["bins"]), totals(body)["CANCELLED"]) == (200, 30, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "1h"}, "period"),
        ({"cluster": "nowhere"}, "cluster"),
        ({"action": "Reboot"}, "action"),
        ({"action": "9"}, "action"),
    ],
)
def test_bad_parameters_are_400_problems_naming_them_and_write_nothing(
    client, cluster, query, field
):
    auth = bearer(make_auditor())
    client.get("/api/v1/stats", **auth)  # The token's first use records its use and rate.
    before = row_counts()
    response = client.get("/api/v1/stats", query, **auth)
    assert (response.status_code, response["Content-Type"]) == (400, "application/problem+json")
    assert list(json.loads(response.content)["errors"]) == [field]
    assert row_counts() == before


def test_without_a_token_it_is_refused(client, db):
    response = client.get("/api/v1/stats")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_read_only_token_may_read_it_within_the_read_budget(client, operator, settings):
    settings.TMS_API_READS_PER_MINUTE = 2
    secret = token_create(user=operator, name="ro", read_only=True).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert [get(client, auth)[0] for _ in range(3)] == [200, 200, 429]


def test_the_schema_describes_it(client, db):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"period", "cluster", "action"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    stats = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    assert set(stats) == {
        "scope",
        "period",
        "bin_seconds",
        "start",
        "end",
        "bins",
        "failures",
        "call_times",
        "version",
    }
    counts = schema["components"]["schemas"]["OutcomeCounts"]["properties"]
    assert list(counts) == OUTCOMES


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_the_answer_is_what_its_serializer_would_write(operator, cluster, zone):
    """The view writes the numbers directly; the schema's serializer stays their description."""
    other = baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9")
    now = timezone.now()
    count_jobs_added(
        [
            EndedJob("SUCCESS", operator.pk, cluster.pk, 1, now, now - 180 * MS, now),
            EndedJob("FAILED", operator.pk, cluster.pk, 2, now, now - 2_000 * MS, now),
            EndedJob("CANCELLED", operator.pk, other.pk, 1, now, None, now),
        ]
    )
    for period in PERIODS:
        overview = overview_stats(period=period)
        assert overview.failures and overview.call_times
        with timezone.override(zone):
            expected = StatsSerializer({"scope": "own", **overview.__dict__}).data
            written = stats_data(overview, scope="own")
        assert written == expected
        assert json.dumps(written) == json.dumps(expected)
