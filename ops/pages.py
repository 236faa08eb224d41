"""The Overview page (/overview/): jobs per hour by outcome, failure rate and call times per
cluster, and now. Its numbers are the per-hour rollup (jobs.services.overview_stats) and the
jobs in flight (ops.overview); the charts are server-rendered SVG (lib.svgcharts) with a text
summary and a table of their numbers each. The page refreshes its live region every few
seconds; the server answers 204 while nothing it shows changed."""

from __future__ import annotations

import hashlib
from dataclasses import astuple
from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from jobs.models import Cluster, Job
from jobs.services import OUTCOMES, PERIODS, Overview, overview_stats
from lib.svgcharts import (
    Bar,
    LinePoint,
    Series,
    StackedBin,
    horizontal_bars,
    horizontal_bars_summary,
    horizontal_bars_table,
    line_chart,
    line_chart_summary,
    line_chart_table,
    stacked_bars,
    stacked_bars_summary,
    stacked_bars_table,
    table_html,
)
from ops.overview import Now, overview_now

# How each outcome is drawn: its class (static/css/charts.css) and, for the two that need
# attention, a pattern, so that colour is never the only way to tell them apart.
OUTCOME_SERIES = {
    "SUCCESS": Series("SUCCESS", "Succeeded", "outcome-success"),
    "FAILED": Series("FAILED", "Failed", "outcome-failed", pattern="lines"),
    "UNKNOWN": Series("UNKNOWN", "Unknown", "outcome-unknown", pattern="dots"),
    "CANCELLED": Series("CANCELLED", "Cancelled", "outcome-cancelled"),
    "DENIED": Series("DENIED", "Denied", "outcome-denied"),
    "EXPIRED": Series("EXPIRED", "Expired", "outcome-expired"),
}
CALL_TIMES = [
    Series("p50", "median (p50)", "series-p50", marker="circle"),
    Series("p95", "p95", "series-p95", marker="square", dash="6 3"),
]
TIME_FORMATS = {"24h": "hour", "7d": "datetime", "30d": "day"}
PERIOD_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}


class OverviewFilterForm(forms.Form):
    """The period, and the jobs list's cluster and action filters."""

    period = forms.ChoiceField(
        choices=[(key, PERIOD_LABELS[key]) for key in PERIODS], required=False
    )
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.order_by("name"), required=False, empty_label="Any cluster"
    )
    action = forms.TypedChoiceField(
        choices=[("", "Any action"), *Job.Action.choices],
        coerce=int,
        required=False,
        empty_value=None,
    )


def _jobs_url(list_url: str, **filters) -> str:
    """The jobs list at `list_url` (reversed once a page: a chart has a link per segment)
    filtered by the `filters` given."""
    given = {key: value for key, value in filters.items() if value not in (None, "")}
    return list_url + "?" + urlencode(given)


def _iso(moment) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _charts(stats: Overview, cluster: Cluster | None, action: int | None) -> list[dict]:
    """The page's charts, each with its summary and its numbers as a table."""
    series = [OUTCOME_SERIES[key] for key in OUTCOMES]
    bins = [StackedBin(b.start, b.end, dict(b.counts)) for b in stats.bins]
    time_format = TIME_FORMATS[stats.period]
    same = {"cluster": cluster.pk if cluster else None, "action": action}
    list_url = reverse("job_list")

    # A bar's query after its status, worked out once a bar, not once a segment: the same
    # URL as _jobs_url(list_url, status=key, ended_from=..., ended_to=..., **same).
    after_status: dict[datetime, str] = {}

    def drill_down(b: StackedBin, key: str) -> str:
        rest = after_status.get(b.start)
        if rest is None:
            rest = after_status[b.start] = _jobs_url(
                "", ended_from=_iso(b.start), ended_to=_iso(b.end), **same
            )[1:]
        return f"{list_url}?{urlencode({'status': key})}&{rest}"

    headers, rows = stacked_bars_table(bins, series=series)
    charts = [
        {
            "id": "jobs",
            "title": "Jobs by outcome",
            "svg": stacked_bars(
                bins,
                series=series,
                href=drill_down,
                title="Jobs by outcome",
                time_format=time_format,
                chart_id="jobs-by-outcome",
            ),
            "summary": stacked_bars_summary(bins, series=series),
            "table": table_html(headers, rows),
        }
    ]
    bars = [
        Bar(
            f.cluster_name,
            f.rate or 0,
            _rate_text(f),
            _jobs_url(
                list_url,
                status="FAILED",
                cluster=f.cluster_id,
                action=action,
                ended_from=_iso(stats.start),
                ended_to=_iso(stats.end),
            ),
        )
        for f in stats.failures
    ]
    if bars:
        headers, rows = horizontal_bars_table(bars, value_header="Failed or unknown")
        charts.append(
            {
                "id": "failures",
                "title": "Failure rate per cluster, worst now first",
                "svg": horizontal_bars(
                    bars, title="Failure rate per cluster", max_value=1, chart_id="failure-rate"
                ),
                "summary": horizontal_bars_summary(bars),
                "table": table_html(headers, rows),
            }
        )
    for times in stats.call_times:
        points = [
            LinePoint(p.start, p.end, {"p50": p.p50_ms, "p95": p.p95_ms}) for p in times.points
        ]
        title = f"Call time on {times.cluster_name}"
        headers, rows = line_chart_table(points, series=CALL_TIMES)
        charts.append(
            {
                "id": f"calls-{times.cluster_id}",
                "title": title,
                "svg": line_chart(
                    points,
                    series=CALL_TIMES,
                    title=title,
                    time_format=time_format,
                    chart_id=f"call-time-{times.cluster_id}",
                ),
                "summary": line_chart_summary(points, series=CALL_TIMES),
                "table": table_html(headers, rows),
            }
        )
    return charts


def _rate_text(f) -> str:
    if f.rate is None:
        return "no job sent"
    now = "" if f.rate_last_hour is None else f", {f.rate_last_hour:.0%} in the last hour"
    return f"{f.rate:.0%} of {f.sent}{now}"


def _version(stats: Overview, now: Now) -> str:
    return hashlib.sha256(repr((stats.version, astuple(now))).encode()).hexdigest()[:16]


@never_cache
@require_safe
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The Overview; ?part=live its live region, 204 while what it shows is unchanged."""
    form = OverviewFilterForm(request.GET)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    period = data.get("period") or "24h"
    cluster = data.get("cluster")
    action = data.get("action")
    everyone = request.user.has_perm("jobs.view_all_jobs")
    user_id = None if everyone else request.user.pk
    stats = overview_stats(
        period=period,
        cluster_id=cluster.pk if cluster else None,
        action=action,
        user_id=user_id,
    )
    now = overview_now(user_id=user_id)
    version = _version(stats, now)
    live = request.GET.get("part") == "live"
    if live and request.GET.get("v") == version:
        return HttpResponse(status=204)
    query = request.GET.copy()
    for key in ("part", "v"):
        query.pop(key, None)
    context = {
        "form": form,
        "stats": stats,
        "now": now,
        "everyone": everyone,
        "period_label": PERIOD_LABELS[period],
        "charts": _charts(stats, cluster, action),
        "version": version,
        "query": query.urlencode(),
        "unknown_url": _jobs_url(reverse("job_list"), status="UNKNOWN"),
    }
    template = "ops/_overview_live.html" if live else "ops/overview.html"
    return render(request, template, context)
