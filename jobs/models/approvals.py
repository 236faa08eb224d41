"""Four-eyes approvals: the rules that say which Set Actions wait for a second person, the
request each such submission waits in, and the decisions on it.

The database itself refuses a decision by the request's submitter (a trigger, migration
jobs/0015), whatever the decision row says, so no path (the ORM, raw SQL, another client) lets
anyone approve their own request.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.clusters import Cluster
from jobs.models.jobs import JobAction

# The longest a request may wait for its decision.
MAX_TTL_SECONDS = 7 * 24 * 3600


def default_ttl_seconds() -> int:
    """TMS_APPROVAL_TTL: how long a new rule's requests wait, unless the rule says."""
    return settings.TMS_APPROVAL_TTL


class ApprovalRule(models.Model):
    """Set Actions that wait for approval: on a cluster (or any), of an action (or any), of
    at least `min_customers` customers (0: always), approved by members of a group."""

    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: every cluster.",
    )
    action = models.PositiveSmallIntegerField(
        choices=JobAction.choices, null=True, blank=True, help_text="Empty: every action."
    )
    min_customers = models.PositiveIntegerField(
        default=0,
        help_text="The rule covers submissions of at least this many customers (0: every one).",
    )
    approvers_group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Its members approve; the submitter never approves their own request.",
    )
    ttl_seconds = models.PositiveIntegerField(
        default=default_ttl_seconds,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TTL_SECONDS)],
        help_text="How long a request waits for its decision before it expires (at most 7 days).",
    )
    approvers_required = models.PositiveSmallIntegerField(
        default=1,
        choices=[(1, "One approver"), (2, "Two distinct approvers")],
        help_text="Two: the request is approved once two different members approved it.",
    )
    # A scheduled run the rule covers is let through by approving its schedule's version once
    # (schedules.services.approvals); per run, each scheduled run waits for its own approval.
    per_run = models.BooleanField(
        default=False, help_text="Each scheduled run waits for its own approval."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ttl_seconds__gte=1, ttl_seconds__lte=MAX_TTL_SECONDS),
                name="approvalrule_ttl_range",
            ),
            models.CheckConstraint(
                condition=Q(approvers_required__in=[1, 2]),
                name="approvalrule_approvers_required_1_or_2",
            ),
            models.CheckConstraint(
                condition=Q(min_customers__gte=0), name="approvalrule_min_customers_not_negative"
            ),
        ]

    def __str__(self) -> str:
        cluster = self.cluster.name if self.cluster_id else "any cluster"
        action = JobAction(self.action).label if self.action else "any action"
        return f"{action} on {cluster}, {self.min_customers}+ customers: {self.approvers_group}"


class ApprovalRequestQuerySet(models.QuerySet):
    def pending(self, now) -> ApprovalRequestQuerySet:
        """Requests still open: pending and not past their deadline at `now` (one past it
        can no longer be decided, even before housekeeping ends it)."""
        return self.filter(status=ApprovalRequest.Status.PENDING, expires_at__gt=now)

    def waiting_for(self, user, now) -> ApprovalRequestQuerySet:
        """The open requests `user` may decide: of a group of theirs, not their own, and not
        decided by them yet (the first of two approvals)."""
        return (
            self.pending(now)
            .filter(approvers_group__in=Group.objects.filter(user=user))
            .exclude(submitter=user)
            .exclude(pk__in=ApprovalDecision.objects.filter(decider=user).values("request_id"))
        )


class ApprovalRequest(models.Model):
    """One submission (one job, or a whole batch) waiting for its decision. What decides it
    is copied from the rule when it is made, so that a rule changed later changes nothing
    that already waits; `digest` is what was requested (see jobs.services.digests)."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        DENIED = "DENIED", "Denied"
        EXPIRED = "EXPIRED", "Expired"
        WITHDRAWN = "WITHDRAWN", "Withdrawn"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(
        ApprovalRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    # Never changes: a trigger refuses an UPDATE of it (migration jobs/0015).
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approvers_group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    approvers_required = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    batch_id = models.UUIDField(null=True, blank=True)
    digest = models.CharField(
        max_length=64, help_text="SHA-256 of what was requested, over every job's digest."
    )
    part_digests = models.JSONField(
        default=list, help_text="Each job's digest, in the batch's order (one for one job)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    # When housekeeping took its reminder (at half its wait): set once, by compare-and-set, so
    # that of several housekeeping processes one sends it.
    reminded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ApprovalRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="PENDING"),
                name="approvalrequest_pending_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "APPROVED", "DENIED", "EXPIRED", "WITHDRAWN"]),
                name="approvalrequest_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(approvers_required__in=[1, 2]),
                name="approvalrequest_approvers_required_1_or_2",
            ),
        ]

    def __str__(self) -> str:
        return f"approval {self.pk} ({self.status})"

    @property
    def reminder_due_at(self) -> datetime:
        """Half its wait: when its approvers are reminded, if it still waits."""
        return self.created_at + (self.expires_at - self.created_at) / 2


class ApprovalDecision(models.Model):
    """An approver's approval or denial of a request, with the digest of what they decided."""

    class Verdict(models.TextChoices):
        APPROVE = "APPROVE", "Approve"
        DENY = "DENY", "Deny"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    decider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    digest = models.CharField(max_length=64, help_text="The request's digest the decider saw.")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "decider"], name="approvaldecision_one_per_decider"
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["APPROVE", "DENY"]), name="approvaldecision_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict="APPROVE") | ~Q(comment=""),
                name="approvaldecision_deny_has_comment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of {self.request_id} by {self.decider_id}"
