"""The charts' shared parts: their inputs, sizes, axes, legend, patterns and markers."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.safestring import SafeString

VIEW_WIDTH = 420
PLOT_HEIGHT = 150
LEFT = 52
RIGHT = 12
TOP = 8
FONT = 12
# Roughly the width of one character of a label at its largest (15 units, on phones), to lay
# out the legend and the room for values beside horizontal bars.
CHAR_WIDTH = 9
MIN_TICK_SPACING = 46
TICK_STEPS = (1, 2, 3, 4, 6, 8, 12, 24, 48)
ROW_HEIGHT = 40
TIME_FORMATS = {"hour": "%H:%M", "day": "%m-%d", "datetime": "%Y-%m-%d %H:%M"}
# Fill patterns drawn over a segment's colour, by Series.pattern.
PATTERNS = {
    "lines": '<path d="M0 6 L6 0 M-1 1 L1 -1 M5 7 L7 5" class="chart-hatch"/>',
    "dots": '<circle cx="3" cy="3" r="1.4" class="chart-dot"/>',
}
MARKERS = ("circle", "square", "triangle", "diamond")


@dataclass(frozen=True)
class Series:
    """One kind of value: its key in the data, its name, its colour class (charts.css), and
    for bars a fill pattern (a key of PATTERNS), for lines a marker shape and a dash array."""

    key: str
    label: str
    css_class: str
    pattern: str = ""
    marker: str = "circle"
    dash: str = ""


@dataclass(frozen=True)
class StackedBin:
    """One bar of a stacked bar chart: the time it covers and its count per series key."""

    start: datetime
    end: datetime
    values: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.values.values())


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: what it is, its value, the text said beside it (the
    value as people read it, "12.5 %"), and where a click on it leads (None: nowhere)."""

    label: str
    value: float
    text: str
    href: str | None = None


@dataclass(frozen=True)
class LinePoint:
    """One point in time of a line chart, its value per series key (None: no value)."""

    start: datetime
    end: datetime
    values: dict[str, float | None] = field(default_factory=dict)


def slug(title: str) -> str:
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "untitled")


def num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (1 for 0)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def fmt_count(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) else num(number)


def esc(text) -> str:
    """A text for markup: escaped, unless it is already markup (a SafeString). What
    format_html does to each of its arguments, without its cost, which drawing an element at a
    time made a third of a 30-day Overview's time."""
    return text.__html__() if hasattr(text, "__html__") else html.escape(str(text))


def time_label(moment: datetime, time_format: str, tag: str = "tspan") -> str:
    """A time the zone switch rewrites: data-time (ISO 8601) and data-time-format."""
    utc = moment.astimezone(UTC)
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    shown = utc.strftime(TIME_FORMATS[time_format])
    # Digits and separators, and a key of TIME_FORMATS: nothing to escape.
    return f'<{tag} data-time="{iso}" data-time-format="{time_format}">{shown}</{tag}>'


def time_span(start: datetime, end: datetime) -> SafeString:
    """ "YYYY-MM-DD HH:MM to HH:MM UTC" as HTML whose times and zone the zone switch rewrites:
    a table's time cell."""
    return SafeString(
        f"{time_label(start, 'datetime', 'span')} to {time_label(end, 'hour', 'span')} "
        '<span data-time-zone="">UTC</span>'
    )


