"""A cluster's environment label: set by an admin (audited as any change of the cluster), shown
as a word on its own colour beside the cluster on the Set Action form, its review and the job
page; a cluster without one shows none."""

from __future__ import annotations

import pytest
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster, Job
from tests.admin_helpers import make_superuser
from tests.helpers import TOKEN, row_counts

LABEL = '<span class="env-label env-production" data-environment="production">production</span>'


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def test_an_admin_sets_the_label_and_the_change_is_audited(client, cluster):
    client.force_login(make_superuser())
    change = reverse("admin:jobs_cluster_change", args=[cluster.pk])
    page = client.get(change).content.decode()
    assert '<select name="environment"' in page
    data = {
        "name": cluster.name,
        "base_url": cluster.base_url,
        "action_path": cluster.action_path,
        "timeout_seconds": cluster.timeout_seconds,
        "max_cids_per_request": cluster.max_cids_per_request,
        "max_concurrent_calls": cluster.max_concurrent_calls,
        "verify_tls": "on",
        "is_active": "on",
    }
    before = row_counts()
    refused = client.post(change, {**data, "environment": "live"})
    assert refused.status_code == 200 and "environment" in refused.context["adminform"].form.errors
    assert row_counts() == before
    assert client.post(change, {**data, "environment": "production"}).status_code == 302
    cluster.refresh_from_db()
    assert cluster.environment == "production"
    entry = AuditEntry.objects.get(event="cluster.changed")
    assert (entry.details["before"], entry.details["after"]) == (
        {"environment": ""},
        {"environment": "production"},
    )


def test_the_form_names_the_label_beside_the_cluster_choice(as_operator, cluster):
    # Not offered (retired): not named either.
    baker.make(
        Cluster,
        name="lab",
        base_url="https://lab.example.net",
        environment="test",
        is_active=False,
    )
    assert (
        'id="cluster-environments"' not in as_operator.get(reverse("set_action")).content.decode()
    )
    cluster.environment = "production"
    cluster.save()
    page = as_operator.get(reverse("set_action")).content.decode()
    assert ">eu1 (production)</option>" in page
    legend = page[page.index('id="cluster-environments"') :]
    legend = legend[: legend.index("</p>")]
    assert f"eu1 {LABEL}" in legend


def test_the_review_and_the_job_page_show_the_label(as_operator, operator, cluster):
    cluster.environment = "production"
    cluster.save()
    data = {
        "action": "1",
        "cluster": str(cluster.pk),
        "cids": "C1",
        "token": TOKEN,
        "idempotency_key": "k",
    }
    review = as_operator.post(reverse("set_action"), data).content.decode()
    assert f'<dd id="review-cluster">eu1 {LABEL}' in review
    job = baker.make(Job, user=operator, cluster=cluster, cluster_url=cluster.base_url, action=1)
    page = as_operator.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert f'<p class="env-line" id="job-cluster-environment">Cluster eu1: {LABEL}</p>' in page
    cluster.environment = ""
    cluster.save()
    assert "env-label" not in as_operator.get(reverse("job_detail", args=[job.pk])).content.decode()
