"""The audit log in the admin: read-only for everyone, filtered and searched."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from audit.models import AuditEntry
from audit.services import audit_bulk_append, audit_record
from tests.admin_helpers import ago, make_auditor, make_superuser

AUDIT = reverse("admin:audit_auditentry_changelist")
JOB_ID = uuid.UUID("7c4e2a10-0000-4000-8000-00000000abcd")


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


def listed(response) -> list[AuditEntry]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def entry_url(entry: AuditEntry, view: str = "change") -> str:
    return reverse(f"admin:audit_auditentry_{view}", args=[entry.pk])


@pytest.fixture
def entry(operator):
    return audit_record(
        event=AuditEntry.Event.JOB_FAILED,
        actor=operator,
        job_id=JOB_ID,
        ip_address="10.0.0.7",
        details={"http_status": 502, "note": "<b>bad gateway</b>"},
    )


@pytest.fixture
def auditor_client(client, db):
    client.force_login(make_auditor())
    return client


@pytest.mark.parametrize("who", ["superuser", "auditor"])
def test_audit_entries_cannot_be_added_changed_or_deleted(admin_client, auditor_client, entry, who):
    client = admin_client if who == "superuser" else auditor_client
    before = list(AuditEntry.objects.values())

    add = client.post(reverse("admin:audit_auditentry_add"), {"event": "auth.login"})
    change = client.post(entry_url(entry), {"event": "auth.login", "actor_username": "x"})
    delete = client.post(entry_url(entry, "delete"), {"post": "yes"})
    bulk = client.post(
        AUDIT, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [entry.pk], "post": "yes"}
    )

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    # With no action on offer, the POST just shows the list again.
    assert bulk.status_code == 200
    assert list(AuditEntry.objects.values()) == before


def test_audit_log_offers_no_action(admin_client, entry):
    assert admin_client.get(AUDIT).context["action_form"] is None


def test_audit_entry_page_is_read_only_with_escaped_formatted_details(admin_client, entry):
    content = admin_client.get(entry_url(entry)).content.decode()
    assert 'name="_save"' not in content
    assert "deletelink" not in content
    assert "{\n  &quot;http_status&quot;: 502,\n  &quot;note&quot;: &quot;&lt;b&gt;bad" in content
    assert "<b>bad gateway</b>" not in content
    job_url = reverse("admin:jobs_job_change", args=[JOB_ID])
    assert f'<a href="{job_url}"><code>{JOB_ID}</code></a>' in content


def test_audit_log_lists_newest_first(admin_client, operator):
    old = audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=operator)
    new = audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor=operator)
    assert listed(admin_client.get(AUDIT, {"q": "op1"})) == [new, old]


def test_audit_log_filters_by_event(admin_client, entry, operator):
    audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=operator)
    assert listed(admin_client.get(AUDIT, {"event__exact": "job.failed"})) == [entry]


def test_audit_log_filters_by_date(admin_client, operator):
    recent = audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=operator)
    audit_bulk_append(
        [
            AuditEntry(
                event=AuditEntry.Event.AUTH_LOGIN,
                actor_username="op1",
                created_at=ago(60 * 24 * 400),
            )
        ]
    )
    response = admin_client.get(
        AUDIT, {"q": "op1", "created_at__gte": str(ago(60)), "created_at__lt": str(ago(-60))}
    )
    assert listed(response) == [recent]


@pytest.mark.parametrize("term", [str(JOB_ID), str(JOB_ID)[:8], "7C4E2A10-0000"])
def test_audit_log_search_by_job_id_or_its_beginning(admin_client, entry, operator, term):
    audit_record(event=AuditEntry.Event.JOB_FAILED, actor=operator, job_id=uuid.uuid4())
    audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=operator)
    assert listed(admin_client.get(AUDIT, {"q": term})) == [entry]


def test_audit_log_search_by_actor(admin_client, entry):
    audit_record(event=AuditEntry.Event.AUTH_LOGIN_FAILED, actor_username="op10")
    assert listed(admin_client.get(AUDIT, {"q": "op1"})) == [entry]


def test_imported_event_outside_the_choices_is_shown_as_it_is(admin_client):
    audit_bulk_append([AuditEntry(event="legacy.pe_direct", actor_username="old-op")])
    assert '<td class="field-event_name">legacy.pe_direct</td>' in (
        admin_client.get(AUDIT).content.decode()
    )


def test_operator_cannot_see_the_audit_log(client, operator, entry):
    client.force_login(operator)
    assert client.get(entry_url(entry)).status_code == 302
