"""A cluster's stored credential: the service token its unattended and granted runs use."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from jobs.models.clusters import Cluster


class ClusterCredential(models.Model):
    """A cluster's service token, kept only encrypted (jobs.tokens, TMS_TOKEN_KEY).

    Nothing decrypts `ciphertext` but the worker, when it calls the cluster for a job that
    uses it (jobs.services.running); everything else sees only that one is set, its keyed
    `fingerprint`, and when and by whom it was last changed. Written only through
    jobs.services.credentials, which audits each change.
    """

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="credential"
    )
    # Ciphertext, never the token: a plain text field, so nothing decrypts it on reading.
    ciphertext = models.TextField()
    fingerprint = models.CharField(
        max_length=64, help_text="Keyed HMAC of the token (jobs.tokens); never the token."
    )
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    def __str__(self) -> str:
        return f"stored credential of cluster {self.cluster_id}"
