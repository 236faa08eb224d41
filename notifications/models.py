"""Who is told when jobs end or wait for approval, and the outbox of what they are told.

A job's terminal transition, or an approval request's change, writes one `Notice` per event
and recipient in its own transaction (notifications.events, notifications.approval_events);
task workers deliver them (notifications.delivery), each attempt kept as a `NoticeAttempt`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models import Cluster, Job
from lib.destinations import url_destination
from notifications.event_names import FAILURES, EventName
from notifications.fields import EncryptedSecretField
from notifications.validators import validate_event_names, validate_webhook_url


def default_events() -> list[str]:
    """Every failure; successes and approvals only when asked for."""
    return [str(name) for name in FAILURES]


class NotificationPreference(models.Model):
    """What a user is e-mailed. A user without a row has the defaults: the failures of their
    own jobs, the requests waiting for their approval and the decisions on their requests."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_preference",
    )
    own_jobs = models.BooleanField("failures of my own jobs", default=True)
    all_jobs = models.BooleanField("failures of everyone's jobs", default=False)
    successes = models.BooleanField("also jobs that succeeded", default=False)
    # Narrow `all_jobs` (empty: every cluster, every action).
    clusters = models.ManyToManyField(Cluster, blank=True, related_name="+")
    actions = models.JSONField(default=list, blank=True)
    # Approvals: offered on the page to those they concern (notifications.preferences). A
    # default in the database too, so that the release before them can still write rows
    # while the migration that adds them runs.
    approval_requests = models.BooleanField(
        "requests waiting for my approval", default=True, db_default=True
    )
    approval_decisions = models.BooleanField(
        "decisions on my requests", default=True, db_default=True
    )
    # An address the user asked to be e-mailed at, used once they confirm it
    # (notifications.email_change); until then their account's address is used.
    pending_email = models.EmailField(blank=True, default="", db_default="")
    # Random, changed at each request and cleared on confirmation: a link works once.
    pending_email_nonce = models.CharField(max_length=32, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notifications of user {self.user_id}"


class WebhookEndpoint(models.Model):
    """Where notices are posted, signed with the endpoint's secret (notifications.webhooks),
    in the body its format says (notifications.formats)."""

    class Format(models.TextChoices):
        GENERIC = "generic", "Generic (signed JSON)"
        SLACK = "slack", "Slack (incoming webhook)"
        TEAMS = "teams", "Microsoft Teams (Adaptive Card)"
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"

    name = models.CharField(max_length=100, blank=True)
    # A Slack or Teams incoming webhook's URL is its credential: kept like the secret, and
    # shown only as its destination (url_shown).
    url = EncryptedSecretField("URL", validators=[MaxLengthValidator(2000), validate_webhook_url])
    secret = EncryptedSecretField(
        validators=[MinLengthValidator(16)],
        help_text="Signs every notice (HMAC-SHA256); the receiver checks the signature with it.",
    )
    # Defaults in the database too, for the release before them while the migration runs.
    format = models.CharField(
        max_length=16, choices=Format.choices, default=Format.GENERIC, db_default=Format.GENERIC
    )
    # PagerDuty's integration key: sent in each event's body, so kept like the secret.
    routing_key = EncryptedSecretField(blank=True, default="", db_default="")
    events = models.JSONField(default=default_events, validators=[validate_event_names])
    clusters = models.ManyToManyField(
        Cluster, blank=True, related_name="+", help_text="Empty: every cluster."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.name or self.url_shown

    @property
    def url_shown(self) -> str:
        """Where the endpoint posts, without what its URL may hold as a credential: the
        scheme and host (`https://hooks.slack.com/…`)."""
        return url_destination(self.url)

    def clean(self) -> None:
        if self.format == self.Format.PAGERDUTY and self.routing_key == "":
            raise ValidationError(
                {"routing_key": "A PagerDuty endpoint needs its integration (routing) key."},
                code="webhook_routing_key",
            )
        if self.format != self.Format.PAGERDUTY and self.routing_key:
            raise ValidationError(
                {"routing_key": "Only a PagerDuty endpoint has a routing key: leave it blank."},
                code="webhook_routing_key",
            )


class Notice(models.Model):
    """One event for one recipient (a user's e-mail address or a webhook endpoint): the
    outbox row, written in the transaction that ended the job (or changed the approval
    request)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        HELD = "HELD", "Held for a digest"
        DIGESTED = "DIGESTED", "Sent in a digest"
        FAILED = "FAILED", "Failed"
        DROPPED = "DROPPED", "Dropped"

    DIGEST = "digest"
    # A message an admin sends to try an endpoint (notifications.endpoint_test).
    TEST = "test"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The event's id, the same for each of its recipients and each attempt: what a receiver
    # drops repeats by.
    event_id = models.UUIDField()
    event = models.CharField(
        max_length=32,
        choices=[
            *EventName.choices,
            (DIGEST, "Digest of notices"),
            (TEST, "Test message"),
        ],
    )
    job = models.ForeignKey(
        Job, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    batch_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notices",
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="notices"
    )
    # A notice held for a digest: the digest that carries it.
    digest = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="held"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker holds the notice while it sends it, until then at the latest.
    lease_until = models.DateTimeField(null=True, blank=True)
    # When a worker first took it to send on its own (not in a digest).
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel="email", user__isnull=False, endpoint__isnull=True)
                | Q(channel="webhook", user__isnull=True, endpoint__isnull=False),
                name="notice_one_recipient",
            ),
            models.UniqueConstraint(fields=["event_id", "user"], name="notice_once_per_user"),
            models.UniqueConstraint(
                fields=["event_id", "endpoint"], name="notice_once_per_endpoint"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notice_due_idx"),
            models.Index(fields=["user", "claimed_at"], name="notice_user_claimed_idx"),
            models.Index(fields=["job"], name="notice_job_idx"),
            # The admin's list, newest first, whole and by state.
            models.Index(fields=["-created_at"], name="notice_created_idx"),
            models.Index(fields=["state", "-created_at"], name="notice_state_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id} ({self.get_channel_display()})"


class NoticeAttempt(models.Model):
    """One try at delivering a notice, and what came of it."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="attempts_made")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    ok = models.BooleanField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"attempt at {self.started_at:%Y-%m-%d %H:%M:%S}: {'ok' if self.ok else 'failed'}"
