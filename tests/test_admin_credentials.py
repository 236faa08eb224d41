"""A cluster's stored credential in the admin: written on the cluster's page (a password
field, never rendered back), removed there, each change audited through the service; the
page says only whether one is set and when it last changed."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from audit.models import AuditEntry
from jobs.models import ClusterCredential, RunGrant
from jobs.services import credential_set
from jobs.tokens import token_decrypt
from tests.admin_helpers import make_superuser
from tests.helpers import make_user, row_counts

STORED = "svc-Stored-credential-4b7e-never-in-clear"


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


def form(cluster, **changes) -> dict:
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
    return {**data, **changes}


def change_url(cluster) -> str:
    return reverse("admin:jobs_cluster_change", args=[cluster.pk])


def test_an_admin_sets_the_credential_on_the_clusters_page_audited(admin_client, cluster):
    response = admin_client.post(
        change_url(cluster), form(cluster, new_credential=STORED), REMOTE_ADDR="10.9.8.7"
    )
    assert response.status_code == 302
    credential = ClusterCredential.objects.get(cluster=cluster)
    assert token_decrypt(credential.ciphertext) == STORED
    entry = AuditEntry.objects.get(event="credential.set")
    assert (entry.actor_username, entry.ip_address) == ("admin", "10.9.8.7")


def test_the_page_never_renders_the_credential_back_and_says_when_it_changed(admin_client, cluster):
    credential_set(cluster=cluster, token=STORED)
    page = admin_client.get(change_url(cluster)).content.decode()
    assert STORED not in page
    assert 'type="password" name="new_credential"' in page
    assert "Set; last changed" in page
    # A form sent back with an error does not echo the credential either.
    refused = admin_client.post(change_url(cluster), form(cluster, new_credential=STORED, name=""))
    assert refused.status_code == 200
    assert STORED not in refused.content.decode()


def test_an_empty_field_keeps_the_credential(admin_client, cluster):
    credential_set(cluster=cluster, token=STORED)
    before = ClusterCredential.objects.get(cluster=cluster)
    assert (
        admin_client.post(change_url(cluster), form(cluster, timeout_seconds=45)).status_code == 302
    )
    after = ClusterCredential.objects.get(cluster=cluster)
    assert (after.ciphertext, after.changed_at) == (before.ciphertext, before.changed_at)


def test_an_admin_removes_the_credential_audited(admin_client, cluster):
    credential_set(cluster=cluster, token=STORED)
    response = admin_client.post(change_url(cluster), form(cluster, remove_credential="on"))
    assert response.status_code == 302
    assert not ClusterCredential.objects.exists()
    assert AuditEntry.objects.filter(event="credential.removed", actor_username="admin").exists()


@pytest.mark.parametrize("token", ["line\nbreak", "two words", "x" * 4097, "caf\u00e9"])
def test_a_bad_credential_is_refused_on_its_field_with_nothing_written(
    admin_client, cluster, token
):
    before = row_counts()
    response = admin_client.post(
        change_url(cluster), form(cluster, new_credential=token, timeout_seconds=45)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["new_credential"]
    assert row_counts() == before


def test_setting_and_removing_at_once_is_refused(admin_client, cluster):
    before = row_counts()
    response = admin_client.post(
        change_url(cluster), form(cluster, new_credential=STORED, remove_credential="on")
    )
    assert response.status_code == 200
    assert row_counts() == before


def test_without_the_credential_permission_the_fields_are_not_offered(client, cluster):
    staff = make_user("clusters", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_cluster", "change_cluster"])
    )
    client.force_login(staff)
    page = client.get(change_url(cluster)).content.decode()
    assert "new_credential" not in page
    client.post(change_url(cluster), form(cluster, new_credential=STORED))
    assert not ClusterCredential.objects.exists()


def test_a_run_grant_may_allow_the_stored_credential(admin_client, cluster):
    operators = Group.objects.get(name="Operators")
    response = admin_client.post(
        reverse("admin:jobs_rungrant_add"),
        {
            "group": operators.pk,
            "user": "",
            "cluster": cluster.pk,
            "action": "",
            "may_use_stored_credential": "on",
        },
    )
    assert response.status_code == 302, response.content
    grant = RunGrant.objects.get(cluster=cluster)
    assert grant.may_use_stored_credential
    entry = AuditEntry.objects.get(event="run_grant.created")
    assert entry.details["may_use_stored_credential"] is True
