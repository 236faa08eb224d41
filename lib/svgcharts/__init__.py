"""Server-rendered, accessible SVG charts: stacked bars, horizontal bars and a line chart
(`bars`, `lines`; their shared inputs and pieces in `parts`).

Pure functions of small dataclasses (no models, no request): each returns an SVG as a
SafeString, every text in it escaped. No script and no style attribute (the CSP allows
neither): colours are classes of static/css/charts.css, shapes are presentation attributes.

Each chart scales to its container (a viewBox VIEW_WIDTH units wide, width 100%). On a 390 px
phone a chart is about 290 px wide, where a 12-unit label would be 8 px: charts.css then sets
labels at 15 units (about 10.5 px), and the layout leaves room for that size (CHAR_WIDTH is
a 15-unit character). Time labels are thinned to one every `step` bins, `step` the smallest of
TICK_STEPS that keeps MIN_TICK_SPACING units between them: every 4th of 24 hours, every 4th of
28 six-hour bins (one a day) or of 30 days.

Meaning is never carried by colour alone: bars have a legend in words and FAILED and UNKNOWN
carry a hatching pattern; the line chart's series differ in marker shape and dash. Each chart
has a one-sentence summary (`*_summary`) and its numbers as table rows (`*_table`) for the
page's text alternative. Times are UTC; a time label carries data-time (ISO 8601) and
data-time-format ("hour": HH:MM, "day": MM-DD, "datetime": YYYY-MM-DD HH:MM), and an element
with data-time-zone says the zone, so that static/js/tmsdash.js writes them in the zone the
user chose.
"""

from lib.svgcharts.bars import (
    horizontal_bars,
    horizontal_bars_summary,
    horizontal_bars_table,
    stacked_bars,
    stacked_bars_summary,
    stacked_bars_table,
)
from lib.svgcharts.lines import line_chart, line_chart_summary, line_chart_table
from lib.svgcharts.parts import (
    TIME_FORMATS,
    Bar,
    LinePoint,
    Series,
    StackedBin,
    span_text,
    table_html,
    tick_step,
    time_span,
)

__all__ = [
    "TIME_FORMATS",
    "Bar",
    "LinePoint",
    "Series",
    "StackedBin",
    "horizontal_bars",
    "horizontal_bars_summary",
    "horizontal_bars_table",
    "line_chart",
    "line_chart_summary",
    "line_chart_table",
    "span_text",
    "stacked_bars",
    "stacked_bars_summary",
    "stacked_bars_table",
    "table_html",
    "tick_step",
    "time_span",
]
