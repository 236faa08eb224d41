from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from jobs.models import ApprovalRule, Cluster, JobAction
from jobs.services import approval_needed, credential_status


def signs_in(username: str, password: str) -> bool:
    """Whether the sign-in page lets this user in with this password."""
    client = Client()
    client.post(reverse("login"), {"username": username, "password": password})
    return client.session.get("_auth_user_id") is not None


def seed(monkeypatch, *args: str, **passwords: str) -> str:
    for name in ("OPERATOR", "AUDITOR", "ADMIN", "APPROVER"):
        monkeypatch.delenv(f"TMS_DEMO_{name}_PASSWORD", raising=False)
    for name, value in passwords.items():
        monkeypatch.setenv(f"TMS_DEMO_{name.upper()}_PASSWORD", value)
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_users_groups_and_local_cluster(db, monkeypatch):
    output = seed(monkeypatch, operator="op-secret-123")
    User = get_user_model()
    operator = User.objects.get(username="operator")
    assert operator.has_perm("jobs.run_set_action")
    assert not operator.is_staff
    assert not operator.has_perm("jobs.view_all_jobs")
    auditor = User.objects.get(username="auditor")
    assert auditor.is_staff and not auditor.is_superuser
    assert auditor.has_perm("jobs.view_all_jobs")
    assert auditor.has_perm("audit.view_auditentry")
    assert not auditor.has_perm("jobs.run_set_action")
    assert User.objects.get(username="admin").is_superuser

    assert signs_in("operator", "op-secret-123")
    assert "password from TMS_DEMO_OPERATOR_PASSWORD" in output
    assert "op-secret-123" not in output

    cluster = Cluster.objects.get(name="local")
    assert cluster.base_url == "http://127.0.0.1:9100"
    assert cluster.is_active
    entry = AuditEntry.objects.get(event="cluster.created")
    assert entry.details["cluster_id"] == cluster.pk

    # The demo shows approvals: PE-Finalize on it waits for the approver's group.
    approver = User.objects.get(username="approver")
    assert approver.groups.filter(name="Approvers").exists()
    assert not approver.has_perm("jobs.run_set_action")
    needed = approval_needed(action=JobAction.PE_FINALIZE, cluster=cluster, customers=1)
    assert needed is not None and needed.group == "Approvers"
    assert approval_needed(action=JobAction.TRANS_BEGIN, cluster=cluster, customers=1) is None
    assert AuditEntry.objects.filter(event="approval_rule.created").count() == 1

    # Schedules run with the cluster's stored credential: the demo cluster has one.
    assert credential_status(cluster=cluster).set
    assert AuditEntry.objects.filter(event="credential.set").count() == 1


def test_seed_demo_prints_generated_passwords_that_work(db, monkeypatch):
    output = seed(monkeypatch)
    line = next(line for line in output.splitlines() if line.startswith("Created user admin"))
    password = line.rsplit("password: ", 1)[1].rstrip(")")
    assert signs_in("admin", password)


@pytest.mark.parametrize("name", ["operator", "auditor", "admin"])
def test_an_empty_password_variable_means_unset(db, monkeypatch, name):
    output = seed(monkeypatch, **{name: ""})
    line = next(line for line in output.splitlines() if line.startswith(f"Created user {name}"))
    assert "generated password: " in line
    password = line.rsplit("password: ", 1)[1].rstrip(")")
    assert password
    assert signs_in(name, password)


def test_every_created_user_is_told_how_its_password_was_chosen(db, monkeypatch):
    output = seed(monkeypatch, auditor="aud-secret-789")
    lines = [line for line in output.splitlines() if line.startswith("Created user ")]
    assert len(lines) == 4
    assert all(
        "(generated password: " in line or "(password from TMS_DEMO_" in line for line in lines
    )


def test_seed_demo_twice_creates_nothing_new(db, monkeypatch):
    seed(monkeypatch)
    User = get_user_model()

    def state():
        users = list(User.objects.values("password"))
        return User.objects.count(), Cluster.objects.count(), ApprovalRule.objects.count(), users

    before = state()
    output = seed(monkeypatch, admin="changed-later-456")
    after = state()
    assert after == before
    assert "nothing created" in output
    assert "password" not in output


def test_the_demo_cluster_is_the_fake_cluster_on_the_port_given(db, monkeypatch):
    output = seed(monkeypatch, "--fake-cluster-port", "9137")
    assert Cluster.objects.get(name="local").base_url == "http://127.0.0.1:9137"
    assert "Created cluster local at http://127.0.0.1:9137" in output


def test_a_demo_cluster_on_another_port_is_left_as_it_is_and_named(db, monkeypatch):
    seed(monkeypatch)
    output = seed(monkeypatch, "--fake-cluster-port", "9137")
    assert Cluster.objects.get(name="local").base_url == "http://127.0.0.1:9100"
    assert "The cluster local is at http://127.0.0.1:9100, not at the fake cluster's" in output
    assert "nothing created" in output
