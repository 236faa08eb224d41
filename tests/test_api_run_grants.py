"""The run grants through the API: administrators' tokens list, create and delete them, each
change audited; anyone else is refused, and a Set Action or a retry no grant covers is a 403
problem with nothing written. Run grants in the admin too."""

from __future__ import annotations

import json
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.db.models.signals import pre_save
from django.urls import reverse
from model_bakery import baker

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import Cluster, Job, RunGrant
from jobs.services import job_submit, run_grant_create
from tests.admin_helpers import make_superuser
from tests.helpers import TOKEN, make_user, row_counts

GRANTS = "/api/v1/run-grants"
PROBLEM = "application/problem+json"


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


@pytest.fixture
def admin(db):
    return make_superuser()


@pytest.fixture
def admin_secret(admin) -> str:
    return token_create(user=admin, name="grants").secret


def call(client, method: str, url: str, secret: str, body=None, **headers):
    send = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **headers}
    if body is None:
        return send(url, **auth)
    return send(url, json.dumps(body), content_type="application/json", **auth)


def test_an_admin_token_lists_creates_and_deletes_grants_each_audited(
    client, admin, admin_secret, cluster
):
    listed = call(client, "get", GRANTS, admin_secret)
    assert listed.status_code == 200
    [everything] = listed.json()["results"]
    assert everything | {"id": 0, "created_at": ""} == {
        "id": 0,
        "group": "Operators",
        "user": None,
        "cluster": None,
        "action": None,
        "created_at": "",
    }

    body = {"group": "Operators", "cluster": "eu1", "action": "pe_finalize"}
    created = call(client, "post", GRANTS, admin_secret, body, REMOTE_ADDR="10.2.3.4")
    assert created.status_code == 201, created.content
    grant = created.json()
    assert (grant["group"], grant["cluster"], grant["action"]) == (
        "Operators",
        "eu1",
        "PE-Finalize",
    )
    entry = AuditEntry.objects.get(event=AuditEntry.Event.RUN_GRANT_CREATED)
    assert (entry.actor, entry.ip_address) == (admin, "10.2.3.4")
    assert entry.details == {
        "grant_id": grant["id"],
        "group": "Operators",
        "user": None,
        "cluster": "eu1",
        "action": "PE-Finalize",
    }

    mine = call(
        client, "post", GRANTS, admin_secret, {"user": "admin", "cluster": None, "action": "5"}
    )
    assert mine.status_code == 201, mine.content
    assert (mine.json()["user"], mine.json()["group"], mine.json()["action"]) == (
        "admin",
        None,
        "PE-Direct",
    )

    deleted = call(client, "delete", f"{GRANTS}/{grant['id']}", admin_secret)
    assert deleted.status_code == 204
    assert not RunGrant.objects.filter(pk=grant["id"]).exists()
    gone = AuditEntry.objects.get(event=AuditEntry.Event.RUN_GRANT_DELETED)
    assert (gone.actor, gone.details["grant_id"]) == (admin, grant["id"])
    again = call(client, "delete", f"{GRANTS}/{grant['id']}", admin_secret)
    assert (again.status_code, again["Content-Type"]) == (404, PROBLEM)


def test_an_operators_token_is_refused_everything(client, operator, cluster):
    secret = token_create(user=operator, name="pipeline").secret
    grant = RunGrant.objects.get()
    before = written()
    for method, url, body in (
        ("get", GRANTS, None),
        ("post", GRANTS, {"group": "Operators", "cluster": "eu1", "action": None}),
        ("delete", f"{GRANTS}/{grant.pk}", None),
    ):
        response = call(client, method, url, secret, body)
        assert (response.status_code, response["Content-Type"]) == (403, PROBLEM), method
    assert written() == before


def test_a_read_only_admin_token_reads_but_cannot_write(client, admin, cluster):
    secret = token_create(user=admin, name="reader", read_only=True).secret
    grant = RunGrant.objects.get()
    assert call(client, "get", GRANTS, secret).status_code == 200
    before = written()
    body = {"group": "Operators", "cluster": "eu1", "action": None}
    refused = call(client, "post", GRANTS, secret, body)
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]
    assert call(client, "delete", f"{GRANTS}/{grant.pk}", secret).status_code == 403
    assert written() == before


def test_a_user_with_the_model_permissions_alone_manages_grants(client, cluster):
    from django.contrib.auth.models import Permission

    keeper = make_user("keeper")
    keeper.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_rungrant", "add_rungrant"])
    )
    secret = token_create(user=keeper, name="keeper").secret
    assert call(client, "get", GRANTS, secret).status_code == 200
    body = {"group": "Operators", "cluster": "eu1", "action": "T-Enable"}
    created = call(client, "post", GRANTS, secret, body)
    assert created.status_code == 201
    # No delete_rungrant: no delete.
    assert call(client, "delete", f"{GRANTS}/{created.json()['id']}", secret).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"group": "Nobody", "cluster": None, "action": None}, "group"),
        ({"user": "nobody", "cluster": None, "action": None}, "user"),
        ({"group": "Operators", "cluster": "mars", "action": None}, "cluster"),
        ({"group": "Operators", "cluster": None, "action": "Explode"}, "action"),
        ({"group": "Operators", "user": "admin", "cluster": None, "action": None}, "group"),
        ({"cluster": None, "action": None}, "group"),
        ({"group": 5, "cluster": None, "action": None}, "group"),
        ({"group": "Operators", "cluster": 1, "action": None}, "cluster"),
        ({"group": "Operators", "cluster": None, "action": ["1"]}, "action"),
        # Any cluster or any action is said, never assumed from a missing key.
        ({"group": "Operators", "action": None}, "cluster"),
        ({"group": "Operators", "cluster": None}, "action"),
    ],
)
def test_bad_input_is_a_400_problem_with_nothing_written(
    client, admin_secret, cluster, body, field
):
    before = written()
    response = call(client, "post", GRANTS, admin_secret, body)
    assert (response.status_code, response["Content-Type"]) == (400, PROBLEM), response.content
    assert field in response.json()["errors"]
    assert written() == before


