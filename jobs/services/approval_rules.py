"""Creating and removing approval rules, each audited with who did it. A rule is never changed
in place: a request copies what it needs of its rule when it is made, and a rule replaced by a
new one leaves a trail of both."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ApprovalRule, JobAction

Event = AuditEntry.Event

# What makes a rule: two rules equal in all of these do the same.
_FIELDS = (
    "cluster",
    "action",
    "min_customers",
    "approvers_group",
    "ttl_seconds",
    "approvers_required",
    "per_run",
)


class DuplicateRule(ValidationError):
    """A rule equal in every field exists already."""


def _details(rule: ApprovalRule) -> dict:
    return {
        "rule_id": rule.pk,
        "cluster": rule.cluster.name if rule.cluster_id else None,
        "action": JobAction(rule.action).label if rule.action else None,
        "min_customers": rule.min_customers,
        "approvers_group": rule.approvers_group.name,
        "ttl_seconds": rule.ttl_seconds,
        "approvers_required": rule.approvers_required,
        "per_run": rule.per_run,
    }


def approval_rule_create(
    *, rule: ApprovalRule, actor=None, ip_address: str | None = None
) -> ApprovalRule:
    """Check and save a new rule (ValidationError by field, nothing written, when it breaks
    one: a wait of 1 s to 7 days, one or two approvers), with its audit entry.

    DuplicateRule, and nothing written, when a rule equal in every field exists: a second copy
    would change nothing but would keep applying once the first is deleted. Rules of one
    group are made one at a time (its row locked on PostgreSQL; SQLite's transactions take
    the write lock when they start), so two equal requests at once make one rule."""
    rule.full_clean()
    with transaction.atomic():
        Group.objects.select_for_update().get(pk=rule.approvers_group_id)
        same = ApprovalRule.objects.filter(**{name: getattr(rule, name) for name in _FIELDS})
        if same.exists():
            raise DuplicateRule(f"This rule exists already ({same.first()}).")
        rule.save()
        audit_record(
            event=Event.APPROVAL_RULE_CREATED,
            actor=actor,
            ip_address=ip_address,
            details=_details(rule),
        )
    return rule


def approval_rule_delete(*, rule: ApprovalRule, actor=None, ip_address: str | None = None) -> bool:
    """Remove a rule, with its audit entry. Requests it made keep waiting as they were. False,
    and nothing written, when it was deleted already (by another request at the same moment)."""
    details = _details(rule)
    with transaction.atomic():
        deleted, _ = ApprovalRule.objects.filter(pk=rule.pk).delete()
        if not deleted:
            return False
        audit_record(
            event=Event.APPROVAL_RULE_DELETED,
            actor=actor,
            ip_address=ip_address,
            details=details,
        )
    return True
