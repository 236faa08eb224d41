"""A line chart over time, its summary and table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.safestring import SafeString

from lib.svgcharts.parts import (
    FONT,
    LEFT,
    PLOT_HEIGHT,
    RIGHT,
    TOP,
    VIEW_WIDTH,
    LinePoint,
    Series,
    dash_attr,
    draw_legend,
    draw_marker,
    esc,
    nice_max,
    num,
    slug,
    span_text,
    time_span,
    wrap_svg,
    x_ticks,
    y_axis,
)


def line_chart(
    points: Sequence[LinePoint],
    *,
    series: Sequence[Series],
    title: str,
    format_value: Callable[[float], str] = lambda v: f"{num(v)} ms",
    label: Callable[[LinePoint], str] = lambda p: span_text(p.start, p.end),
    time_format: str = "hour",
    chart_id: str = "",
) -> SafeString:
    """A line per series over time, a marker (its shape per series) at each point with a value,
    the line broken where a point has none; the dash pattern per series as given."""
    chart_id = chart_id or slug(title)
    legend, legend_height = draw_legend(chart_id, series, lines=True)
    top = legend_height + TOP
    width = VIEW_WIDTH - LEFT - RIGHT
    slot = width / max(len(points), 1)
    values = [p.values.get(s.key) for p in points for s in series]
    scale = nice_max(max((v for v in values if v is not None), default=0))
    # Each point's time, said in every marker's title: worked out once a point.
    when = [label(p) for p in points]
    drawn = []
    for s in series:
        runs, run, markers = [], [], []
        dash, css_class = dash_attr(s), esc(s.css_class)
        for i, p in enumerate(points):
            value = p.values.get(s.key)
            if value is None:
                runs, run = ([*runs, run] if run else runs), []
                continue
            x, y = LEFT + slot * (i + 0.5), top + PLOT_HEIGHT * (1 - value / scale)
            run.append(f"{num(x)},{num(y)}")
            text = esc(f"{s.label}: {format_value(value)}, {when[i]}")
            markers.append(f"<g><title>{text}</title>{draw_marker(s, x, y)}</g>")
        runs = [*runs, run] if run else runs
        lines = "".join(
            f'<polyline points="{" ".join(r)}" class="chart-line {css_class}"{dash}/>' for r in runs
        )
        drawn.append(f"<g>{lines}{''.join(markers)}</g>")
    body = (
        f"{legend}{y_axis(top, scale, width, format_value)}"
        f"{x_ticks([p.start for p in points], top, slot, time_format)}{''.join(drawn)}"
    )
    height = top + PLOT_HEIGHT + 2 * FONT + 16
    summary = line_chart_summary(points, series=series, format_value=format_value, label=label)
    return wrap_svg(chart_id, title, summary, height, body, role="img")


def line_chart_summary(
    points: Sequence[LinePoint],
    *,
    series: Sequence[Series],
    format_value: Callable[[float], str] = lambda v: f"{num(v)} ms",
    label: Callable[[LinePoint], str] = lambda p: span_text(p.start, p.end),
) -> str:
    """One sentence: each series' highest value and when."""
    parts = []
    for s in series:
        known = [p for p in points if p.values.get(s.key) is not None]
        if known:
            high = max(known, key=lambda p: p.values[s.key])
            parts.append(f"{s.label} highest {format_value(high.values[s.key])}, {label(high)}")
    return ("; ".join(parts) + ".") if parts else "No values: nothing to show."


def line_chart_table(
    points: Sequence[LinePoint],
    *,
    series: Sequence[Series],
    format_value: Callable[[float], str] = lambda v: f"{num(v)} ms",
):
    """Headers and rows for a <table>: the time and each series' value ("—" for none)."""
    headers = ["Time", *(s.label for s in series)]
    rows = [
        [
            time_span(p.start, p.end),
            *(
                "—" if p.values.get(s.key) is None else format_value(p.values[s.key])
                for s in series
            ),
        ]
        for p in points
    ]
    return headers, rows
