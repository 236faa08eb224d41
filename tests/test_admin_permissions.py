"""Who may enter the admin and what they may do there."""

from __future__ import annotations

import pytest
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import Cluster, Job
from tests.admin_helpers import make_auditor, make_job, make_superuser

VIEWABLE_BY_AUDITORS = [
    "admin:jobs_job_changelist",
    "admin:jobs_failedjob_changelist",
    "admin:audit_auditentry_changelist",
    "admin:jobs_cluster_changelist",
]


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


@pytest.fixture
def auditor_client(client, db):
    client.force_login(make_auditor())
    return client


@pytest.mark.parametrize("name", ["admin:index", *VIEWABLE_BY_AUDITORS])
def test_operator_is_sent_to_the_admin_sign_in(client, operator, name):
    client.force_login(operator)
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_operator_cannot_sign_in_to_the_admin(client, operator):
    operator.set_password("pw-for-op1-only")
    operator.save()
    response = client.post(
        reverse("admin:login"), {"username": "op1", "password": "pw-for-op1-only"}
    )
    assert response.status_code == 200
    assert b"staff account" in response.content


def test_operator_cannot_export_jobs(client, operator):
    client.force_login(operator)
    job = make_job(user=operator)
    response = client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "export_csv", "_selected_action": [job.pk], "index": 0},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", VIEWABLE_BY_AUDITORS)
def test_staff_auditor_can_view_the_lists(auditor_client, operator, name):
    make_job(user=operator, status=Job.Status.FAILED)
    audit_record(event=AuditEntry.Event.JOB_FAILED, actor=operator)
    assert auditor_client.get(reverse(name)).status_code == 200


def test_staff_auditor_can_open_a_job_and_an_audit_entry(auditor_client, operator):
    job = make_job(user=operator, status=Job.Status.UNKNOWN)
    entry = audit_record(event=AuditEntry.Event.JOB_UNKNOWN, actor=operator, job_id=job.pk)
    for url in (
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:jobs_failedjob_change", args=[job.pk]),
        reverse("admin:audit_auditentry_change", args=[entry.pk]),
    ):
        response = auditor_client.get(url)
        assert response.status_code == 200
        assert b'name="_save"' not in response.content


def test_admin_index_shows_auditors_the_failed_jobs_first(auditor_client):
    content = auditor_client.get(reverse("admin:index")).content.decode()
    failed = reverse("admin:jobs_failedjob_changelist")
    assert content.index(f'href="{failed}"') < content.index(
        f'href="{reverse("admin:jobs_job_changelist")}"'
    )


def test_staff_auditor_changes_nothing(auditor_client, operator, cluster):
    job = make_job(user=operator, status=Job.Status.FAILED)
    before = Cluster.objects.values().get(pk=cluster.pk)
    cluster_form = {
        "name": "renamed",
        "base_url": "http://127.0.0.1:9200",
        "action_path": "/api/set_action",
        "timeout_seconds": 30,
        "max_cids_per_request": 500,
        "is_active": "on",
    }

    responses = [
        auditor_client.post(reverse("admin:jobs_job_change", args=[job.pk]), {"status": "X"}),
        auditor_client.post(reverse("admin:jobs_job_delete", args=[job.pk]), {"post": "yes"}),
        auditor_client.post(reverse("admin:jobs_cluster_add"), cluster_form),
        auditor_client.post(reverse("admin:jobs_cluster_change", args=[cluster.pk]), cluster_form),
        auditor_client.post(
            reverse("admin:jobs_cluster_delete", args=[cluster.pk]), {"post": "yes"}
        ),
    ]

    assert [r.status_code for r in responses] == [403] * 5
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED
    assert list(Cluster.objects.values()) == [before]


def test_staff_without_a_group_sees_no_jobs(client, operator):
    staff = baker.make("auth.User", username="staff1", is_staff=True)
    client.force_login(staff)
    make_job(user=operator)
    assert client.get(reverse("admin:jobs_job_changelist")).status_code == 403
    assert client.get(reverse("admin:jobs_failedjob_changelist")).status_code == 403
    assert b"Failed jobs" not in client.get(reverse("admin:index")).content


def test_superuser_can_view_every_list(admin_client, operator):
    make_job(user=operator, status=Job.Status.FAILED)
    for name in VIEWABLE_BY_AUDITORS:
        assert admin_client.get(reverse(name)).status_code == 200