def span_text(start: datetime, end: datetime) -> str:
    """ "2026-12-06 14:00 to 15:00 UTC"; both dates for a span of a day or more."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if (end - start).total_seconds() < 86_400:
        return f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def tick_step(count: int, width: float = VIEW_WIDTH - LEFT - RIGHT) -> int:
    """Label one bin in `step`: the smallest of TICK_STEPS that keeps labels MIN_TICK_SPACING
    units apart (24 hourly bins: every 4th; 30 days: every 4th)."""
    if count == 0:
        return 1
    slot = width / count
    return next((step for step in TICK_STEPS if step * slot >= MIN_TICK_SPACING), count)


def wrap_svg(chart_id: str, title: str, summary: str, height: float, body: str, *, role: str):
    chart_id = esc(chart_id)
    return SafeString(
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {VIEW_WIDTH} {num(height)}" '
        f'width="100%" role="{esc(role)}" aria-labelledby="{chart_id}-title" '
        f'aria-describedby="{chart_id}-desc"><title id="{chart_id}-title">{esc(title)}</title>'
        f'<desc id="{chart_id}-desc">{esc(summary)}</desc>{body}</svg>'
    )


def draw_defs(chart_id: str, series: Sequence[Series]) -> str:
    chart_id = esc(chart_id)
    used = sorted({s.pattern for s in series if s.pattern})
    patterns = "".join(
        f'<pattern id="{chart_id}-{esc(name)}" width="6" height="6" '
        f'patternUnits="userSpaceOnUse">{PATTERNS[name]}</pattern>'
        for name in used
    )
    return f"<defs>{patterns}</defs>"


def draw_legend(chart_id: str, series: Sequence[Series], *, lines: bool = False):
    """The series' names with their swatch (and pattern or marker), flowed into rows that fit
    the width. Returns the SVG and the height it takes."""
    items, x, y = [], 0.0, FONT
    for s in series:
        width = 22 + len(s.label) * CHAR_WIDTH + 14
        if x and x + width > VIEW_WIDTH - 4:
            x, y = 0.0, y + FONT + 8
        if lines:
            items.append(
                f'<line x1="{num(x)}" y1="{num(y - 4)}" x2="{num(x + 18)}" y2="{num(y - 4)}" '
                f'class="chart-line {esc(s.css_class)}"{dash_attr(s)}/>'
                f"{draw_marker(s, x + 9, y - 4)}"
            )
        else:
            items.append(
                f'<rect x="{num(x)}" y="{num(y - 10)}" width="14" height="12" '
                f'class="chart-seg {esc(s.css_class)}"/>'
                f"{pattern_rect(chart_id, s, x, y - 10, 14, 12)}"
            )
        items.append(
            f'<text x="{num(x + 22)}" y="{num(y)}" class="chart-text">{esc(s.label)}</text>'
        )
        x += width
    return f'<g class="chart-legend" aria-hidden="true">{"".join(items)}</g>', y + 10


def pattern_rect(chart_id: str, s: Series, x: float, y: float, w: float, h: float) -> str:
    if not s.pattern:
        return ""
    return (
        f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" '
        f'fill="url(#{esc(chart_id)}-{esc(s.pattern)})" class="chart-pattern"/>'
    )


def y_axis(top: float, top_value: float, width: float, unit: Callable[[float], str]) -> str:
    """Grid lines and labels at 0, half and the top of the scale."""
    parts = []
    for share in (0, 0.5, 1):
        y = top + PLOT_HEIGHT * (1 - share)
        parts.append(
            f'<line x1="{LEFT}" y1="{num(y)}" x2="{num(LEFT + width)}" y2="{num(y)}" '
            f'class="chart-grid"/><text x="{LEFT - 4}" y="{num(y + 4)}" text-anchor="end" '
            f'class="chart-text">{esc(unit(top_value * share))}</text>'
        )
    return f'<g aria-hidden="true">{"".join(parts)}</g>'


def x_ticks(starts: Sequence[datetime], top: float, slot: float, time_format: str) -> str:
    """Time labels under the plot, one every tick_step bins, and the zone they are in."""
    step = tick_step(len(starts))
    y = top + PLOT_HEIGHT + FONT + 4
    labels = "".join(
        f'<text x="{num(LEFT + slot * (i + 0.5))}" y="{num(y)}" text-anchor="middle" '
        f'class="chart-text">{time_label(start, time_format)}</text>'
        for i, start in enumerate(starts)
        if i % step == 0
    )
    zone = (
        f'<text x="{VIEW_WIDTH - RIGHT}" y="{num(y + FONT + 6)}" '
        'text-anchor="end" class="chart-text chart-muted"><tspan data-time-zone="">UTC</tspan>'
        "</text>"
    )
    return f'<g aria-hidden="true">{labels}{zone}</g>'


def plural(count: int, unit: tuple[str, str]) -> str:
    return f"{count:,} {unit[0] if count == 1 else unit[1]}"


def dash_attr(s: Series) -> str:
    return f' stroke-dasharray="{esc(s.dash)}"' if s.dash else ""


def draw_marker(s: Series, x: float, y: float) -> str:
    shape = s.marker if s.marker in MARKERS else "circle"
    css_class = esc(s.css_class)
    if shape == "circle":
        return f'<circle cx="{num(x)}" cy="{num(y)}" r="3.5" class="chart-marker {css_class}"/>'
    if shape == "square":
        return (
            f'<rect x="{num(x - 3.5)}" y="{num(y - 3.5)}" width="7" height="7" '
            f'class="chart-marker {css_class}"/>'
        )
    points = (
        [(x, y - 4.5), (x + 4.5, y + 3.5), (x - 4.5, y + 3.5)]
        if shape == "triangle"
        else [(x, y - 4.5), (x + 4.5, y), (x, y + 4.5), (x - 4.5, y)]
    )
    drawn = " ".join(f"{num(px)},{num(py)}" for px, py in points)
    return f'<polygon points="{drawn}" class="chart-marker {css_class}"/>'


def table_html(headers: Sequence[str], rows: Sequence[Sequence]) -> SafeString:
    """The head and body of a chart's <table> of numbers: a header cell per header, a row of
    cells per row, each text escaped (a SafeString, such as a time_span, kept as it is). Written
    as a string, as the charts are: a template's loop over the 900 cells of a 30-day Overview
    cost more than drawing its charts."""
    head = "".join(f'<th scope="col">{esc(header)}</th>' for header in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return SafeString(f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>")
