"""Who a user is at the company's identity provider, and the dashboard sessions it vouches for."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Identity(models.Model):
    """A user as an OpenID provider knows them. Found again by the provider's issuer and
    subject alone, never by username or e-mail, which a provider may let people change."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_signed_in_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the provider refused to renew a session: the user was made inactive "
        "then, and is active again at their next sign-in through the provider.",
    )

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="identity_issuer_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ProviderSession(models.Model):
    """A dashboard session made through the provider: when it ends at the latest, when it is
    next renewed, and the provider's tokens that renew it and end it there, encrypted
    (jobs.tokens). Removed with the session."""

    session_key = models.CharField(max_length=40, unique=True)
    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="sessions")
    refresh_token = models.TextField(blank=True)
    id_token = models.TextField(blank=True)
    signed_in_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    renew_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="providersession_expires_idx")]

    def __str__(self) -> str:
        return f"session of {self.identity_id} until {self.expires_at:%Y-%m-%d %H:%M}"
