"""The charts' shared parts: their inputs, sizes, axes, legend, patterns and markers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.html import format_html, format_html_join
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
    "lines": ('<path d="{}" class="chart-hatch"/>', "M0 6 L6 0 M-1 1 L1 -1 M5 7 L7 5"),
    "dots": ('<circle cx="3" cy="3" r="{}" class="chart-dot"/>', "1.4"),
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


def time_label(moment: datetime, time_format: str, tag: str = "tspan") -> SafeString:
    """A time the zone switch rewrites: data-time (ISO 8601) and data-time-format."""
    utc = moment.astimezone(UTC)
    return format_html(
        '<{} data-time="{}" data-time-format="{}">{}</{}>',
        tag,
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        time_format,
        utc.strftime(TIME_FORMATS[time_format]),
        tag,
    )


def time_span(start: datetime, end: datetime) -> SafeString:
    """ "YYYY-MM-DD HH:MM to HH:MM UTC" as HTML whose times and zone the zone switch rewrites:
    a table's time cell."""
    return format_html(
        "{} to {} {}",
        time_label(start, "datetime", "span"),
        time_label(end, "hour", "span"),
        format_html('<span data-time-zone="">{}</span>', "UTC"),
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


def wrap_svg(chart_id: str, title: str, summary: str, height: float, body, *, role: str):
    return format_html(
        '<svg class="chart" id="{}" viewBox="0 0 {} {}" width="100%" role="{}" '
        'aria-labelledby="{}-title" aria-describedby="{}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        chart_id,
        VIEW_WIDTH,
        num(height),
        role,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        summary,
        body,
    )


def draw_defs(chart_id: str, series: Sequence[Series]) -> SafeString:
    used = sorted({s.pattern for s in series if s.pattern})
    return format_html(
        "<defs>{}</defs>",
        format_html_join(
            "",
            '<pattern id="{}-{}" width="6" height="6" patternUnits="userSpaceOnUse">{}</pattern>',
            ((chart_id, name, format_html(*PATTERNS[name])) for name in used),
        ),
    )


def draw_legend(chart_id: str, series: Sequence[Series], *, lines: bool = False):
    """The series' names with their swatch (and pattern or marker), flowed into rows that fit
    the width. Returns the SVG and the height it takes."""
    items, x, y = [], 0.0, FONT
    for s in series:
        width = 22 + len(s.label) * CHAR_WIDTH + 14
        if x and x + width > VIEW_WIDTH - 4:
            x, y = 0.0, y + FONT + 8
        if lines:
            swatch = format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" class="chart-line {}"{}/>{}',
                num(x),
                num(y - 4),
                num(x + 18),
                num(y - 4),
                s.css_class,
                dash_attr(s),
                draw_marker(s, x + 9, y - 4),
            )
        else:
            swatch = format_html(
                '<rect x="{}" y="{}" width="14" height="12" class="chart-seg {}"/>{}',
                num(x),
                num(y - 10),
                s.css_class,
                pattern_rect(chart_id, s, x, y - 10, 14, 12),
            )
        items.append(
            format_html(
                '{}<text x="{}" y="{}" class="chart-text">{}</text>',
                swatch,
                num(x + 22),
                num(y),
                s.label,
            )
        )
        x += width
    body = format_html('<g class="chart-legend" aria-hidden="true">{}</g>', join(items))
    return body, y + 10


def pattern_rect(chart_id: str, s: Series, x: float, y: float, w: float, h: float):
    if not s.pattern:
        return ""
    return format_html(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="url(#{}-{})" class="chart-pattern"/>',
        num(x),
        num(y),
        num(w),
        num(h),
        chart_id,
        s.pattern,
    )


def y_axis(top: float, top_value: float, width: float, unit: Callable[[float], str]):
    """Grid lines and labels at 0, half and the top of the scale."""
    parts = []
    for share in (0, 0.5, 1):
        y = top + PLOT_HEIGHT * (1 - share)
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" class="chart-grid"/>'
                '<text x="{}" y="{}" text-anchor="end" class="chart-text">{}</text>',
                LEFT,
                num(y),
                num(LEFT + width),
                num(y),
                LEFT - 4,
                num(y + 4),
                unit(top_value * share),
            )
        )
    return format_html('<g aria-hidden="true">{}</g>', join(parts))


def x_ticks(starts: Sequence[datetime], top: float, slot: float, time_format: str):
    """Time labels under the plot, one every tick_step bins, and the zone they are in."""
    step = tick_step(len(starts))
    y = top + PLOT_HEIGHT + FONT + 4
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" class="chart-text">{}</text>',
        (
            (num(LEFT + slot * (i + 0.5)), num(y), time_label(start, time_format))
            for i, start in enumerate(starts)
            if i % step == 0
        ),
    )
    zone = format_html(
        '<text x="{}" y="{}" text-anchor="end" class="chart-text chart-muted">'
        '<tspan data-time-zone="">UTC</tspan></text>',
        VIEW_WIDTH - RIGHT,
        num(y + FONT + 6),
    )
    return format_html('<g aria-hidden="true">{}{}</g>', labels, zone)


def join(parts) -> SafeString:
    """Safe parts joined; anything not marked safe is escaped."""
    return format_html_join("", "{}", ((part,) for part in parts))


def plural(count: int, unit: tuple[str, str]) -> str:
    return f"{count:,} {unit[0] if count == 1 else unit[1]}"


def dash_attr(s: Series) -> SafeString | str:
    return format_html(' stroke-dasharray="{}"', s.dash) if s.dash else ""


def draw_marker(s: Series, x: float, y: float) -> SafeString:
    shape = s.marker if s.marker in MARKERS else "circle"
    if shape == "circle":
        return format_html(
            '<circle cx="{}" cy="{}" r="3.5" class="chart-marker {}"/>',
            num(x),
            num(y),
            s.css_class,
        )
    if shape == "square":
        return format_html(
            '<rect x="{}" y="{}" width="7" height="7" class="chart-marker {}"/>',
            num(x - 3.5),
            num(y - 3.5),
            s.css_class,
        )
    points = (
        [(x, y - 4.5), (x + 4.5, y + 3.5), (x - 4.5, y + 3.5)]
        if shape == "triangle"
        else [(x, y - 4.5), (x + 4.5, y), (x, y + 4.5), (x - 4.5, y)]
    )
    return format_html(
        '<polygon points="{}" class="chart-marker {}"/>',
        " ".join(f"{num(px)},{num(py)}" for px, py in points),
        s.css_class,
    )
