"""The Overview's call-time percentiles are the nearest-rank ones of each bin's histogram,
found from running sums (jobs.services.stats._percentile_buckets)."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from model_bakery import baker

from jobs.models import Cluster
from jobs.models.stats import bucket_middle_ms, call_time_bucket
from jobs.services import EndedJob, count_jobs_added, count_jobs_removed, overview_stats

NOW = dt.datetime(2026, 3, 10, 14, 20, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)


def calls(user, cluster, ms: list[float], *, hours_ago: float = 0.1) -> None:
    at = NOW - dt.timedelta(hours=hours_ago)
    count_jobs_added(
        [EndedJob("SUCCESS", user.pk, cluster.pk, 1, at, at - each * MS, at) for each in ms]
    )


def middle(ms: float) -> float:
    return bucket_middle_ms(call_time_bucket(NOW, NOW + ms * MS))


def nearest_rank(ms: list[float], fraction: float) -> float:
    """The bucket middle of the ceil(fraction * n)-th of the n calls, as counted."""
    ordered = sorted(middle(each) for each in ms)
    return ordered[math.ceil(fraction * len(ordered)) - 1]


@pytest.fixture
def cluster(db):
    return baker.make(Cluster, name="a", base_url="http://127.0.0.1:9")


def test_the_rank_is_reached_exactly_at_its_boundary(operator, cluster):
    # 20 calls: the median is the 10th, p95 the 19th.
    calls(operator, cluster, [10] * 10 + [100] * 9 + [1000])
    [point] = [p for p in overview_stats(now=NOW).call_times[0].points if p.calls]
    assert (point.calls, point.p50_ms, point.p95_ms) == (20, middle(10), middle(100))
    # 21 calls: the median is the 11th, p95 the 20th.
    calls(operator, cluster, [1000])
    [point] = [p for p in overview_stats(now=NOW).call_times[0].points if p.calls]
    assert (point.calls, point.p50_ms, point.p95_ms) == (21, middle(100), middle(1000))


@pytest.mark.parametrize("period", ["24h", "7d", "30d"])
def test_each_bin_has_the_nearest_rank_percentiles_of_its_calls(operator, cluster, period):
    rng = random.Random(period)  # noqa: S311  (repeatable data, not secrets)
    drawn = {}
    for hours_ago in (0.1, 3, 30, 200):
        drawn[hours_ago] = [rng.lognormvariate(5, 1.5) for _ in range(rng.randint(1, 60))]
        calls(operator, cluster, drawn[hours_ago], hours_ago=hours_ago)
    [times] = overview_stats(period=period, now=NOW).call_times
    for point in times.points:
        inside = [
            ms
            for hours_ago, each in drawn.items()
            if point.start <= NOW - dt.timedelta(hours=hours_ago) < point.end
            for ms in each
        ]
        assert point.calls == len(inside)
        if inside:
            assert point.p50_ms == nearest_rank(inside, 0.5)
            assert point.p95_ms == nearest_rank(inside, 0.95)
        else:
            assert point.p50_ms is point.p95_ms is None


def test_calls_of_jobs_without_a_cluster_have_no_line_of_their_own(operator, cluster):
    calls(operator, cluster, [100])
    at = NOW - dt.timedelta(hours=0.1)
    count_jobs_added([EndedJob("SUCCESS", operator.pk, None, 1, at, at - 5000 * MS, at)])
    [times] = overview_stats(now=NOW).call_times
    assert times.cluster_name == "a"
    assert [(p.calls, p.p50_ms) for p in times.points if p.calls] == [(1, middle(100))]


def test_calls_removed_since_leave_no_point_and_no_line(operator, cluster):
    calls(operator, cluster, [100])
    other = baker.make(Cluster, name="b", base_url="http://127.0.0.1:9")
    at = NOW - dt.timedelta(hours=3)
    removed = [
        EndedJob("SUCCESS", operator.pk, each.pk, 1, at, at - 900 * MS, at)
        for each in (cluster, other)
    ]
    count_jobs_added(removed)
    count_jobs_removed(removed)
    [times] = overview_stats(now=NOW).call_times
    assert times.cluster_name == "a"
    assert [(p.calls, p.p50_ms) for p in times.points if p.p50_ms] == [(1, middle(100))]
