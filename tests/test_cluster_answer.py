"""A job keeps the cluster's answer as received (status, content type, the body's first 4 KB,
the token redacted), and its page and the API show it."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from urllib.parse import quote

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from model_bakery import baker

from api.tokens import token_create
from jobs.models import Cluster, Job
from jobs.services import job_reap_stale, job_run, job_submit
from jobs.upstream import MAX_ANSWER_BYTES
from tests.helpers import TOKEN, database_text, wait_until
from tests.servers import LoopbackServer, answer, held

SCRIPT_PAGE = (
    "<html><body><h1>Maintenance</h1>\n"
    "<script>alert('cluster')</script>\n"
    f"<p>Your token {TOKEN} was refused</p></body></html>"
)


@pytest.fixture
def run_against(operator, run_queued_tasks):
    """Submit and run one job against a loopback cluster answering with `respond`."""

    def run(respond, cids: str = "C1") -> Job:
        with LoopbackServer(respond) as server:
            cluster = baker.make(Cluster, name="answering", base_url=server.url, is_active=True)
            [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
            run_queued_tasks()
        job.refresh_from_db()
        return job

    return run


def test_an_html_answer_is_kept_and_shown_as_text_with_the_token_redacted(
    run_against, client, operator
):
    job = run_against(answer(200, SCRIPT_PAGE, content_type="text/html; charset=utf-8"))
    assert job.status == "FAILED"
    assert job.error_message == "Unrecognised response from cluster (HTTP 200, text/html)"
    assert job.cluster_answer_status == 200
    assert job.cluster_answer_content_type == "text/html; charset=utf-8"
    assert job.cluster_answer_body == SCRIPT_PAGE.replace(TOKEN, "[redacted]")
    assert not job.cluster_answer_truncated
    assert TOKEN not in database_text()

    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert '<dd id="cluster-answer-status">200</dd>' in page
    assert "text/html; charset=utf-8" in page
    assert "&lt;script&gt;alert(&#x27;cluster&#x27;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "Your token [redacted] was refused" in page
    assert TOKEN not in page
    assert "(truncated at 4 KB)" not in page


def test_a_token_echoed_encoded_is_redacted_and_the_lines_are_kept(run_against):
    echoed = "\n".join(
        [
            "line one",
            f"  upper: {TOKEN.upper()}",
            f"\tquoted: {quote(TOKEN, safe='')}",
            f"base64: {base64.b64encode(TOKEN.encode()).decode()}",
            "nul:\x00.",
        ]
    )
    job = run_against(answer(502, echoed, content_type="text/plain"))
    assert job.status == "FAILED"
    assert job.cluster_answer_body == (
        "line one\n  upper: [redacted]\n\tquoted: [redacted]\nbase64: [redacted]\nnul:\ufffd."
    )
    assert TOKEN not in database_text().upper()


def test_a_long_body_keeps_its_first_4_kb_and_no_piece_of_a_token_across_the_cut(
    run_against, client, operator
):
    # The token straddles the 4 KB cut: redacted before the cut, no piece of it stays.
    body = "é" * 1000 + "x" * (MAX_ANSWER_BYTES - 2000 - 5) + TOKEN + "y" * 100_000
    job = run_against(answer(503, body, content_type="text/plain"))
    kept = job.cluster_answer_body
    assert job.cluster_answer_truncated
    assert len(kept.encode()) <= MAX_ANSWER_BYTES
    assert kept.startswith("é" * 1000 + "x")
    assert kept.endswith("[reda")
    assert TOKEN[:6] not in kept
    assert TOKEN[:6] not in database_text()

    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "(truncated at 4 KB)" in page
    assert '<dd id="cluster-answer-status">503</dd>' in page


def test_a_body_over_1_mib_keeps_its_start(run, fake_cluster):
    job = run("HUGE1")
    assert job.status == "FAILED"
    assert (job.cluster_answer_status, job.cluster_answer_content_type) == (200, "application/json")
    assert job.cluster_answer_truncated
    assert job.cluster_answer_body.startswith('{"success": true')
    assert len(job.cluster_answer_body.encode()) == MAX_ANSWER_BYTES


def test_the_fake_clusters_html_page_is_kept(run, fake_cluster, client, operator):
    job = run("HTML1")
    assert (job.cluster_answer_status, job.cluster_answer_body) == (
        200,
        "<html><body>Maintenance</body></html>",
    )
    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "&lt;html&gt;&lt;body&gt;Maintenance&lt;/body&gt;&lt;/html&gt;" in page


def test_a_success_keeps_its_answer_too(run, fake_cluster):
    job = run("C1")
    assert job.status == "SUCCESS"
    assert job.cluster_answer_status == 200
    assert '"success": true' in job.cluster_answer_body


def test_a_redirect_keeps_its_status_and_type_without_a_body(run, fake_cluster, client, operator):
    job = run("REDIRECT1")
    assert (job.cluster_answer_status, job.cluster_answer_content_type) == (302, "text/plain")
    assert (job.cluster_answer_body, job.cluster_answer_truncated) == ("", False)
    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'id="cluster-answer-no-body"' in page


@pytest.mark.parametrize("cids", ["SLOW1", "C1"])
def test_no_answer_no_section(run, fake_cluster, client, operator, cids, settings):
    """A timeout keeps nothing; a job that has not run shows no section either."""
    if cids == "C1":
        [job] = job_submit(
            user=operator, action=1, cluster=Cluster.objects.get(), cids=cids, token=TOKEN
        )
    else:
        job = run(cids)
        assert job.error_message.startswith("Request timeout")
    assert job.cluster_answer_status is None
    client.force_login(operator)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "The cluster's answer" not in page
    # A queued job's page waits for it, hidden, to be refreshed when the job ends.
    assert ('id="cluster-answer" hidden' in page) == (cids == "C1")


@pytest.fixture
def run(operator, cluster, run_queued_tasks):
    def run(cids: str) -> Job:
        [job] = job_submit(user=operator, action=1, cluster=cluster, cids=cids, token=TOKEN)
        run_queued_tasks()
        job.refresh_from_db()
        return job

    return run


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_answer_after_the_job_was_reaped_is_kept_on_the_unknown_job(operator):
    release = threading.Event()
    page = answer(200, SCRIPT_PAGE, content_type="text/html")
    with LoopbackServer(held(release, page)) as server:
        cluster = baker.make(Cluster, name="held", base_url=server.url, timeout_seconds=30)
        [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
        worker = threading.Thread(target=lambda: (job_run(job_id=job.pk), connections.close_all()))
        worker.start()
        try:
            wait_until(lambda: len(server.received) == 1)
            report = job_reap_stale(now=timezone.now() + dt.timedelta(hours=1))
            assert report.unknown == [job.pk]
        finally:
            release.set()
            worker.join()
    job.refresh_from_db()
    assert job.status == "UNKNOWN"
    assert (job.cluster_answer_status, job.cluster_answer_content_type) == (200, "text/html")
    assert job.cluster_answer_body == SCRIPT_PAGE.replace(TOKEN, "[redacted]")
    assert TOKEN not in database_text()


def test_the_api_shows_a_jobs_answer_in_its_detail_only(run_against, client, operator):
    job = run_against(answer(200, SCRIPT_PAGE, content_type="text/html"))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=operator, name='s').secret}"}
    detail = client.get(f"/api/v1/jobs/{job.pk}", **auth).json()
    assert detail["cluster_answer"] == {
        "status": 200,
        "content_type": "text/html",
        "body": SCRIPT_PAGE.replace(TOKEN, "[redacted]"),
        "truncated": False,
    }
    [listed] = client.get("/api/v1/jobs", **auth).json()["results"]
    assert "cluster_answer" not in listed
