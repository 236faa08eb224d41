"""Personal API tokens: a user's keys for the JSON API, stored hashed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None) -> ApiTokenQuerySet:
        """Neither revoked nor expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal API token. The secret is shown once, at creation; only its SHA-256 is kept,
    with a short prefix in clear to find the row (api.tokens)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    read_only = models.BooleanField(
        default=False, help_text="A read-only token cannot submit, retry or cancel."
    )
    can_approve = models.BooleanField(
        default=False,
        help_text="Created with the approve scope: only such a token approves or denies "
        "approval requests, so that a pipeline's submitting token never approves its own work.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= now:
            return "expired"
        return "active"


class ApiRateWindow(models.Model):
    """How many requests of one kind (`scope`: submit or read) a token made in one minute;
    the database counts, so the limit holds across web processes and hosts (api.throttles)."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "scope", "window_start"], name="apiratewindow_unique"
            )
        ]
        indexes = [models.Index(fields=["window_start"], name="apiratewindow_start_idx")]

    def __str__(self) -> str:
        return f"{self.token_id} {self.scope} {self.window_start:%H:%M}: {self.count}"
