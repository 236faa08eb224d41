"""What a user asks to be e-mailed: the one module that reads and writes their preferences.

A user without a saved row has the defaults (the failures of their own jobs, the requests
waiting for their approval, the decisions on their requests). Subscribing to everyone's jobs,
and narrowing that to clusters or actions, is for users who may see every job
(`jobs.view_all_jobs`); notifications.events checks that again when a job ends, for users
who lose the permission later. The approvals' choices are offered to those they concern
(`approvals_offered`); a save that leaves one out keeps what is saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ApprovalRequest, ApprovalRule, Cluster, Job
from notifications.models import NotificationPreference

ALL_JOBS_REFUSED = (
    "Only users who may see everyone's jobs can be e-mailed about them, or choose clusters "
    "or actions."
)


@dataclass(frozen=True)
class ApprovalsOffered:
    """Which approvals' choices concern the user."""

    requests: bool
    decisions: bool


def approvals_offered(user) -> ApprovalsOffered:
    """Requests waiting for their approval, for members of a group that a rule or a pending
    request names; decisions on their requests, for users who may run Set Actions while a
    rule exists, and for those who ever submitted a request."""
    groups = user.groups.all()
    return ApprovalsOffered(
        requests=ApprovalRule.objects.filter(approvers_group__in=groups).exists()
        or ApprovalRequest.objects.filter(
            status=ApprovalRequest.Status.PENDING, approvers_group__in=groups
        ).exists(),
        decisions=(user.has_perm("jobs.run_set_action") and ApprovalRule.objects.exists())
        or ApprovalRequest.objects.filter(submitter=user).exists(),
    )


def preference_for(user) -> NotificationPreference:
    """The user's saved preferences, or unsaved ones holding the defaults."""
    saved = NotificationPreference.objects.filter(user=user).first()
    return saved or NotificationPreference(user=user)


def _values(preference: NotificationPreference | None) -> dict[str, Any]:
    """What the audit trail records of preferences (None: the defaults)."""
    clusters: list[str] = []
    if preference is None:
        preference = NotificationPreference()
    else:
        clusters = sorted(preference.clusters.values_list("name", flat=True))
    return {
        "own_jobs": preference.own_jobs,
        "all_jobs": preference.all_jobs,
        "successes": preference.successes,
        "clusters": clusters,
        "actions": sorted(preference.actions),
        "approval_requests": preference.approval_requests,
        "approval_decisions": preference.approval_decisions,
    }


def _locked(user) -> NotificationPreference | None:
    return NotificationPreference.objects.select_for_update().filter(user=user).first()


def preference_save(
    *,
    user,
    own_jobs: bool,
    all_jobs: bool,
    successes: bool,
    clusters: Iterable[Cluster],
    actions: Iterable[int],
    approval_requests: bool | None = None,
    approval_decisions: bool | None = None,
    ip_address: str | None = None,
) -> NotificationPreference:
    """Save the user's preferences and their clusters in one transaction, with one
    `notifications.changed` audit entry holding the values before and after of what changed.

    Raises ValidationError and writes nothing for an action that is not a Job.Action, and for
    `all_jobs`, clusters or actions asked by a user without `jobs.view_all_jobs`. Saving what
    is already there (the defaults, for a user without a row) writes nothing. An approvals'
    choice left None keeps what is saved.
    """
    clusters = set(clusters)
    actions = list(actions)
    errors: dict[str, list[str]] = {}
    # bool is an int, and True would pass for Trans-Begin.
    unknown = [
        a
        for a in actions
        if not isinstance(a, int) or isinstance(a, bool) or a not in Job.Action.values
    ]
    if unknown:
        errors["actions"] = [f"Unknown actions: {', '.join(map(repr, unknown))}."]
    if (all_jobs or clusters or actions) and not user.has_perm("jobs.view_all_jobs"):
        errors[NON_FIELD_ERRORS] = [ALL_JOBS_REFUSED]
    if errors:
        raise ValidationError(errors)
    after = {
        "own_jobs": own_jobs,
        "all_jobs": all_jobs,
        "successes": successes,
        "clusters": sorted(cluster.name for cluster in clusters),
        "actions": sorted({int(action) for action in actions}),
    }
    kept = {"approval_requests": approval_requests, "approval_decisions": approval_decisions}
    with transaction.atomic():
        # Locked, so that saves at once each record what the other left.
        preference = _locked(user)
        before = _values(preference)
        if preference is None and before != _after(after, kept, before):
            # A delivery worker deciding on a digest creates the row too (with the defaults):
            # whoever made it, it is changed from what it holds.
            NotificationPreference.objects.get_or_create(user=user)
            preference = _locked(user)
            before = _values(preference)
        after = _after(after, kept, before)
        changed = [name for name in after if before[name] != after[name]]
        if not changed:
            return preference or NotificationPreference(user=user)
        preference.own_jobs = own_jobs
        preference.all_jobs = all_jobs
        preference.successes = successes
        preference.actions = after["actions"]
        preference.approval_requests = after["approval_requests"]
        preference.approval_decisions = after["approval_decisions"]
        preference.save()
        preference.clusters.set(clusters)
        audit_record(
            event=AuditEntry.Event.NOTIFICATIONS_CHANGED,
            actor=user,
            ip_address=ip_address,
            details={
                "before": {name: before[name] for name in changed},
                "after": {name: after[name] for name in changed},
            },
        )
    return preference


def _after(after: dict[str, Any], kept: dict[str, bool | None], before: dict[str, Any]) -> dict:
    """The values asked, each choice left None being what it was."""
    return after | {name: before[name] if value is None else value for name, value in kept.items()}
