"""Change freezes and maintenance windows: when a cluster's jobs may not be sent.

A freeze (one cluster, or all of them) refuses new Set Actions while it lasts and holds the
jobs already queued until it ends; a cluster with maintenance windows takes jobs at any time
but sends them only while one of its windows is open. Both are enforced where a worker claims
a job (jobs.services.running), so no path to a cluster goes around them; what they mean at an
instant is computed in jobs.services.freezes.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now

from jobs.models.clusters import Cluster
from lib.recurrence import MAX_RULE_LENGTH, RecurrenceError, check_rule, zone

# The longest a maintenance window may stay open: a week (a longer one is no window).
MAX_WINDOW_SECONDS = 7 * 24 * 3600


class ChangeFreeze(models.Model):
    """From `starts_at` until `ends_at`, nothing is sent to the cluster (or to any cluster when
    it is empty); an admin may override it for one Set Action, with a reason."""

    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: every cluster.",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="Jobs held by the freeze are sent from then on.")
    reason = models.CharField(max_length=500, help_text="Shown to whoever it refuses or holds.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-starts_at", "-pk"]
        permissions = [
            ("override_freeze", "Can send a Set Action during a change freeze, with a reason"),
        ]
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="freeze_ends_starts_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="freeze_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        where = self.cluster.name if self.cluster_id else "all clusters"
        ends = self.ends_at.astimezone(UTC)
        return f"Freeze of {where} until {ends:%Y-%m-%d %H:%M} UTC: {self.reason}"

    def clean(self) -> None:
        if not self.reason.strip():
            raise ValidationError({"reason": ["Say why: operators see the reason."]})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": ["The freeze must end after it starts."]})


class MaintenanceWindow(models.Model):
    """The cluster's jobs are sent only while one of its windows is open: each window opens at
    every occurrence of an RFC 5545 RRULE in a time zone (anchored at `starts_at`, its DTSTART)
    and stays open `duration_seconds`. A cluster without windows is always open."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    rrule = models.CharField(
        max_length=MAX_RULE_LENGTH,
        help_text="An RFC 5545 RRULE without DTSTART, "
        "e.g. FREQ=WEEKLY;BYDAY=SA;BYHOUR=22;BYMINUTE=0",
    )
    timezone = models.CharField(
        max_length=64, help_text="The IANA time zone the rule runs in, e.g. Europe/Berlin."
    )
    starts_at = models.DateTimeField(
        default=now,
        help_text="The rule's DTSTART: its first possible opening, and the hour, minute and "
        "second of the openings the rule does not set.",
    )
    duration_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(60), MaxValueValidator(MAX_WINDOW_SECONDS)],
        help_text="How long each window stays open (1 minute to 7 days).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["cluster", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_seconds__gte=1, duration_seconds__lte=MAX_WINDOW_SECONDS),
                name="window_duration_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rrule} ({self.timezone}) for {self.duration}"

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.duration_seconds)

    def clean(self) -> None:
        errors = {}
        try:
            check_rule(self.rrule)
        except RecurrenceError as exc:
            errors["rrule"] = [str(exc)]
        try:
            zone(self.timezone)
        except RecurrenceError as exc:
            errors["timezone"] = [str(exc)]
        if errors:
            raise ValidationError(errors)
