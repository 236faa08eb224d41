"""Approving a schedule's version: an approval rule that covers a scheduled run is met once,
by approving the version of the saved Set Action the schedule runs (editing it makes a new
version, which asks again), unless the rule is `per_run`, when each run waits for its own
approval request as any submit does (jobs.services.approving).

An approval counts while its approver is a member of the group of the rule that covers the
run now, and never the schedule owner's (refused here, and by the database: a trigger,
migration schedules/0002). The rule's `approvers_required` distinct members make it approved.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from jobs.models import ApprovalRule
from jobs.services import Preapproval, approval_needed
from schedules.models import SavedSetAction, Schedule, ScheduleApproval


class StaleVersion(ValidationError):
    """The version approved is no longer the saved Set Action's current one."""


class NothingToApprove(ValidationError):
    """No rule covers the schedule's runs, or the one that does asks per run."""


@dataclass(frozen=True)
class VersionApproval:
    """Whether a schedule's runs wait for approval, and where they stand: `needed` when a rule
    covers them; `per_run` when each run waits for its own; else `approvers` (usernames) of
    its current `version`, approved once `required` of them approved it."""

    version: int
    needed: bool
    per_run: bool = False
    rule_id: int | None = None
    group: str = ""
    required: int = 0
    approvers: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        """Its version approved as the rule requires (never, for a per-run rule)."""
        return self.needed and not self.per_run and len(self.approvers) >= self.required

    @property
    def waits(self) -> bool:
        """Whether its runs fail until its version is approved."""
        return self.needed and not self.per_run and not self.approved

    @property
    def waiting_reason(self) -> str:
        return f"version {self.version} of this schedule waits for approval by {self.group}"

    def preapproval(self, schedule: Schedule) -> Preapproval | None:
        """What lets a run through job_submit's approval rule: None unless approved once."""
        if not self.approved:
            return None
        return Preapproval(
            rule_id=self.rule_id,
            schedule_id=schedule.pk,
            version=self.version,
            approvers=self.approvers,
        )


def schedule_approval_state(
    schedule: Schedule, saved: SavedSetAction | None = None
) -> VersionApproval:
    """Where the approval of the schedule's current version stands (read, nothing written)."""
    saved = saved or SavedSetAction.objects.select_related("cluster").get(
        pk=schedule.saved_set_action_id
    )
    needed = (
        approval_needed(action=saved.action, cluster=saved.cluster, customers=saved.customer_count)
        if saved.cluster is not None
        else None
    )
    if needed is None:
        return VersionApproval(version=saved.version, needed=False)
    common = {
        "version": saved.version,
        "needed": True,
        "rule_id": needed.rule_id,
        "group": needed.group,
        "required": needed.required,
    }
    if needed.per_run:
        return VersionApproval(per_run=True, **common)
    approvers = (
        ScheduleApproval.objects.filter(
            schedule=schedule,
            version=saved.version,
            decided_by__groups__name=needed.group,
            decided_by__is_active=True,
        )
        .exclude(decided_by=schedule.owner_id)
        .order_by("decided_at", "pk")
        .values_list("decided_by__username", flat=True)
    )
    return VersionApproval(approvers=tuple(approvers), **common)


def may_approve(user, schedule: Schedule, state: VersionApproval) -> bool:
    """Whether `user` may approve the schedule's current version now."""
    return (
        state.needed
        and not state.per_run
        and user.is_active
        and user.pk != schedule.owner_id
        and user.groups.filter(name=state.group).exists()
        and user.get_username() not in state.approvers
    )


def schedule_approve(
    *, schedule: Schedule, user, version: int, ip_address: str | None = None
) -> VersionApproval:
    """Approve the schedule's `version` (the one the approver saw) as `user`, audited.

    Refused, and nothing written: PermissionDenied for the schedule's owner and for anyone
    not a member of the covering rule's group; StaleVersion when `version` is no longer the
    current one; NothingToApprove when no rule covers the runs or the rule asks per run. The
    same approver again changes nothing."""
    with transaction.atomic():
        # The saved Set Action's row held: an edit waits, so the version approved is current.
        saved = (
            SavedSetAction.objects.select_for_update(of=("self",))
            .select_related("cluster")
            .get(pk=schedule.saved_set_action_id)
        )
        if version != saved.version:
            raise StaleVersion(
                f"Version {version} is no longer current: the saved Set Action is at version "
                f"{saved.version}. Look at it again before approving."
            )
        state = schedule_approval_state(schedule, saved)
        if not state.needed:
            raise NothingToApprove("No approval rule covers this schedule's runs.")
        if state.per_run:
            raise NothingToApprove(
                f"The rule covering this schedule asks {state.group} to approve each run."
            )
        if user.pk == schedule.owner_id:
            raise PermissionDenied("The owner of a schedule cannot approve it.")
        if not user.is_active or not Group.objects.filter(name=state.group, user=user).exists():
            raise PermissionDenied(f"Only members of {state.group} approve this schedule.")
        if user.get_username() in state.approvers:
            return state
        now = timezone.now()
        try:
            with transaction.atomic():
                ScheduleApproval.objects.create(
                    schedule=schedule,
                    version=version,
                    rule=ApprovalRule.objects.get(pk=state.rule_id),
                    decided_by=user,
                    decided_at=now,
                )
        except IntegrityError:
            # The same approver at the same moment, from elsewhere: approved once.
            return schedule_approval_state(schedule, saved)
        state = schedule_approval_state(schedule, saved)
        audit_record(
            event=AuditEntry.Event.SCHEDULE_APPROVED,
            actor=user,
            ip_address=ip_address,
            details={
                "schedule": schedule.pk,
                "name": saved.name,
                "version": version,
                "rule_id": state.rule_id,
                "approvers_group": state.group,
                "approvers_required": state.required,
                "approved_by": list(state.approvers),
                "approved": state.approved,
            },
        )
    return state
