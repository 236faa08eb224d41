"""Creating and removing approval rules, each audited with who did it. A rule is never changed
in place: a request copies what it needs of its rule when it is made, and a rule replaced by a
new one leaves a trail of both."""

from __future__ import annotations

from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ApprovalRule, JobAction

Event = AuditEntry.Event


def _details(rule: ApprovalRule) -> dict:
    return {
        "rule_id": rule.pk,
        "cluster": rule.cluster.name if rule.cluster_id else None,
        "action": JobAction(rule.action).label if rule.action else None,
        "min_customers": rule.min_customers,
        "approvers_group": rule.approvers_group.name,
        "ttl_seconds": rule.ttl_seconds,
        "approvers_required": rule.approvers_required,
    }


def approval_rule_create(
    *, rule: ApprovalRule, actor=None, ip_address: str | None = None
) -> ApprovalRule:
    """Check and save a new rule (ValidationError by field, nothing written, when it breaks
    one: a wait of 1 s to 7 days, one or two approvers), with its audit entry."""
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        audit_record(
            event=Event.APPROVAL_RULE_CREATED,
            actor=actor,
            ip_address=ip_address,
            details=_details(rule),
        )
    return rule


def approval_rule_delete(*, rule: ApprovalRule, actor=None, ip_address: str | None = None) -> None:
    """Remove a rule, with its audit entry. Requests it made keep waiting as they were."""
    details = _details(rule)
    with transaction.atomic():
        rule.delete()
        audit_record(
            event=Event.APPROVAL_RULE_DELETED,
            actor=actor,
            ip_address=ip_address,
            details=details,
        )
