"""The Notifications page offers the approvals' choices to the users they concern: requests
waiting for their approval to members of an approvers group, decisions on their requests to
those who may submit while a rule exists; what is not offered is kept as saved."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEntry
from jobs.models import ApprovalRule
from jobs.services import job_submit
from notifications.models import NotificationPreference
from notifications.preferences import approvals_offered, preference_save
from tests.helpers import TOKEN, make_user, row_counts

PAGE = "/accounts/notifications/"
CHANGED = AuditEntry.Event.NOTIFICATIONS_CHANGED
FIELDS = ("approval_requests", "approval_decisions")


@pytest.fixture
def rule(db):
    return ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))


def offered(client, user) -> dict[str, bool]:
    """Each approvals' checkbox on the user's page: whether it is ticked; absent: left out."""
    client.force_login(user)
    html = client.get(PAGE).content.decode()
    found = {}
    for name in FIELDS:
        tag = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', html)
        if tag:
            found[name] = " checked" in tag[0]
    assert ('<fieldset id="approvals">' in html) == bool(found)
    return found


def test_without_a_rule_nothing_of_approvals_is_offered(client, operator):
    assert offered(client, operator) == {}
    assert offered(client, make_user("ap1", "Approvers")) == {}


def test_each_user_is_offered_what_concerns_them_ticked_by_default(client, operator, rule):
    assert offered(client, operator) == {"approval_decisions": True}
    assert offered(client, make_user("ap1", "Approvers")) == {"approval_requests": True}
    both = make_user("op2", "Operators")
    both.groups.add(Group.objects.get(name="Approvers"))
    assert offered(client, both) == {"approval_requests": True, "approval_decisions": True}
    assert offered(client, make_user("aud", "Auditors")) == {}


def test_a_pending_request_keeps_offering_its_kinds_after_its_rule_went(operator, cluster, rule):
    approver = make_user("ap1", "Approvers")
    job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    rule.delete()
    assert approvals_offered(operator).decisions
    assert approvals_offered(approver).requests


def test_an_approver_turns_requests_off_audited(client, rule):
    approver = make_user("ap1", "Approvers")
    client.force_login(approver)
    assert client.post(PAGE, {"own_jobs": "on"}).status_code == 302
    assert NotificationPreference.objects.get(user=approver).approval_requests is False
    assert AuditEntry.objects.get(event=CHANGED).details == {
        "before": {"approval_requests": True},
        "after": {"approval_requests": False},
    }
    assert offered(client, approver) == {"approval_requests": False}
    client.post(PAGE, {"own_jobs": "on", "approval_requests": "on"})
    assert NotificationPreference.objects.get(user=approver).approval_requests is True


def test_what_is_not_offered_is_kept_whatever_is_posted(client, operator):
    NotificationPreference.objects.create(user=operator, approval_decisions=False)
    client.force_login(operator)
    counts = row_counts()
    response = client.post(PAGE, {"own_jobs": "on", "approval_decisions": "on"})
    assert response.status_code == 302
    assert row_counts() == counts
    assert NotificationPreference.objects.get().approval_decisions is False


def test_the_service_keeps_a_choice_left_out_and_saves_one_given(operator):
    common = {
        "own_jobs": True,
        "all_jobs": False,
        "successes": False,
        "clusters": [],
        "actions": [],
    }
    counts = row_counts()
    preference_save(user=operator, **common)
    assert row_counts() == counts
    preference_save(user=operator, approval_decisions=False, **common)
    saved = NotificationPreference.objects.get()
    assert (saved.approval_requests, saved.approval_decisions) == (True, False)
    preference_save(user=operator, approval_requests=False, **common)
    saved.refresh_from_db()
    assert (saved.approval_requests, saved.approval_decisions) == (False, False)
