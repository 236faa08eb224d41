"""Saved Set Actions, their versions, the schedules that run them, and each schedule's
occurrences: the rows that make one fire per occurrence, whatever the number of hosts."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from jobs.models import ApprovalRule, Cluster, Job

# The longest grace a schedule may give a missed occurrence: a week.
MAX_GRACE_SECONDS = 7 * 24 * 3600


class SavedSetAction(models.Model):
    """A Set Action an operator named to run later or on a schedule: its current content.
    Every edit writes a new SavedSetActionVersion; a run records the version it ran."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="saved_set_actions"
    )
    name = models.CharField(max_length=100)
    action = models.PositiveSmallIntegerField(choices=Job.Action.choices)
    # SET_NULL: a cluster may be deleted; the schedules that name it then fail, each alone.
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="saved_set_actions",
    )
    # One customer ID a line, as jobs.services.parse_cids returned them (checked, blanks and
    # repeats dropped, in order): a list of many thousands is one text value, not rows.
    cids = models.TextField()
    customer_count = models.PositiveIntegerField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_set_action_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def cid_list(self) -> list[str]:
        return self.cids.split("\n") if self.cids else []


class SavedSetActionVersion(models.Model):
    """What a saved Set Action held from one edit to the next: written once, never changed."""

    saved = models.ForeignKey(SavedSetAction, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    action = models.PositiveSmallIntegerField(choices=Job.Action.choices)
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The cluster's name when the version was written: it stays when the cluster goes.
    cluster_name = models.CharField(max_length=100)
    cids = models.TextField()
    customer_count = models.PositiveIntegerField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    edited_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["saved", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["saved", "version"], name="saved_set_action_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Schedule(models.Model):
    """When a saved Set Action runs: once at `run_at`, or at every occurrence of `rrule` (RFC
    5545, no DTSTART) in `timezone`, anchored at `start` (lib.recurrence)."""

    class MissingDst(models.TextChoices):
        RUN = "run", "Run at the first instant after the gap"
        SKIP = "skip", "Skip"

    class Missed(models.TextChoices):
        RUN_LATEST = "run_latest", "Run the latest missed one, within the grace period"
        SKIP = "skip", "Skip"

    class Overlap(models.TextChoices):
        SKIP = "skip", "Skip while the previous run is unfinished"
        QUEUE = "queue", "Queue behind the previous run"

    saved_set_action = models.ForeignKey(
        SavedSetAction, on_delete=models.PROTECT, related_name="schedules"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="schedules"
    )
    run_at = models.DateTimeField(null=True, blank=True)
    rrule = models.CharField(max_length=1000, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    start = models.DateTimeField(
        null=True, blank=True, help_text="The recurrence's anchor (its DTSTART)."
    )
    missing_dst = models.CharField(max_length=8, choices=MissingDst.choices, default=MissingDst.RUN)
    missed = models.CharField(max_length=16, choices=Missed.choices, default=Missed.RUN_LATEST)
    grace_seconds = models.PositiveIntegerField(
        default=900, validators=[MaxValueValidator(MAX_GRACE_SECONDS)]
    )
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    paused = models.BooleanField(default=False)
    # The scheduler has decided every occurrence up to this instant (fired, skipped, failed
    # or queued): the next pass looks only after it.
    checked_through = models.DateTimeField()
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(run_at__isnull=False) & Q(rrule=""))
                | (Q(run_at__isnull=True) & ~Q(rrule="") & Q(start__isnull=False)),
                name="schedule_once_or_recurring",
            ),
            models.CheckConstraint(
                condition=Q(missing_dst__in=["run", "skip"]), name="schedule_missing_dst_valid"
            ),
            models.CheckConstraint(
                condition=Q(missed__in=["run_latest", "skip"]), name="schedule_missed_valid"
            ),
            models.CheckConstraint(
                condition=Q(overlap__in=["skip", "queue"]), name="schedule_overlap_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["checked_through"], condition=Q(paused=False), name="schedule_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"schedule {self.pk} of {self.saved_set_action}"

    @property
    def recurring(self) -> bool:
        return bool(self.rrule)


class Occurrence(models.Model):
    """One instant a schedule was due, and what the scheduler did about it. The unique
    (schedule, occurs_at) is what makes one fire per occurrence: the host whose insert wins
    fires it, every other host's insert fails and it moves on."""

    class State(models.TextChoices):
        FIRED = "fired", "Fired"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        # Due while the previous run was unfinished (overlap "queue"): fires when it ends.
        QUEUED = "queued", "Queued behind the previous run"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="occurrences")
    occurs_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices)
    reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The saved Set Action's version it ran."
    )
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="occurrences"
    )
    batch_id = models.UUIDField(null=True, blank=True)
    recorded_at = models.DateTimeField(default=now)
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["schedule", "-occurs_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "occurs_at"], name="occurrence_once_per_schedule"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["fired", "skipped", "failed", "queued"]),
                name="occurrence_state_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["schedule", "occurs_at"],
                condition=Q(state="queued"),
                name="occurrence_queued_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} at {self.occurs_at:%Y-%m-%d %H:%M} UTC: {self.state}"


class ScheduleApproval(models.Model):
    """An approver's approval of one version of a schedule's saved Set Action: with as many of
    them as the covering rule requires, its scheduled runs go out without a request each
    (schedules.services.approvals). Editing the saved Set Action makes a new version, which
    none has approved yet.

    The database itself refuses an approval by the schedule's owner (a trigger, migration
    schedules/0002), whatever the row says; and a schedule's owner never changes afterwards
    to make an existing approval the owner's own."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="approvals")
    version = models.PositiveIntegerField(help_text="The saved Set Action's version approved.")
    # The rule that asked for it; the approval counts for whichever rule covers the run, as
    # long as its approver is a member of that rule's group.
    rule = models.ForeignKey(
        ApprovalRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["schedule", "version", "decided_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "version", "decided_by"],
                name="schedule_approval_once_per_approver",
            ),
        ]

    def __str__(self) -> str:
        return f"schedule {self.schedule_id} v{self.version} approved by {self.decided_by_id}"
