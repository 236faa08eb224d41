"""The admin of approvals: rules added and removed through the service, audited, never changed
in place; requests listed pending first, read-only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from jobs.models import ApprovalRule
from jobs.services import approval_withdraw, job_submit
from tests.admin_helpers import make_auditor
from tests.helpers import TOKEN, row_counts

pytestmark = pytest.mark.django_db


def rule_form(**overrides) -> dict:
    return {
        "cluster": "",
        "action": "4",
        "min_customers": "1000",
        "approvers_group": str(Group.objects.get(name="Approvers").pk),
        "approvers_required": "2",
        "ttl_seconds": "3600",
        "per_run": "on",
    } | overrides


def test_an_admin_adds_a_rule_audited(admin_client):
    answer = admin_client.post(reverse("admin:jobs_approvalrule_add"), rule_form())
    assert answer.status_code == 302, answer.content
    rule = ApprovalRule.objects.get()
    assert (rule.action, rule.min_customers, rule.approvers_required) == (4, 1000, 2)
    assert rule.per_run
    [entry] = AuditEntry.objects.filter(event="approval_rule.created")
    assert entry.actor.username == "admin"
    assert entry.details == {
        "rule_id": rule.pk,
        "cluster": None,
        "action": "PE-Finalize",
        "min_customers": 1000,
        "approvers_group": "Approvers",
        "ttl_seconds": 3600,
        "approvers_required": 2,
        "per_run": True,
    }


@pytest.mark.parametrize(
    "bad",
    [{"ttl_seconds": str(7 * 24 * 3600 + 1)}, {"ttl_seconds": "0"}, {"approvers_required": "3"}],
)
def test_a_rule_beyond_the_bounds_is_refused_and_nothing_written(admin_client, bad):
    before = row_counts()
    answer = admin_client.post(reverse("admin:jobs_approvalrule_add"), rule_form(**bad))
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors
    assert row_counts() == before


def test_a_rule_is_removed_audited_and_never_changed_in_place(admin_client):
    admin_client.post(reverse("admin:jobs_approvalrule_add"), rule_form())
    rule = ApprovalRule.objects.get()
    change = reverse("admin:jobs_approvalrule_change", args=[rule.pk])
    admin_client.post(change, rule_form(min_customers="1"))
    assert ApprovalRule.objects.get().min_customers == 1000
    answer = admin_client.post(
        reverse("admin:jobs_approvalrule_delete", args=[rule.pk]), {"post": "yes"}
    )
    assert answer.status_code == 302
    assert not ApprovalRule.objects.exists()
    assert AuditEntry.objects.filter(event="approval_rule.deleted").count() == 1


def test_the_same_rule_again_is_a_message_with_nothing_written(admin_client):
    admin_client.post(reverse("admin:jobs_approvalrule_add"), rule_form())
    before = row_counts()
    answer = admin_client.post(reverse("admin:jobs_approvalrule_add"), rule_form(), follow=True)
    assert answer.status_code == 200
    assert "exists already" in answer.content.decode()
    assert row_counts() == before


def test_requests_are_listed_pending_first_and_read_only(admin_client, operator, cluster):
    ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))
    [withdrawn] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    approval_withdraw(request_id=withdrawn.approval_id, user=operator)
    [later] = job_submit(user=operator, action=1, cluster=cluster, cids="C2", token=TOKEN)
    [sooner] = job_submit(user=operator, action=1, cluster=cluster, cids="C3", token=TOKEN)
    requests = type(later.approval).objects
    requests.filter(pk=withdrawn.approval_id).update(
        created_at=timezone.now() + dt.timedelta(minutes=1)
    )
    requests.filter(pk=sooner.approval_id).update(
        expires_at=timezone.now() + dt.timedelta(minutes=1)
    )
    answer = admin_client.get(reverse("admin:jobs_approvalrequest_changelist"))
    listed = [request.pk for request in answer.context["cl"].result_list]
    assert listed == [sooner.approval_id, later.approval_id, withdrawn.approval_id]
    assert not answer.context["has_add_permission"]


def test_the_admin_index_shows_what_waits_for_approval_after_the_failed_jobs(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()
    failed = reverse("admin:jobs_failedjob_changelist")
    waiting = reverse("admin:jobs_approvalrequest_changelist") + "?status__exact=PENDING"
    models = reverse("admin:jobs_job_changelist")
    assert (
        content.index(f'href="{failed}"')
        < content.index(f'href="{waiting}"')
        < content.index(f'href="{models}"')
    )
    # Auditors may not open the requests: no door for them.
    auditor = Client()
    auditor.force_login(make_auditor())
    assert "Failed jobs" in auditor.get(reverse("admin:index")).content.decode()
    assert "Waiting for approval" not in auditor.get(reverse("admin:index")).content.decode()
