"""A cluster's stored credential is nowhere in clear: not in the database or its dump, not in
any admin page or operator page, not in an API answer, not in the 500 page of a request that
broke with it in hand. (The worker's output is checked in tests/test_credential_runs.py.)"""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote, quote_plus

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from model_bakery import baker

from api.tokens import token_create
from jobs.models import ClusterCredential, Job, RunGrant
from jobs.services import credential_set, job_run, job_submit
from tests.admin_helpers import make_superuser
from tests.helpers import database_text

STORED = "svc-Stored-credential-4b7e-never-in-clear"
FORMS = {
    STORED,
    quote(STORED, safe=""),
    quote_plus(STORED),
    base64.b64encode(STORED.encode()).decode().rstrip("="),
}


def shown(text: str | bytes) -> set[str]:
    if isinstance(text, bytes):
        text = text.decode()
    return {form for form in FORMS if form in text}


@pytest.fixture
def admin_user(db):
    return make_superuser()


@pytest.fixture
def used(operator, cluster, admin_user):
    """A credential set, changed, and used by a job that ran and one that failed."""
    credential_set(cluster=cluster, token="svc-first-one", actor=admin_user)
    credential_set(cluster=cluster, token=STORED, actor=admin_user)
    baker.make(RunGrant, user=operator, cluster=cluster, may_use_stored_credential=True)
    cluster.max_cids_per_request = 1
    cluster.save()
    jobs = job_submit(
        user=operator, action=3, cluster=cluster, cids="C1 E500-1", stored_credential=True
    )
    for job in jobs:
        job_run(job_id=job.pk)
    return jobs


def test_the_credential_is_not_in_the_database_nor_its_dump(used):
    assert shown(database_text()) == set()
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue()
    assert "jobs.clustercredential" in dump
    assert shown(dump) == set()


def test_no_admin_page_shows_the_credential(used, admin_client):
    pages = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        pages.append(changelist)
        first = model_admin.get_queryset(admin_client.request().wsgi_request).first()
        if first is not None:
            pages.append(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
            )
    for job in used:
        pages.append(reverse("admin:jobs_job_change", args=[job.pk]))
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code in (200, 302), page
        assert shown(response.content) == set(), page


def test_no_operator_page_shows_the_credential(used, client, operator, cluster):
    client.force_login(operator)
    pages = [
        reverse("set_action"),
        reverse("job_list"),
        reverse("batch_detail", args=[used[0].batch_id]),
        *(reverse("job_detail", args=[job.pk]) for job in used),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert shown(response.content) == set(), page
    review = client.post(
        reverse("set_action"),
        {
            "action": "3",
            "cluster": str(cluster.pk),
            "cids": "C5",
            "use_stored_credential": "on",
            "idempotency_key": "k-secrecy",
        },
    )
    assert "jobs/set_action_review.html" in [t.name for t in review.templates]
    assert shown(review.content) == set()


def test_no_api_answer_shows_the_credential(used, client, admin_user):
    secret = token_create(user=admin_user, name="all").secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    answers = [
        client.get("/api/v1/clusters", **auth),
        client.get("/api/v1/audit", **auth),
        client.get("/api/v1/jobs", **auth),
        client.get(f"/api/v1/batches/{used[0].batch_id}", **auth),
        *(client.get(f"/api/v1/jobs/{job.pk}", **auth) for job in used),
        client.put(
            "/api/v1/clusters/eu1/credential",
            json.dumps({"token": STORED + " with a space"}),
            content_type="application/json",
            **auth,
        ),
        client.put(
            "/api/v1/clusters/eu1/credential",
            json.dumps({"token": STORED}),
            content_type="application/json",
            **auth,
        ),
    ]
    for answer in answers:
        assert answer.status_code in (200, 204, 400), answer.content
        assert shown(answer.content) == set(), answer.content


@pytest.mark.parametrize("debug", [False, True])
def test_a_request_that_breaks_with_the_credential_in_hand_shows_it_nowhere(
    settings, client, admin_user, cluster, debug
):
    """A real misconfiguration: a token key that is not a Fernet key, so that setting the
    credential fails inside its encryption, with the credential in hand."""
    settings.DEBUG = debug
    settings.TMS_TOKEN_KEY = "not-a-fernet-key"
    client.raise_request_exception = False
    secret = token_create(user=admin_user, name="all").secret
    answer = client.put(
        "/api/v1/clusters/eu1/credential",
        json.dumps({"token": STORED}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert answer.status_code == 500
    assert shown(answer.content) == set()
    client.force_login(admin_user)
    page = client.post(
        reverse("admin:jobs_cluster_change", args=[cluster.pk]),
        {
            "name": cluster.name,
            "base_url": cluster.base_url,
            "action_path": cluster.action_path,
            "timeout_seconds": cluster.timeout_seconds,
            "max_cids_per_request": cluster.max_cids_per_request,
            "max_concurrent_calls": cluster.max_concurrent_calls,
            "is_active": "on",
            "new_credential": STORED,
        },
    )
    assert page.status_code == 500
    assert shown(page.content) == set()
    assert not ClusterCredential.objects.exists()
    if not debug:
        assert b"Something went wrong" in page.content
    assert Job.objects.count() == 0
