"""Stacked bars over time and horizontal bars, with their summaries and tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC

from django.utils.safestring import SafeString

from lib.svgcharts.parts import (
    CHAR_WIDTH,
    FONT,
    LEFT,
    PLOT_HEIGHT,
    RIGHT,
    ROW_HEIGHT,
    TOP,
    VIEW_WIDTH,
    Bar,
    Series,
    StackedBin,
    draw_defs,
    draw_legend,
    esc,
    fmt_count,
    nice_max,
    num,
    pattern_rect,
    plural,
    slug,
    span_text,
    time_span,
    wrap_svg,
    x_ticks,
    y_axis,
)


def stacked_bars(
    bins: Sequence[StackedBin],
    *,
    series: Sequence[Series],
    href: Callable[[StackedBin, str], str | None],
    label: Callable[[StackedBin], str] = lambda b: span_text(b.start, b.end),
    title: str,
    time_format: str = "hour",
    unit: tuple[str, str] = ("job", "jobs"),
    chart_id: str = "",
) -> SafeString:
    """Bars over time, each stacked by series in the order given (the first at the bottom).
    Every non-empty segment is a link to `href(bin, key)` (None: a segment without one), its
    aria-label "FAILED: 12 jobs, 14:00 to 15:00 UTC"; heights are proportional to counts."""
    chart_id = chart_id or slug(title)
    legend, legend_height = draw_legend(chart_id, series)
    top = legend_height + TOP
    width = VIEW_WIDTH - LEFT - RIGHT
    slot = width / max(len(bins), 1)
    scale = nice_max(max((b.total for b in bins), default=0))
    bars = []
    for i, b in enumerate(bins):
        x, bottom, bar_width = LEFT + slot * i + slot * 0.1, top + PLOT_HEIGHT, slot * 0.8
        when = None
        for s in series:
            count = b.values.get(s.key, 0)
            if count <= 0:
                continue
            height = PLOT_HEIGHT * count / scale
            bottom -= height
            when = label(b) if when is None else when
            text = esc(f"{s.label}: {plural(count, unit)}, {when}")
            # Outlined in the background's colour (charts.css): each segment touches the
            # background, not another colour.
            segment = (
                f'<rect x="{num(x)}" y="{num(bottom)}" width="{num(bar_width)}" '
                f'height="{num(height)}" class="chart-seg {esc(s.css_class)}"/>'
                f"{pattern_rect(chart_id, s, x, bottom, bar_width, height)}"
            )
            link = href(b, s.key)
            if link is None:
                bars.append(f"<g><title>{text}</title>{segment}</g>")
            else:
                bars.append(
                    f'<a href="{esc(link)}" aria-label="{text}" class="chart-link">'
                    f"<title>{text}</title>{segment}</a>"
                )
    body = (
        f"{draw_defs(chart_id, series)}{legend}"
        f"{y_axis(top, scale, width, lambda v: fmt_count(round(v) if v == int(v) else v))}"
        f"{x_ticks([b.start for b in bins], top, slot, time_format)}"
        f'<g class="chart-bars">{"".join(bars)}</g>'
    )
    height = top + PLOT_HEIGHT + 2 * FONT + 16
    summary = stacked_bars_summary(bins, series=series, label=label, unit=unit)
    return wrap_svg(chart_id, title, summary, height, body, role="group")


def stacked_bars_summary(
    bins: Sequence[StackedBin],
    *,
    series: Sequence[Series],
    label: Callable[[StackedBin], str] = lambda b: span_text(b.start, b.end),
    unit: tuple[str, str] = ("job", "jobs"),
) -> str:
    """One sentence: the total, per series, and the busiest bin."""
    if not bins:
        return f"No {unit[1]}: nothing to show."
    total = sum(b.total for b in bins)
    first, last = bins[0].start.astimezone(UTC), bins[-1].end.astimezone(UTC)
    span = f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    if total == 0:
        return f"No {unit[1]} {span}."
    parts = ", ".join(
        f"{sum(b.values.get(s.key, 0) for b in bins):,} {s.label}"
        for s in series
        if any(b.values.get(s.key, 0) for b in bins)
    )
    busiest = max(bins, key=lambda b: b.total)
    return f"{plural(total, unit)} {span}: {parts}; the most, {busiest.total:,}, {label(busiest)}."


def stacked_bars_table(
    bins: Sequence[StackedBin], *, series: Sequence[Series], unit: tuple[str, str] = ("job", "jobs")
) -> tuple[list[str], list[list]]:
    """Headers and rows for a <table> of the numbers: the time (HTML the zone switch rewrites),
    one count per series, and the total."""
    headers = ["Time", *(s.label for s in series), f"All {unit[1]}"]
    rows = [
        [time_span(b.start, b.end), *(b.values.get(s.key, 0) for s in series), b.total]
        for b in bins
    ]
    return headers, rows


def horizontal_bars(
    rows: Sequence[Bar], *, title: str, max_value: float | None = None, chart_id: str = ""
) -> SafeString:
    """One bar per row in the order given, its label above it and its text beside it; a row
    with an href is a link, named by those texts ("eu1 12.5 %")."""
    chart_id = chart_id or slug(title)
    scale = max_value if max_value else nice_max(max((r.value for r in rows), default=0))
    # Room beside the longest bar for the longest text.
    text_room = 8 + max((len(r.text) for r in rows), default=0) * CHAR_WIDTH
    width = VIEW_WIDTH - text_room - 4
    parts = []
    for i, row in enumerate(rows):
        y = TOP + i * ROW_HEIGHT
        length = width * min(max(row.value, 0), scale) / scale
        drawn = (
            f'<text x="0" y="{num(y + FONT)}" class="chart-text">{esc(row.label)}</text>'
            f'<rect x="0" y="{num(y + 18)}" width="{num(width)}" height="16" class="chart-track"/>'
            f'<rect x="0" y="{num(y + 18)}" width="{num(length)}" height="16" '
            'class="chart-seg chart-bar"/>'
            f'<text x="{num(width + 6)}" y="{num(y + 31)}" class="chart-text chart-value">'
            f"{esc(row.text)}</text>"
        )
        # Named by its visible texts, the label then the value (WCAG 2.5.3).
        if row.href is None:
            parts.append(f"<g>{drawn}</g>")
        else:
            parts.append(f'<a href="{esc(row.href)}" class="chart-link">{drawn}</a>')
    if not rows:
        parts.append(f'<text x="0" y="{TOP + FONT}" class="chart-text">Nothing to show.</text>')
    height = TOP + max(len(rows), 1) * ROW_HEIGHT + 4
    summary = horizontal_bars_summary(rows)
    role = "group" if any(r.href for r in rows) else "img"
    return wrap_svg(chart_id, title, summary, height, "".join(parts), role=role)


def horizontal_bars_summary(rows: Sequence[Bar]) -> str:
    """One sentence: how many rows, the highest and the lowest."""
    if not rows:
        return "Nothing to show."
    high = max(rows, key=lambda r: r.value)
    low = min(rows, key=lambda r: r.value)
    if len(rows) == 1:
        return f"{high.label}: {high.text}."
    return (
        f"{len(rows)} rows; the highest {high.label} ({high.text}), "
        f"the lowest {low.label} ({low.text})."
    )


def horizontal_bars_table(rows: Sequence[Bar], *, value_header: str = "Value"):
    """Headers and rows for a <table>: each row's label and text, in the chart's order."""
    return ["Name", value_header], [[row.label, row.text] for row in rows]
