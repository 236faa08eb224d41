"""The Overview's numbers: jobs per period bin by outcome, failure rates per cluster, call times
per cluster, read from the per-hour counts (jobs.models.stats) alone, never from the jobs table.

Bins are aligned to UTC (1 h bins on the hour, 6 h bins at 00:00, 06:00, 12:00 and 18:00, 1 day
bins at midnight UTC); the last one ends at the next whole hour after now and holds the current
hour so far. Each period reads the counts of its bins' span (jobs.models.stats.SPANS), added
up over actions, operators or clusters in the database, so a read costs about the same at a
million jobs as at a hundred. Call times are estimates: a bucket's geometric middle,
within about 19% of the true percentile (jobs.models.stats).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter

from django.db import connection
from django.db.models import Case, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from jobs.models import Cluster, JobCallTimeHour, JobOutcomeHour
from jobs.models.stats import ALL_ACTIONS, EVERYONE, NO_CLUSTER, bucket_middle_ms

OUTCOMES = ["SUCCESS", "FAILED", "UNKNOWN", "CANCELLED", "DENIED", "EXPIRED"]
# Sent to their cluster: the failure rate's denominator. Cancelled, denied and expired jobs
# never were.
SENT = ["SUCCESS", "FAILED", "UNKNOWN"]
FAILED = ["FAILED", "UNKNOWN"]
PERIODS = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class OutcomeBin:
    """One bar of "jobs per hour": the jobs that ended in [start, end), by outcome."""

    start: datetime
    end: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ClusterFailures:
    cluster_id: int
    cluster_name: str
    sent: int
    failed: int
    sent_last_hour: int
    failed_last_hour: int
    rate: float | None
    rate_last_hour: float | None


@dataclass(frozen=True)
class CallTimePoint:
    start: datetime
    end: datetime
    calls: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class ClusterCallTimes:
    cluster_id: int
    cluster_name: str
    points: list[CallTimePoint]


@dataclass(frozen=True)
class Overview:
    period: str
    bin_seconds: int
    start: datetime
    end: datetime
    bins: list[OutcomeBin]
    failures: list[ClusterFailures]
    call_times: list[ClusterCallTimes]
    version: str


def overview_stats(
    *,
    period: str = "24h",
    cluster_id: int | None = None,
    action: int | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> Overview:
    """The Overview over `period` ("24h", "7d" or "30d") up to `now`, of one cluster's and one
    action's jobs when given, of one operator's (`user_id`) or everyone's (None).

    `failures` lists the clusters with a job in the period, worst now first: by the failure
    rate over the last hour (the current UTC hour and the one before it, which hold the last
    60 minutes; clusters with no job sent in it after those with one), then by the period's
    rate, then by name. `call_times` lists the clusters with a call in the period, by name.
    Jobs without a cluster count in the bins only. Raises ValueError for an unknown period.
    """
    if period not in PERIODS:
        raise ValueError(f"Unknown period {period!r}: one of {', '.join(PERIODS)}.")
    span, step = PERIODS[period]
    now = (now or timezone.now()).astimezone(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + HOUR
    step_seconds = int(step.total_seconds())
    last_start = datetime.fromtimestamp((now.timestamp() // step_seconds) * step_seconds, tz=UTC)
    count = int(span / step)
    starts = [last_start - step * (count - 1 - i) for i in range(count)]
    ends = [*starts[1:], end]
    start = starts[0]
    # The bin of each row, numbered by the database: parsing a datetime per row costs more
    # than the query at 30 days.
    bin_of = _bin_of(starts, 0, count)
    scope = Q(user_id=user_id or EVERYONE)
    if cluster_id is not None:
        scope &= Q(cluster_id=cluster_id)
    scope &= Q(action=ALL_ACTIONS if action is None else action)
    in_period = scope & Q(span_hours=step_seconds // 3600, hour__gte=start, hour__lt=end)

    counts = [dict.fromkeys(OUTCOMES, 0) for _ in starts]
    for row in _summed(JobOutcomeHour.objects.annotate(bin=bin_of), in_period, "bin", "outcome"):
        counts[row["bin"]][row["outcome"]] += row["n"]
    bins = [
        OutcomeBin(start=s, end=e, counts=c) for s, e, c in zip(starts, ends, counts, strict=True)
    ]

    by_cluster = _summed(
        JobOutcomeHour.objects.all(), in_period & ~Q(cluster_id=NO_CLUSTER), "cluster_id"
    )
    # The last hour: the current UTC hour and the one before it.
    recent = scope & Q(span_hours=1, hour__gte=end - 2 * HOUR, hour__lt=end)
    last_hour = {
        row["cluster_id"]: row
        for row in _summed(
            JobOutcomeHour.objects.all(), recent & ~Q(cluster_id=NO_CLUSTER), "cluster_id"
        )
    }
    # Per cluster, each bin's calls and the buckets of their p50 and p95.
    percentiles: dict[int, list[tuple[int, int, int] | None]] = defaultdict(lambda: [None] * count)
    calls = in_period & ~Q(cluster_id=NO_CLUSTER) & Q(count__gt=0)
    for cluster, number, calls_in_bin, p50, p95 in _percentile_buckets(calls, bin_of):
        percentiles[cluster][number] = (calls_in_bin, p50, p95)
    present = [row for row in by_cluster if row["n"] > 0]
    names = _cluster_names({row["cluster_id"] for row in present} | set(percentiles))

    failures = sorted(
        (
            _failures(row, last_hour.get(row["cluster_id"], {}), names[row["cluster_id"]])
            for row in present
        ),
        key=_worst_first,
    )
    call_times = sorted(
        (
            ClusterCallTimes(
                cluster_id=cluster,
                cluster_name=names[cluster],
                points=[
                    _point(s, e, found) for s, e, found in zip(starts, ends, per_bin, strict=True)
                ],
            )
            for cluster, per_bin in percentiles.items()
        ),
        key=lambda times: (times.cluster_name, times.cluster_id),
    )
    overview = Overview(
        period=period,
        bin_seconds=step_seconds,
        start=start,
        end=end,
        bins=bins,
        failures=failures,
        call_times=call_times,
        version="",
    )
    digest = hashlib.sha256(repr(overview).encode()).hexdigest()[:16]
    return Overview(**{**overview.__dict__, "version": digest})


def _bin_of(starts: list[datetime], first: int, stop: int) -> Value | Case:
    """The number of the bin among starts[first:stop] that holds a row's hour, by halving
    them: 5 comparisons a row for 30 bins, where one CASE branch per bin took 15 on average
    (a third of the time of the 30 days' call times query on SQLite)."""
    if stop - first == 1:
        return Value(first)
    middle = (first + stop) // 2
    return Case(
        When(hour__lt=starts[middle], then=_bin_of(starts, first, middle)),
        default=_bin_of(starts, middle, stop),
    )


def _summed(rows: QuerySet, where: Q, *keys: str) -> list[dict]:
    """The outcome `rows` matching `where`, added up by `keys`: `n` all outcomes, `sent` and
    `failed` the outcomes of those names."""
    rows = rows.filter(where).values(*keys).order_by()
    return list(
        rows.annotate(
            n=Sum("count"),
            sent=Sum("count", filter=Q(outcome__in=SENT)),
            failed=Sum("count", filter=Q(outcome__in=FAILED)),
        )
    )


def _cluster_names(ids: set[int]) -> dict[int, str]:
    """Each cluster's name; a cluster deleted since keeps its history under a made-up one."""
    names = dict(Cluster.objects.filter(pk__in=ids).values_list("pk", "name"))
    return {pk: names.get(pk, f"deleted cluster {pk}") for pk in ids}


def _rate(failed: int, sent: int) -> float | None:
    return failed / sent if sent else None


def _failures(row: dict, last_hour: dict, name: str) -> ClusterFailures:
    sent, failed = row["sent"] or 0, row["failed"] or 0
    sent_last, failed_last = last_hour.get("sent") or 0, last_hour.get("failed") or 0
    return ClusterFailures(
        cluster_id=row["cluster_id"],
        cluster_name=name,
        sent=sent,
        failed=failed,
        sent_last_hour=sent_last,
        failed_last_hour=failed_last,
        rate=_rate(failed, sent),
        rate_last_hour=_rate(failed_last, sent_last),
    )


def _worst_first(failures: ClusterFailures) -> tuple:
    last, period = failures.rate_last_hour, failures.rate
    return (
        last is None,
        -(last or 0.0),
        period is None,
        -(period or 0.0),
        failures.cluster_name,
        failures.cluster_id,
    )


def _percentile_buckets(where: Q, bin_of: Value | Case) -> Iterator[tuple[int, int, int, int, int]]:
    """(cluster, bin, calls, p50's bucket, p95's bucket) of each cluster's bins with a call
    among the call-time rows matching `where`, the nearest-rank percentiles of each bin's
    histogram.

    `where` holds one operator's (or everyone's) and one action's (or all's) rows of one span,
    so each cluster, bin and bucket has one row (the unique constraint): the rows are read as
    they are, in the read index's order (a bin's buckets in a row), as tuples, with nothing to
    add up in the database: grouping them there and a dict a row made most of the 30 days'
    reading time (9,000 rows)."""
    query = (
        JobCallTimeHour.objects.filter(where)
        .annotate(bin=bin_of)
        .order_by("hour", "cluster_id", "action", "bucket")
        .values_list("cluster_id", "bin", "bucket", "count")
        .query
    )
    # The ORM's SQL run as it is: its rows are integers on both engines, which the ORM would
    # pass one at a time through a converter each.
    with connection.cursor() as cursor:
        cursor.execute(*query.sql_with_params())
        rows = cursor.fetchall()
    for (cluster, number), found in groupby(rows, key=itemgetter(0, 1)):
        histogram = [(bucket, n) for _, _, bucket, n in found]
        calls = sum(n for _, n in histogram)
        p50, p95 = _rank(histogram, 0.5 * calls), _rank(histogram, 0.95 * calls)
        yield cluster, number, calls, p50, p95


def _rank(histogram: list[tuple[int, int]], rank: float) -> int:
    """The bucket of the nearest-rank call: the first whose running sum reaches ceil(rank)."""
    seen = 0
    for bucket, n in histogram:
        seen += n
        if seen >= rank:
            return bucket
    raise AssertionError("a rank beyond the calls counted")


def _point(start: datetime, end: datetime, found: tuple[int, int, int] | None) -> CallTimePoint:
    if found is None:
        return CallTimePoint(start=start, end=end, calls=0, p50_ms=None, p95_ms=None)
    calls, p50, p95 = found
    return CallTimePoint(
        start=start,
        end=end,
        calls=calls,
        p50_ms=bucket_middle_ms(p50),
        p95_ms=bucket_middle_ms(p95),
    )
