"""The dashboard's URLs and a test-only page of charts (lib/svgcharts.py) with their summaries
and tables, as the Overview will show them, and a fragment htmx swaps in."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template import RequestContext, Template
from django.urls import path
from django.utils.http import urlencode

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
)
from tmsdash.urls import handler400, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]

START = datetime(2026, 12, 6, 0, tzinfo=UTC)
OUTCOMES = [
    Series("SUCCESS", "SUCCESS", "outcome-success"),
    Series("FAILED", "FAILED", "outcome-failed", pattern="lines"),
    Series("UNKNOWN", "UNKNOWN", "outcome-unknown", pattern="dots"),
    Series("CANCELLED", "CANCELLED", "outcome-cancelled"),
    Series("DENIED", "DENIED", "outcome-denied"),
    Series("EXPIRED", "EXPIRED", "outcome-expired"),
]
CALL_TIMES = [
    Series("p50", "p50", "series-p50", marker="circle"),
    Series("p95", "p95", "series-p95", marker="square", dash="6 3"),
]

PAGE = Template("""{% extends "base.html" %}{% block content %}
<h1>Charts</h1>
{% for chart in charts %}<figure class="card">
  {{ chart.svg }}
  <figcaption>{{ chart.summary }}</figcaption>
  <details><summary>The numbers</summary><div class="table-scroll"><table class="chart-table">
    <thead><tr>{% for header in chart.headers %}<th scope="col">{{ header }}</th>
    {% endfor %}</tr></thead>
    <tbody>{% for row in chart.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>
    {% endfor %}</tr>{% endfor %}</tbody>
  </table></div></details>
</figure>{% endfor %}
<button type="button" id="load-more" hx-get="/e2e-charts/fragment/" hx-target="#swapped"
  hx-swap="innerHTML">Load a chart</button>
<div id="swapped"></div>
{% endblock %}""")


def bins(hours: int = 24) -> list[StackedBin]:
    return [
        StackedBin(
            START + timedelta(hours=i),
            START + timedelta(hours=i + 1),
            {
                "SUCCESS": 10 + i,
                "FAILED": i % 4,
                "UNKNOWN": int(i % 6 == 0),
                "CANCELLED": 1,
                "DENIED": 0,
                "EXPIRED": int(i == 3),
            },
        )
        for i in range(hours)
    ]


def drill_down(b: StackedBin, key: str) -> str:
    return "/jobs/?" + urlencode(
        {
            "status": key,
            "ended_from": f"{b.start:%Y-%m-%dT%H:%M:%SZ}",
            "ended_to": f"{b.end:%Y-%m-%dT%H:%M:%SZ}",
        }
    )


def charts() -> list[dict]:
    stacked = bins()
    rows = [
        Bar("eu1", 0.25, "25 %", "/jobs/?status=FAILED"),
        Bar('<script>alert("x")</script>', 0.05, "5 %", "/jobs/?q=2"),
        Bar("staging", 0, "0 %"),
    ]
    points = [
        LinePoint(b.start, b.end, {"p50": 120 + i * 3, "p95": None if i == 5 else 400 + i * 20})
        for i, b in enumerate(stacked)
    ]
    headers, table = stacked_bars_table(stacked, series=OUTCOMES)
    bar_headers, bar_rows = horizontal_bars_table(rows, value_header="Failure rate")
    line_headers, line_rows = line_chart_table(points, series=CALL_TIMES)
    return [
        {
            "svg": stacked_bars(stacked, series=OUTCOMES, href=drill_down, title="Jobs per hour"),
            "summary": stacked_bars_summary(stacked, series=OUTCOMES),
            "headers": headers,
            "rows": table,
        },
        {
            "svg": horizontal_bars(rows, title="Failure rate per cluster", max_value=1),
            "summary": horizontal_bars_summary(rows),
            "headers": bar_headers,
            "rows": bar_rows,
        },
        {
            "svg": line_chart(points, series=CALL_TIMES, title="Call time"),
            "summary": line_chart_summary(points, series=CALL_TIMES),
            "headers": line_headers,
            "rows": line_rows,
        },
    ]


@login_required
def chart_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render(RequestContext(request, {"charts": charts()})))


@login_required
def chart_fragment(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        stacked_bars(
            bins(6), series=OUTCOMES, href=drill_down, title="Swapped", chart_id="swapped-chart"
        )
    )


urlpatterns = [
    path("e2e-charts/", chart_page),
    path("e2e-charts/fragment/", chart_fragment),
    *urlpatterns,
]
