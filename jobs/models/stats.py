"""Per-hour counts of ended jobs, kept by the transaction that ends a job (jobs.services.counting),
which the Overview page and GET /api/v1/stats read instead of the jobs table.

Each ended job is counted four times in each table: in everyone's row (`user_id` 0) and in its
operator's row, each for its action and for every action together (`action` 0, which an
Overview without an action filter reads: a fifth of the rows, with five actions). 0, not
NULL, means everyone and every action: a unique constraint does not match NULLs on SQLite (nor
on PostgreSQL without NULLS NOT DISTINCT), and the upsert that adds to a row needs its
conflict. `cluster_id` is a plain integer, not a foreign key, so that a cluster deleted
after its jobs leaves its history readable; 0 is a job without a cluster (an imported job whose
URL matched none).

Each job is counted in three spans: its hour, its 6 hours (from 00:00, 06:00, 12:00 or 18:00
UTC) and its UTC day, the bins of the Overview's three periods, so that a read of 30 days
adds up 30 rows per cluster, action and outcome, not 720."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.db import models

EVERYONE = 0
ALL_ACTIONS = 0
NO_CLUSTER = 0
# The spans counted, in hours: each a bin of the Overview.
SPANS = (1, 6, 24)
# Call times in ms fall into log buckets, 4 per doubling (each about 19% wide), from 1 ms
# (bucket 0 holds everything shorter) to 1 h (the last bucket holds everything longer).
BUCKETS_PER_DOUBLING = 4
LAST_BUCKET = int(BUCKETS_PER_DOUBLING * math.log2(3_600_000))


def call_time_bucket(started_at: datetime, finished_at: datetime) -> int:
    """The histogram bucket of a call that ran from `started_at` to `finished_at`."""
    ms = (finished_at - started_at) / timedelta(milliseconds=1)
    if ms <= 1:
        return 0
    return min(int(BUCKETS_PER_DOUBLING * math.log2(ms)), LAST_BUCKET)


def bucket_middle_ms(bucket: int) -> float:
    """The estimate a bucket stands for: its geometric middle, in ms."""
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING)


def count_hour(finished_at: datetime | None, created_at: datetime) -> datetime:
    """The UTC hour a job is counted in: the hour it ended; for an imported UNKNOWN job, which
    never recorded an end, the hour it was created."""
    return (finished_at or created_at).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def span_start(hour: datetime, span_hours: int) -> datetime:
    """The start of the span of `span_hours` (aligned to UTC midnight) that holds `hour`."""
    seconds = span_hours * 3600
    return datetime.fromtimestamp(hour.timestamp() // seconds * seconds, tz=UTC)


class JobOutcomeHour(models.Model):
    """How many jobs of one cluster, action and operator (or everyone's) ended in an outcome
    within one span of UTC hours."""

    user_id = models.PositiveIntegerField(help_text="The operator's id; 0: everyone's jobs.")
    span_hours = models.PositiveSmallIntegerField(help_text="1, 6 or 24 (SPANS).")
    hour = models.DateTimeField(help_text="The UTC hour the span the jobs ended in starts at.")
    cluster_id = models.PositiveIntegerField(help_text="The cluster's id; 0: none.")
    action = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=16)
    count = models.IntegerField(default=0)

    class Meta:
        # Reads take one operator's (or everyone's) rows of one span and one action (or all,
        # 0) over a range of hours: the read index, those columns first, then the hour, the
        # cluster, the outcome and the count, finds them in one range and answers them
        # without reading the table. The action before the hour: after it, a range of hours
        # also held the 5 actions' rows, read and passed over (6 times the rows at 30 days).
        indexes = [
            models.Index(
                fields=[
                    "user_id",
                    "span_hours",
                    "action",
                    "hour",
                    "cluster_id",
                    "outcome",
                    "count",
                ],
                name="joboutcomehour_by_action_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "span_hours", "hour", "cluster_id", "action", "outcome"],
                name="joboutcomehour_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} +{self.span_hours}h {self.outcome} {self.count}"


class JobCallTimeHour(models.Model):
    """How many calls of one cluster, action and operator (or everyone's) that ended within
    one span of UTC hours took a time in one bucket (`call_time_bucket`)."""

    user_id = models.PositiveIntegerField(help_text="The operator's id; 0: everyone's jobs.")
    span_hours = models.PositiveSmallIntegerField(help_text="1, 6 or 24 (SPANS).")
    hour = models.DateTimeField(help_text="The UTC hour the span the calls ended in starts at.")
    cluster_id = models.PositiveIntegerField(help_text="The cluster's id; 0: none.")
    action = models.PositiveSmallIntegerField()
    bucket = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        # As JobOutcomeHour's: a bin's buckets in a row, in the order the percentiles need.
        indexes = [
            models.Index(
                fields=["user_id", "span_hours", "action", "hour", "cluster_id", "bucket", "count"],
                name="jobcalltimehour_by_action_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "span_hours", "hour", "cluster_id", "action", "bucket"],
                name="jobcalltimehour_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} +{self.span_hours}h bucket {self.bucket} {self.count}"
