"""The API's job reads: the list with its filters and cursor pages, one job (waiting for it to
end when asked), its customers, a batch and a customer's history, each only as far as the
caller may see in the UI."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from urllib.parse import quote, urlsplit

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from api.tokens import token_create
from jobs.models import Cluster, Job, JobCustomer
from jobs.services import job_cancel
from tests.admin_helpers import make_auditor, make_job
from tests.helpers import make_user, row_counts

URL = "http://127.0.0.1:9100"
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def bearer(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='script').secret}"}


def get(client, url: str, auth: dict, **params):
    response = client.get(url, params, **auth)
    body = json.loads(response.content)
    return response.status_code, body


def ids(body: dict) -> list[str]:
    return [job["id"] for job in body["results"]]


def job_at(user, minutes: float, **fields) -> Job:
    return make_job(user=user, created_at=T0 + dt.timedelta(minutes=minutes), **fields)


@pytest.fixture
def eu1(db):
    return baker.make(Cluster, name="eu1", base_url=URL)


@pytest.fixture
def op2(db):
    return make_user("op2", "Operators")


def test_a_job_shows_what_its_page_shows_without_the_cluster_url(client, operator, eu1, settings):
    settings.TMS_PUBLIC_URL = "https://tms.example.net"
    first = job_at(operator, 0, status="FAILED", cluster=eu1, cluster_url=URL, http_status=502)
    job = job_at(
        operator,
        1,
        action=Job.Action.T_ENABLE,
        cluster=eu1,
        cluster_url=URL,
        status="IN_PROGRESS",
        started_at=T0,
        customer_count=2,
        retry_of=first,
        batch_id=uuid.uuid4(),
        batch_seq=1,
        request_payload={"customers": ["C1", "C2"]},
    )
    status, body = get(client, f"/api/v1/jobs/{job.pk}", bearer(operator))
    assert status == 200
    assert body == {
        "id": str(job.pk),
        "url": f"https://tms.example.net/jobs/{job.pk}/",
        "status": "IN_PROGRESS",
        "shown_status": "RUNNING",
        "http_status": None,
        "error": "",
        "summary": "",
        "action": "T-Enable",
        "cluster": "eu1",
        "operator": "op1",
        "customer_count": 2,
        "created_at": "2026-03-01T12:01:00Z",
        "started_at": "2026-03-01T12:00:00Z",
        "finished_at": None,
        "retry_of": str(first.pk),
        "retries": [],
        "batch_id": str(job.batch_id),
        "batch_seq": 1,
        "waiting_for": "",
        "waiting_until": None,
        "cluster_answer": None,
    }
    status, body = get(client, f"/api/v1/jobs/{first.pk}", bearer(operator))
    assert (body["shown_status"], body["retries"]) == ("FAILED", [str(job.pk)])
    listed = client.get("/api/v1/jobs", **bearer(operator)).content.decode()
    assert URL not in listed and "127.0.0.1" not in listed


def test_another_operators_job_is_404_and_an_auditor_sees_it(client, operator, op2):
    job = job_at(op2, 0)
    for path in (f"/api/v1/jobs/{job.pk}", f"/api/v1/jobs/{job.pk}/customers"):
        response = client.get(path, **bearer(operator))
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(response.content)["status"] == 404
        assert client.get(path, **bearer(make_auditor(f"aud-{len(path)}"))).status_code == 200
    assert ids(get(client, "/api/v1/jobs", bearer(operator))[1]) == []


def test_unknown_and_malformed_ids_are_404_problems(client, operator):
    for path in (
        f"/api/v1/jobs/{uuid.uuid4()}",
        "/api/v1/jobs/not-a-uuid",
        "/api/v1/jobs/not-a-uuid/customers",
        f"/api/v1/batches/{uuid.uuid4()}",
        "/api/v1/batches/nope",
    ):
        response = client.get(path, **bearer(operator))
        assert (response.status_code, response["Content-Type"]) == (
            404,
            "application/problem+json",
        ), path


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs",
        f"/api/v1/jobs/{uuid.uuid4()}",
        f"/api/v1/jobs/{uuid.uuid4()}/customers",
        f"/api/v1/batches/{uuid.uuid4()}",
        "/api/v1/customers/C1/jobs",
    ],
)
def test_every_read_needs_a_token(client, db, path):
    response = client.get(path)
    assert (response.status_code, response["Content-Type"]) == (401, "application/problem+json")


def test_the_list_is_newest_first_in_cursor_pages_without_a_count(client, operator):
    # Three share a creation time: the id orders them, and no page repeats or skips one.
    jobs = [job_at(operator, 0) for _ in range(3)] + [job_at(operator, n) for n in (1, 2)]
    expected = [str(j.pk) for j in sorted(jobs, key=lambda j: (j.created_at, j.pk), reverse=True)]
    seen, url, params = [], "/api/v1/jobs", {"page_size": 2}
    auth = bearer(operator)
    while url:
        status, body = get(client, url, auth, **params)
        assert status == 200 and set(body) == {"next", "previous", "results"}
        seen += ids(body)
        url, params = (body["next"], {}) if body["next"] else (None, {})
    assert seen == expected
    assert len(ids(get(client, "/api/v1/jobs", auth)[1])) == 5


def test_a_page_of_jobs_costs_the_same_queries_whatever_its_size(client, operator):
    for n in range(20):
        job_at(operator, n, retry_of=job_at(operator, n - 0.5, status="FAILED"))
    auth = bearer(operator)
    get(client, "/api/v1/jobs", auth)  # The token's first use writes when it was used.
    counts = []
    for size in (2, 40):
        with CaptureQueriesContext(connection) as queries:
            assert len(ids(get(client, "/api/v1/jobs", auth, page_size=size)[1])) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # The page itself is read from jobs_job alone: joined with auth_user, SQLite sorts every
    # job before it keeps a page (api.serializers.api_jobs).
    page_sql = [q["sql"] for q in queries if "ORDER BY" in q["sql"] and "jobs_job" in q["sql"]]
    assert page_sql and not any("JOIN" in sql for sql in page_sql)


def test_each_filter_narrows_the_list(client, operator, op2, eu1):
    us2 = baker.make(Cluster, name="us2", base_url="http://127.0.0.1:9101")
    failed = job_at(operator, 0, status="FAILED", cluster=eu1, action=Job.Action.T_ENABLE)
    other = job_at(operator, 10, cluster=us2, action=Job.Action.PE_ENABLE)
    JobCustomer.objects.create(job=failed, cid="CUST-1")
    theirs = job_at(op2, 5, cluster=eu1)
    auth = bearer(operator)
    cases = {
        "status=FAILED": [failed],
        "action=t-enable": [failed],
        "action=2": [other],
        "cluster=us2": [other],
        "customer=CUST-1": [failed],
        "customer=NOBODY": [],
        "created_after=2026-03-01T12:05:00Z": [other],
        "created_before=2026-03-01T12:00:00.000001Z": [failed],
        "created_after=2026-03-01T13:00:00%2B01:00&created_before=2026-03-01T12:00:01Z": [failed],
    }
    for query, expected in cases.items():
        status, body = get(client, f"/api/v1/jobs?{query}", auth)
        assert (status, ids(body)) == (200, [str(j.pk) for j in expected]), query
    auditor = bearer(make_auditor())
    assert ids(get(client, "/api/v1/jobs?operator=op2", auditor)[1]) == [str(theirs.pk)]
    assert len(ids(get(client, "/api/v1/jobs?cluster=eu1", auditor)[1])) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=DONE", "status"),
        ("action=Explode", "action"),
        ("cluster=nowhere", "cluster"),
        ("operator=op1", "operator"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("created_after=2026-03-02T00:00Z&created_before=2026-03-01T00:00Z", "created_before"),
        ("customer=" + "C" * 65, "customer"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=ten", "page_size"),
        ("cursor=bm9wZQ", "cursor"),
    ],
)
def test_invalid_filters_are_400_problems_naming_the_field(client, operator, query, field):
    auth = bearer(operator)
    client.get("/api/v1/jobs", **auth)  # The token's first use records its use and rate.
    before = row_counts()
    response = client.get(f"/api/v1/jobs?{query}", **auth)
    assert (response.status_code, response["Content-Type"]) == (400, "application/problem+json")
    assert list(json.loads(response.content)["errors"]) == [field]
    assert row_counts() == before


def test_the_operator_filter_is_only_for_those_who_see_others_jobs(client, operator, op2):
    job_at(op2, 0)
    status, body = get(client, "/api/v1/jobs?operator=op2", bearer(operator))
    assert status == 400 and "own jobs" in body["errors"]["operator"][0]
    status, body = get(client, "/api/v1/jobs?operator=ghost", bearer(make_auditor()))
    assert status == 400 and "ghost" in body["errors"]["operator"][0]


def test_a_job_ended_already_answers_a_wait_at_once(client, operator):
    job = job_at(operator, 0, status="SUCCESS", finished_at=T0)
    started = time.monotonic()
    status, body = get(client, f"/api/v1/jobs/{job.pk}", bearer(operator), wait=30)
    assert (status, body["status"]) == (200, "SUCCESS")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("wait", ["0", "-1", "60.5", "soon"])
def test_a_wait_outside_0_to_60_seconds_is_a_400(client, operator, wait):
    job = job_at(operator, 0, status="IN_PROGRESS")
    status, body = get(client, f"/api/v1/jobs/{job.pk}", bearer(operator), wait=wait)
    assert status == 400 and list(body["errors"]) == ["wait"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_wait_answers_as_soon_as_the_job_ends(client):
    operator = make_user("op1", "Operators")
    job = make_job(user=operator, status="IN_PROGRESS")
    auth = bearer(operator)

    def cancel() -> None:
        try:
            job_cancel(job_ids=[job.pk], user=operator)
        finally:
            connections.close_all()

    # The job ends a moment into the wait; the answer must come then, not after 30 s.
    canceller = threading.Timer(0.4, cancel)
    started = time.monotonic()
    canceller.start()
    status, body = get(client, f"/api/v1/jobs/{job.pk}", auth, wait=30)
    elapsed = time.monotonic() - started
    canceller.join()
    assert (status, body["status"], body["shown_status"]) == (200, "CANCELLED", "CANCELLED")
    assert 0.4 <= elapsed < 5


def test_a_jobs_customers_in_pages_and_only_the_failed_ones(client, operator):
    job = job_at(operator, 0, status="FAILED")
    for n in range(5):
        outcome = JobCustomer.Outcome.FAILED if n % 2 else JobCustomer.Outcome.SUCCESS
        JobCustomer.objects.create(job=job, cid=f"C{n}", outcome=outcome, message=f"m{n}")
    auth = bearer(operator)
    url = f"/api/v1/jobs/{job.pk}/customers"
    status, body = get(client, url, auth, page_size=3)
    assert status == 200
    assert body["results"][0] == {"cid": "C0", "outcome": "SUCCESS", "message": "m0"}
    rest = get(client, body["next"], auth)[1]["results"]
    assert [c["cid"] for c in body["results"] + rest] == ["C0", "C1", "C2", "C3", "C4"]
    failed = get(client, url, auth, failed="true")[1]["results"]
    assert [c["cid"] for c in failed] == ["C1", "C3"]
    status, body = get(client, url, auth, failed="maybe")
    assert status == 400 and list(body["errors"]) == ["failed"]


def test_a_batch_shows_its_visible_jobs_and_counts(client, operator, op2):
    batch = uuid.uuid4()
    mine = [
        job_at(operator, 0, batch_id=batch, batch_seq=2, status="FAILED"),
        job_at(operator, 0, batch_id=batch, batch_seq=1, status="IN_PROGRESS"),
    ]
    theirs = job_at(op2, 0, batch_id=batch, batch_seq=3)
    status, body = get(client, f"/api/v1/batches/{batch}", bearer(operator))
    assert status == 200
    assert ids({"results": body["jobs"]}) == [str(mine[1].pk), str(mine[0].pk)]
    assert body["counts"] == {
        "IN_PROGRESS": 1,
        "SUCCESS": 0,
        "FAILED": 1,
        "UNKNOWN": 0,
        "CANCELLED": 0,
        "PENDING_APPROVAL": 0,
        "DENIED": 0,
        "EXPIRED": 0,
    }
    assert body["jobs"][0]["shown_status"] == "QUEUED"
    auditor = get(client, f"/api/v1/batches/{batch}", bearer(make_auditor()))[1]
    assert auditor["counts"]["SUCCESS"] == 1 and len(auditor["jobs"]) == 3
    other = uuid.uuid4()
    theirs.batch_id = other
    theirs.save()
    assert client.get(f"/api/v1/batches/{other}", **bearer(operator)).status_code == 404


def test_a_customers_history_has_its_outcome_in_each_visible_job(client, operator, op2):
    cid = "LEG.ACY?#1 %"
    old = job_at(operator, 0, status="FAILED")
    new = job_at(operator, 5)
    theirs = job_at(op2, 3)
    untouched = job_at(operator, 9)
    JobCustomer.objects.create(job=old, cid=cid, outcome="FAILED", message="no such line")
    JobCustomer.objects.create(job=new, cid=cid)
    JobCustomer.objects.create(job=theirs, cid=cid)
    JobCustomer.objects.create(job=untouched, cid="OTHER")
    url = f"/api/v1/customers/{quote(cid, safe='')}/jobs"
    status, body = get(client, url, bearer(operator))
    assert status == 200
    assert ids(body) == [str(new.pk), str(old.pk)]
    assert [j["customer"] for j in body["results"]] == [
        {"cid": cid, "outcome": None, "message": None},
        {"cid": cid, "outcome": "FAILED", "message": "no such line"},
    ]
    status, body = get(client, url, bearer(make_auditor()), page_size=1)
    assert ids(body) == [str(new.pk)] and urlsplit(body["next"]).path == url
    assert ids(get(client, "/api/v1/customers/NOBODY/jobs", bearer(operator))[1]) == []