def test_the_same_grant_again_is_a_409_with_nothing_written(client, admin_secret, cluster):
    before = written()
    response = call(
        client,
        "post",
        GRANTS,
        admin_secret,
        {"group": "Operators", "cluster": None, "action": None},
    )
    assert (response.status_code, response["Content-Type"]) == (409, PROBLEM)
    assert "exists already" in response.json()["detail"]
    assert written() == before


@pytest.mark.parametrize("grant_id", ["0", "abc", "99999999999999999999", "1.5"])
def test_a_malformed_or_unknown_grant_id_is_a_404(client, admin_secret, grant_id):
    response = call(client, "delete", f"{GRANTS}/{grant_id}", admin_secret)
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)


def test_a_set_action_or_retry_no_grant_covers_is_a_403_with_nothing_written(
    client, operator, cluster
):
    secret = token_create(user=operator, name="pipeline").secret
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    operators = Group.objects.get(name="Operators")
    RunGrant.objects.filter(group=operators).delete()
    other = baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9", is_active=True)
    run_grant_create(group=operators, cluster=other)
    before = written()
    submitted = call(
        client,
        "post",
        "/api/v1/set-actions",
        secret,
        {"action": "T-Enable", "cluster": "eu1", "cids": ["C2"], "cluster_token": TOKEN},
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert (submitted.status_code, submitted["Content-Type"]) == (403, PROBLEM)
    assert submitted.json()["detail"] == (
        "You may not run T-Enable on cluster eu1: no run grant covers it."
    )
    retried = call(
        client,
        "post",
        f"/api/v1/jobs/{job.pk}/retry",
        secret,
        {"cluster_token": TOKEN},
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert (retried.status_code, retried["Content-Type"]) == (403, PROBLEM)
    assert "Trans-Begin on cluster eu1" in retried.json()["detail"]
    assert written() == before


ADMIN_GRANTS = reverse("admin:jobs_rungrant_changelist")
ADMIN_ADD = reverse("admin:jobs_rungrant_add")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def test_the_admin_adds_a_grant_through_the_service(admin_client, admin, cluster):
    response = admin_client.post(
        ADMIN_ADD,
        {"group": Group.objects.get(name="Operators").pk, "cluster": cluster.pk, "action": "2"},
        REMOTE_ADDR="10.9.8.7",
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    grant = RunGrant.objects.get(cluster=cluster)
    assert grant.action == Job.Action.PE_ENABLE
    entry = AuditEntry.objects.get(event=AuditEntry.Event.RUN_GRANT_CREATED)
    assert (entry.actor, entry.ip_address, entry.details["grant_id"]) == (
        admin,
        "10.9.8.7",
        grant.pk,
    )
    page = admin_client.get(ADMIN_GRANTS).content.decode()
    assert "group Operators" in page and "any cluster" in page and "PE-Enable" in page


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"group": "operators"}, "exists already"),
        ({}, "name one of them"),
        ({"group": "operators", "user": "admin"}, "name one of them"),
    ],
)
def test_the_admin_refuses_a_duplicate_or_a_grant_for_nobody(admin_client, admin, fields, error):
    ids = {"operators": Group.objects.get(name="Operators").pk, "admin": admin.pk}
    before = written()
    response = admin_client.post(ADMIN_ADD, {name: ids[value] for name, value in fields.items()})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors)
    assert written() == before


def test_the_admin_deletes_grants_audited_and_never_edits_one(admin_client, admin, cluster):
    grant = RunGrant.objects.get()
    change = reverse("admin:jobs_rungrant_change", args=[grant.pk])
    admin_client.post(change, {"group": "", "user": admin.pk, "cluster": cluster.pk, "action": "1"})
    grant.refresh_from_db()
    assert (grant.group.name, grant.user, grant.cluster) == ("Operators", None, None)
    response = admin_client.post(
        ADMIN_GRANTS,
        {"action": "delete_selected", "_selected_action": [grant.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not RunGrant.objects.exists()
    entry = AuditEntry.objects.get(event=AuditEntry.Event.RUN_GRANT_DELETED)
    assert (entry.actor, entry.details["group"]) == (admin, "Operators")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_grant_made_meanwhile_is_a_message_not_an_error_page(client, admin, cluster):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite: the admin's transaction holds the write lock from its start")
    client.force_login(admin)
    group = Group.objects.get(name="Operators")

    def other_admin() -> None:
        RunGrant.objects.create(group=group, cluster=cluster, action=1)
        connections.close_all()

    def meanwhile(sender, instance, **kwargs):
        # Another admin's grant, committed between this form's check and its save.
        pre_save.disconnect(meanwhile, sender=RunGrant)
        thread = threading.Thread(target=other_admin)
        thread.start()
        thread.join()

    pre_save.connect(meanwhile, sender=RunGrant)
    try:
        response = client.post(
            ADMIN_ADD, {"group": group.pk, "cluster": cluster.pk, "action": "1"}, follow=True
        )
    finally:
        pre_save.disconnect(meanwhile, sender=RunGrant)
    assert response.status_code == 200
    assert "exists already" in response.content.decode()
    assert RunGrant.objects.filter(cluster=cluster).count() == 1
    assert not AuditEntry.objects.filter(event=AuditEntry.Event.RUN_GRANT_CREATED).exists()
