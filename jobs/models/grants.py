"""Who may run which Set Actions where: run grants."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models.clusters import Cluster
from jobs.models.jobs import JobAction


def _or_zero(field: str) -> Coalesce:
    # Ids and action codes start at 1: 0 stands for "any" (or "not this kind of grantee").
    return Coalesce(field, 0, output_field=models.BigIntegerField())


class RunGrant(models.Model):
    """A group's (or one user's) leave to run an action (or any) on a cluster (or any).

    A user runs a Set Action only where a grant of one of their groups, or their own, covers
    its action and cluster (jobs.services.grants). Deleting the group, the user or the cluster
    deletes the grant with it: a grant never widens to "any" because what it named is gone.
    """

    group = models.ForeignKey(
        Group, on_delete=models.CASCADE, null=True, blank=True, related_name="run_grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="run_grants",
    )
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="run_grants",
        help_text="Empty: any cluster.",
    )
    action = models.PositiveSmallIntegerField(
        choices=JobAction.choices, null=True, blank=True, help_text="Empty: any action."
    )
    may_use_stored_credential = models.BooleanField(
        default=False,
        help_text="Its holders may also run these Set Actions (and retries) with the cluster's "
        "stored credential instead of typing a token.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, user__isnull=True)
                | Q(group__isnull=True, user__isnull=False),
                name="rungrant_group_or_user",
                violation_error_message="A grant is for a group or for a user: name one of them.",
            ),
            models.CheckConstraint(
                condition=Q(action__isnull=True) | Q(action__in=JobAction.values),
                name="rungrant_action_valid",
            ),
            # NULL means "any" here, and a unique constraint counts NULLs as all different
            # (on SQLite and PostgreSQL alike): the same grant twice is refused on its
            # columns with NULL read as 0.
            models.UniqueConstraint(
                _or_zero("group"),
                _or_zero("user"),
                _or_zero("cluster"),
                _or_zero("action"),
                name="rungrant_unique",
                violation_error_message="This grant exists already.",
            ),
        ]

    def __str__(self) -> str:
        who = f"group {self.group}" if self.group_id else f"user {self.user}"
        action = JobAction(self.action).label if self.action else "any action"
        cluster = f"cluster {self.cluster}" if self.cluster_id else "any cluster"
        return f"{who}: {action} on {cluster}"
