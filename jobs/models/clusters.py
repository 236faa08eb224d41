"""The clusters operators run Set Actions against."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q

from jobs.validators import endpoint_key, validate_cluster_endpoint


class Cluster(models.Model):
    """A TMS cluster whose HTTP API runs Set Actions. Operators pick one; nobody types a URL."""

    class Environment(models.TextChoices):
        """What an admin says the cluster is, shown beside its name wherever an operator is
        about to send to it: a word and a colour, so that production is not mistaken for a
        test cluster."""

        PRODUCTION = "production", "production"
        STAGING = "staging", "staging"
        TEST = "test", "test"

    name = models.CharField(max_length=100, unique=True)
    base_url = models.CharField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="For example https://tms-eu1.example.net (http or https only).",
    )
    action_path = models.CharField(
        max_length=200,
        default="/api/set_action",
        help_text="Path of the Set Action endpoint, appended to the base URL.",
    )
    timeout_seconds = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="The most a whole call to the cluster may take.",
    )
    max_cids_per_request = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1)],
        help_text="Larger submissions are split into one job per chunk of this size.",
    )
    max_concurrent_calls = models.PositiveIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="The most calls to this cluster at once, from all workers on all hosts; "
        "jobs beyond it wait their turn.",
    )
    verify_tls = models.BooleanField(default=True)
    environment = models.CharField(
        max_length=20,
        choices=Environment.choices,
        blank=True,
        help_text="Shown to operators beside the cluster's name on Set Action, its review, "
        "retries and job pages. Blank: no label.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(base_url__startswith="http://") | Q(base_url__startswith="https://"),
                name="cluster_base_url_http_or_https",
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=1), name="cluster_timeout_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_cids_per_request__gte=1), name="cluster_max_cids_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_calls__gte=1), name="cluster_max_calls_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The endpoint rules (jobs.validators), and no other active cluster at the same
        endpoint: two would let one customer be in flight twice on one real cluster."""
        validate_cluster_endpoint(self.base_url, self.action_path)
        if not self.is_active:
            return
        key = endpoint_key(self.base_url, self.action_path)
        others = Cluster.objects.filter(is_active=True).exclude(pk=self.pk)
        for name, base_url, action_path in others.values_list("name", "base_url", "action_path"):
            if endpoint_key(base_url, action_path) == key:
                raise ValidationError(
                    {
                        "base_url": [
                            f"The active cluster {name} already calls this endpoint; "
                            "deactivate it first, or use it."
                        ]
                    }
                )
