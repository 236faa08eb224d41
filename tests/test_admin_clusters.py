"""Clusters in the admin: added and edited with checked URLs, never deleted while they have jobs."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster
from jobs.validators import validate_cluster_base_url
from tests.admin_helpers import make_job, make_superuser

CLUSTERS = reverse("admin:jobs_cluster_changelist")
ADD = reverse("admin:jobs_cluster_add")


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


def form(**changes) -> dict:
    data = {
        "name": "eu2",
        "base_url": "https://tms-eu2.example.net",
        "action_path": "/api/set_action",
        "timeout_seconds": 30,
        "max_cids_per_request": 500,
        "max_concurrent_calls": 4,
        "verify_tls": "on",
        "is_active": "on",
    }
    return {**data, **changes}


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_superuser_adds_a_cluster(admin_client):
    response = admin_client.post(ADD, form())
    assert response.status_code == 302
    assert Cluster.objects.get().base_url == "https://tms-eu2.example.net"


def test_superuser_edits_a_cluster(admin_client, cluster):
    url = reverse("admin:jobs_cluster_change", args=[cluster.pk])
    response = admin_client.post(url, form(name="eu1", timeout_seconds=45, is_active=""))
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.timeout_seconds, cluster.is_active) == (45, False)


@pytest.mark.parametrize(
    ("base_url", "error"),
    [
        ("ftp://tms-eu2.example.net", "must start with http:// or https://"),
        ("HTTPS://tms-eu2.example.net", "must start with http:// or https://"),
        ("tms-eu2.example.net", "must start with http:// or https://"),
        ("http://evil.example.com", "The host evil.example.com is not allowed"),
        ("https://tms-eu2.example.net.evil.example.com", "is not allowed"),
    ],
)
def test_cluster_with_a_refused_url_is_not_written(admin_client, settings, base_url, error):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = ["tms-eu1.example.net", "tms-eu2.example.net"]

    response = admin_client.post(ADD, form(base_url=base_url))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert Cluster.objects.count() == 0


def test_editing_a_cluster_to_a_refused_host_changes_nothing(admin_client, settings, cluster):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = ["127.0.0.1"]
    before = Cluster.objects.values().get(pk=cluster.pk)
    url = reverse("admin:jobs_cluster_change", args=[cluster.pk])

    response = admin_client.post(url, form(name="eu1", base_url="http://evil.example.com"))

    assert response.status_code == 200
    assert "The host evil.example.com is not allowed" in response.content.decode()
    assert Cluster.objects.values().get(pk=cluster.pk) == before


@pytest.mark.parametrize(
    "base_url",
    ["https://tms-eu2.example.net", "http://TMS-EU2.example.net:8443/base", "https://10.0.0.5"],
)
def test_allowed_hosts_accept_their_urls(settings, base_url):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = ["tms-eu2.example.net", "10.0.0.5"]
    validate_cluster_base_url(base_url)


def test_empty_allowed_hosts_accept_any_host(settings):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = []
    validate_cluster_base_url("https://anywhere.example.org:9443")


@pytest.mark.parametrize("base_url", ["https://", "http://[::1", "http:///path"])
def test_url_without_a_valid_host_is_refused(base_url):
    with pytest.raises(ValidationError, match="must name a valid host"):
        validate_cluster_base_url(base_url)


def test_cluster_with_jobs_is_not_deleted_and_the_admin_says_to_deactivate_it(
    admin_client, operator, cluster
):
    make_job(user=operator, cluster=cluster)
    url = reverse("admin:jobs_cluster_delete", args=[cluster.pk])

    for method, data in (("get", {}), ("post", {"post": "yes"})):
        response = getattr(admin_client, method)(url, data, follow=True)
        assert response.status_code == 200
        assert response.redirect_chain == [
            (reverse("admin:jobs_cluster_change", args=[cluster.pk]), 302)
        ]
        assert messages_of(response) == [
            "The cluster eu1 has jobs, which are history: nothing was deleted. "
            "Deactivate it instead (untick “Is active” and save)."
        ]
    assert Cluster.objects.filter(pk=cluster.pk, is_active=True).exists()


def test_bulk_delete_of_clusters_with_jobs_deletes_none(admin_client, operator, cluster):
    other = baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9101")
    unused = baker.make(Cluster, name="ap1", base_url="http://127.0.0.1:9102")
    make_job(user=operator, cluster=cluster)
    make_job(user=operator, cluster=other)

    response = admin_client.post(
        CLUSTERS,
        {
            "action": "delete_selected",
            ACTION_CHECKBOX_NAME: [cluster.pk, other.pk, unused.pk],
            "post": "yes",
            "index": 0,
        },
        follow=True,
    )

    assert response.status_code == 200
    assert messages_of(response) == [
        "The clusters eu1, us1 have jobs, which are history: nothing was deleted. "
        "Deactivate them instead (untick “Is active” and save)."
    ]
    assert Cluster.objects.count() == 3


def test_cluster_without_jobs_is_deleted(admin_client, cluster):
    response = admin_client.post(
        reverse("admin:jobs_cluster_delete", args=[cluster.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Cluster.objects.exists()


def test_bulk_delete_of_clusters_without_jobs_asks_then_deletes(admin_client, cluster):
    data = {"action": "delete_selected", ACTION_CHECKBOX_NAME: [cluster.pk], "index": 0}

    confirm = admin_client.post(CLUSTERS, data)
    assert confirm.status_code == 200
    assert b"Are you sure you want to delete the selected cluster?" in confirm.content
    assert Cluster.objects.exists()

    assert admin_client.post(CLUSTERS, {**data, "post": "yes"}).status_code == 302
    assert not Cluster.objects.exists()


# Every change to a cluster is audited: who, and the values before and after.


def cluster_entries(event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=event))


def test_adding_a_cluster_is_audited_with_who_and_its_values(admin_client, admin_user):
    admin_client.post(ADD, form(), REMOTE_ADDR="10.1.2.3")
    [entry] = cluster_entries("cluster.created")
    cluster = Cluster.objects.get()
    assert (entry.actor, entry.ip_address) == (admin_user, "10.1.2.3")
    assert entry.details["cluster_id"] == cluster.pk
    assert entry.details["after"]["base_url"] == "https://tms-eu2.example.net"
    assert entry.details["after"]["action_path"] == "/api/set_action"


def test_editing_a_cluster_is_audited_with_what_changed(admin_client, admin_user, cluster):
    url = reverse("admin:jobs_cluster_change", args=[cluster.pk])
    old_url = cluster.base_url
    admin_client.post(url, form(name="eu1", base_url="http://127.0.0.1:9200", timeout_seconds=45))
    [entry] = cluster_entries("cluster.changed")
    assert entry.actor == admin_user
    assert entry.details["before"] == {"base_url": old_url, "timeout_seconds": 2}
    assert entry.details["after"] == {"base_url": "http://127.0.0.1:9200", "timeout_seconds": 45}


def test_deactivating_a_cluster_is_audited(admin_client, cluster):
    url = reverse("admin:jobs_cluster_change", args=[cluster.pk])
    admin_client.post(
        url, form(name="eu1", base_url=cluster.base_url, timeout_seconds=2, is_active="")
    )
    [entry] = cluster_entries("cluster.deactivated")
    assert entry.details == {
        "cluster_id": cluster.pk,
        "cluster": "eu1",
        "before": {"is_active": True},
        "after": {"is_active": False},
    }


def test_saving_a_cluster_unchanged_writes_no_entry(admin_client, cluster):
    url = reverse("admin:jobs_cluster_change", args=[cluster.pk])
    admin_client.post(url, form(name="eu1", base_url=cluster.base_url, timeout_seconds=2))
    assert not AuditEntry.objects.filter(event__startswith="cluster.").exists()


def test_deleting_a_cluster_is_audited_with_its_values(admin_client, cluster):
    admin_client.post(reverse("admin:jobs_cluster_delete", args=[cluster.pk]), {"post": "yes"})
    [entry] = cluster_entries("cluster.deleted")
    assert entry.details["before"]["base_url"] == cluster.base_url


def test_a_refused_cluster_writes_no_entry(admin_client):
    admin_client.post(ADD, form(base_url="http://user:pw@127.0.0.1:9100"))
    assert Cluster.objects.count() == 0
    assert not AuditEntry.objects.filter(event__startswith="cluster.").exists()
