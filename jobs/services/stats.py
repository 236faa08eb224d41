"""The Overview's numbers: jobs per period bin by outcome, failure rates per cluster, call times
per cluster, read from the per-hour counts (jobs.models.stats) alone, never from the jobs table.

Bins are aligned to UTC (1 h bins on the hour, 6 h bins at 00:00, 06:00, 12:00 and 18:00, 1 day
bins at midnight UTC); the last one ends at the next whole hour after now and holds the current
hour so far. Each period reads the counts of its bins' span (jobs.models.stats.SPANS) of one
operator (or everyone) and one action (or all), a row per bin, cluster and outcome or bucket,
added up here in one pass, so a read costs about the same at a million jobs as at a hundred.
Call times are estimates: a bucket's geometric middle, within about 19% of the true percentile
(jobs.models.stats).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, groupby
from operator import itemgetter

from django.db import connection
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
    action = ALL_ACTIONS if action is None else action
    scope = _Scope(user_id or EVERYONE, cluster_id, action)
    in_period = scope.where(step_seconds // 3600, start, end)

    # One read of the period's rows gives both the bins and each cluster's totals.
    counts = [dict.fromkeys(OUTCOMES, 0) for _ in starts]
    by_cluster: dict[int, list[int]] = {}
    for number, cluster, outcome, n in _select(JobOutcomeHour, "outcome", in_period, bin_of):
        counts[number][outcome] += n
        if cluster != NO_CLUSTER:
            _add_up(by_cluster, cluster, outcome, n)
    bins = [
        OutcomeBin(start=s, end=e, counts=c) for s, e, c in zip(starts, ends, counts, strict=True)
    ]
    # The last hour: the current UTC hour and the one before it.
    last_hour: dict[int, list[int]] = {}
    recent = scope.where(1, end - 2 * HOUR, end)
    for _, cluster, outcome, n in _select(JobOutcomeHour, "outcome", recent, ("0", [])):
        if cluster != NO_CLUSTER:
            _add_up(last_hour, cluster, outcome, n)
    # Per cluster, each bin's calls and the buckets of their p50 and p95.
    percentiles: dict[int, list[tuple[int, int, int] | None]] = defaultdict(lambda: [None] * count)
    for cluster, number, calls_in_bin, p50, p95 in _percentile_buckets(in_period, bin_of):
        percentiles[cluster][number] = (calls_in_bin, p50, p95)
    present = {cluster: totals for cluster, totals in by_cluster.items() if totals[0] > 0}
    names = _cluster_names(set(present) | set(percentiles))

    failures = sorted(
        (
            _failures(cluster, totals, last_hour.get(cluster, [0, 0, 0]), names[cluster])
            for cluster, totals in present.items()
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


@dataclass(frozen=True)
class _Scope:
    """One operator's (or everyone's) rows of one action (or all) and one cluster (or all)."""

    user_id: int
    cluster_id: int | None
    action: int

    def where(self, span_hours: int, start: datetime, end: datetime) -> tuple[str, list]:
        """The SQL condition (and its parameters) of the scope's rows of one span whose hour
        is in [start, end): the leading columns of the tables' read indexes."""
        adapt = connection.ops.adapt_datetimefield_value
        where = (
            '"user_id" = %s AND "span_hours" = %s AND "hour" >= %s AND "hour" < %s '
            'AND "action" = %s'
        )
        params = [self.user_id, span_hours, adapt(start), adapt(end), self.action]
        if self.cluster_id is not None:
            where += ' AND "cluster_id" = %s'
            params.append(self.cluster_id)
        return where, params


def _bin_of(starts: list[datetime], first: int, stop: int) -> tuple[str, list]:
    """The SQL (and its parameters) of the number of the bin among starts[first:stop] that
    holds a row's hour, by halving them: 5 comparisons a row for 30 bins, where one CASE
    branch per bin took 15 on average (a third of the time of the 30 days' call times query
    on SQLite). Written as SQL, not as the ORM's Case and When: building and compiling those
    31 expressions twice cost more than running the queries."""
    if stop - first == 1:
        return str(first), []
    middle = (first + stop) // 2
    low, low_params = _bin_of(starts, first, middle)
    high, high_params = _bin_of(starts, middle, stop)
    moment = connection.ops.adapt_datetimefield_value(starts[middle])
    return f'CASE WHEN "hour" < %s THEN {low} ELSE {high} END', [moment, *low_params, *high_params]


def _select(
    model, key: str, where: tuple[str, list], bin_of: tuple[str, list], extra: str = ""
) -> list[tuple]:
    """(bin, cluster, `key`, count) of the rows of `model` matching `where` (and `extra`),
    as tuples from the cursor: the ORM would pass each integer through a converter, and
    group in the database what one loop adds up here (a row per hour, cluster and key in a
    scope: the unique constraint)."""
    table = connection.ops.quote_name(model._meta.db_table)
    (number, number_params), (condition, params) = bin_of, where
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {number}, "cluster_id", "{key}", "count" FROM {table} '  # noqa: S608
            f"WHERE {condition}{extra}",
            [*number_params, *params],
        )
        return cursor.fetchall()


def _add_up(totals: dict[int, list[int]], cluster: int, outcome: str, n: int) -> None:
    """Add `n` jobs of `outcome` to the cluster's [all, sent, failed]."""
    found = totals.get(cluster)
    if found is None:
        found = totals[cluster] = [0, 0, 0]
    found[0] += n
    if outcome in SENT:
        found[1] += n
    if outcome in FAILED:
        found[2] += n


def _cluster_names(ids: set[int]) -> dict[int, str]:
    """Each cluster's name; a cluster deleted since keeps its history under a made-up one."""
    names = dict(Cluster.objects.filter(pk__in=ids).values_list("pk", "name"))
    return {pk: names.get(pk, f"deleted cluster {pk}") for pk in ids}


def _rate(failed: int, sent: int) -> float | None:
    return failed / sent if sent else None


def _failures(cluster: int, totals: list[int], last_hour: list[int], name: str) -> ClusterFailures:
    _, sent, failed = totals
    _, sent_last, failed_last = last_hour
    return ClusterFailures(
        cluster_id=cluster,
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


def _percentile_buckets(
    where: tuple[str, list], bin_of: tuple[str, list]
) -> Iterator[tuple[int, int, int, int, int]]:
    """(cluster, bin, calls, p50's bucket, p95's bucket) of each cluster's bins with a call
    among the call-time rows matching `where`, the nearest-rank percentiles of each bin's
    histogram.

    `where` holds one operator's (or everyone's) and one action's (or all's) rows of one span,
    so each cluster, bin and bucket has one row (the unique constraint): the rows are read as
    they are, in the read index's order (a bin's buckets in a row), with nothing to add up in
    the database, and each bin's p50 and p95 are the first buckets whose running sum reaches
    their rank (bisect over the running sums: 9,000 rows at 30 days)."""
    rows = _select(
        JobCallTimeHour,
        "bucket",
        where,
        bin_of,
        ' AND "cluster_id" <> 0 AND "count" > 0 ORDER BY "hour", "cluster_id", "action", "bucket"',
    )
    for (number, cluster), found in groupby(rows, key=itemgetter(0, 1)):
        histogram = list(found)
        running = list(accumulate(map(itemgetter(3), histogram)))
        calls = running[-1]
        p50 = histogram[bisect_left(running, 0.5 * calls)][2]
        p95 = histogram[bisect_left(running, 0.95 * calls)][2]
        yield cluster, number, calls, p50, p95


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
