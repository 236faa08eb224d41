"""The SVG charts (lib/svgcharts), parsed as XML: links and their labels, hostile text
escaped, empty data, one bin, zero counts, the order given, heights in proportion, time labels
for the zone switch, and the summaries and tables of the text alternative."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree
import pytest
from django.template import Context, Template

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
    tick_step,
)

NS = {"s": "http://www.w3.org/2000/svg"}
START = datetime(2026, 12, 6, 14, tzinfo=UTC)
HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"
OUTCOMES = [
    Series("SUCCESS", "SUCCESS", "outcome-success"),
    Series("FAILED", "FAILED", "outcome-failed", pattern="lines"),
    Series("UNKNOWN", "UNKNOWN", "outcome-unknown", pattern="dots"),
]
CALLS = [
    Series("p50", "p50", "series-p50", marker="circle"),
    Series("p95", "p95", "series-p95", marker="square", dash="6 3"),
]


def parse(svg: str) -> ET.Element:
    """The chart as XML: it must be well-formed, script-free and without style attributes."""
    root = defusedxml.ElementTree.fromstring(
        svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    )
    tags = {element.tag.split("}")[1] for element in root.iter()}
    assert "script" not in tags and "style" not in tags and "foreignObject" not in tags
    assert not [element for element in root.iter() if "style" in element.attrib]
    assert not [e for e in root.iter() if any(a.startswith("on") for a in e.attrib)]
    return root


def hour(i: int, **values: int) -> StackedBin:
    return StackedBin(START + timedelta(hours=i), START + timedelta(hours=i + 1), values)


def drill(b: StackedBin, key: str) -> str:
    return f"/jobs/?status={key}&from={b.start:%H}"


def links(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//s:a", NS)


def test_each_non_empty_segment_is_a_link_with_its_label_in_series_order():
    bins = [hour(0, SUCCESS=10, FAILED=12, UNKNOWN=0), hour(1, SUCCESS=1, UNKNOWN=1)]

    root = parse(stacked_bars(bins, series=OUTCOMES, href=drill, title="Jobs per hour"))

    assert [(a.get("href"), a.get("aria-label")) for a in links(root)] == [
        ("/jobs/?status=SUCCESS&from=14", "SUCCESS: 10 jobs, 2026-12-06 14:00 to 15:00 UTC"),
        ("/jobs/?status=FAILED&from=14", "FAILED: 12 jobs, 2026-12-06 14:00 to 15:00 UTC"),
        ("/jobs/?status=SUCCESS&from=15", "SUCCESS: 1 job, 2026-12-06 15:00 to 16:00 UTC"),
        ("/jobs/?status=UNKNOWN&from=15", "UNKNOWN: 1 job, 2026-12-06 15:00 to 16:00 UTC"),
    ]
    assert root.get("role") == "group" and root.get("width") == "100%"
    assert root.get("viewBox").startswith("0 0 420 ")
    assert root.find("s:title", NS).text == "Jobs per hour"
    assert root.find("s:desc", NS).text.startswith("24 jobs from 2026-12-06 14:00")


def test_a_segment_without_a_link_is_drawn_with_its_label_but_not_focusable():
    root = parse(
        stacked_bars(
            [hour(0, SUCCESS=3, FAILED=1)],
            series=OUTCOMES,
            href=lambda b, key: None if key == "SUCCESS" else "/f",
            title="t",
        )
    )

    assert [a.get("aria-label") for a in links(root)] == [
        "FAILED: 1 job, 2026-12-06 14:00 to 15:00 UTC"
    ]
    titles = [t.text for t in root.iterfind(".//s:g/s:title", NS)]
    assert "SUCCESS: 3 jobs, 2026-12-06 14:00 to 15:00 UTC" in titles


def segments(root: ET.Element) -> list[tuple[str, float, float]]:
    return [
        (rect.get("class").split()[-1], float(rect.get("y")), float(rect.get("height")))
        for rect in root.iterfind(".//s:g[@class='chart-bars']//s:rect", NS)
        if "chart-seg" in rect.get("class")
    ]


def test_heights_are_in_proportion_and_stacked_from_the_bottom_in_series_order():
    bins = [hour(0, SUCCESS=30, FAILED=10), hour(1, SUCCESS=5, UNKNOWN=5)]

    drawn = segments(parse(stacked_bars(bins, series=OUTCOMES, href=drill, title="t")))

    (s0, y0, h0), (f0, y1, h1), (s1, _, h2), (u1, _, h3) = drawn
    assert (s0, f0, s1, u1) == (
        "outcome-success",
        "outcome-failed",
        "outcome-success",
        "outcome-unknown",
    )
    assert h0 == pytest.approx(3 * h1) and h2 == pytest.approx(h3) and h0 == pytest.approx(6 * h2)
    # FAILED sits on SUCCESS: its bottom is SUCCESS's top.
    assert y1 + h1 == pytest.approx(y0)
    # The scale's top is a round number at or above the highest bar (40 -> 50).
    assert h0 + h1 == pytest.approx(150 * 40 / 50)


def test_failed_and_unknown_carry_a_pattern_besides_their_colour():
    root = parse(
        stacked_bars(
            [hour(0, SUCCESS=1, FAILED=1, UNKNOWN=1)], series=OUTCOMES, href=drill, title="Jobs"
        )
    )

    patterns = {p.get("id") for p in root.iterfind(".//s:pattern", NS)}
    assert patterns == {"chart-jobs-lines", "chart-jobs-dots"}
    filled = [r.get("fill") for r in root.iterfind(".//s:a//s:rect", NS) if r.get("fill")]
    assert filled == ["url(#chart-jobs-lines)", "url(#chart-jobs-dots)"]
    legend = [t.text for t in root.iterfind(".//s:g[@class='chart-legend']/s:text", NS)]
    assert legend == ["SUCCESS", "FAILED", "UNKNOWN"]


def test_zero_counts_draw_no_segment_and_no_link():
    root = parse(
        stacked_bars(
            [hour(0, SUCCESS=0, FAILED=0), hour(1)], series=OUTCOMES, href=drill, title="t"
        )
    )

    assert links(root) == [] and segments(root) == []
    assert root.find("s:desc", NS).text == (
        "No jobs from 2026-12-06 14:00 to 2026-12-06 16:00 UTC."
    )


def test_empty_data_is_a_valid_chart_that_says_so():
    root = parse(stacked_bars([], series=OUTCOMES, href=drill, title="t"))

    assert links(root) == []
    assert root.find("s:desc", NS).text == "No jobs: nothing to show."
    assert stacked_bars_table([], series=OUTCOMES) == (
        ["Time", "SUCCESS", "FAILED", "UNKNOWN", "All jobs"],
        [],
    )


def test_one_bin_spans_the_plot_and_is_labelled():
    root = parse(stacked_bars([hour(0, SUCCESS=2)], series=OUTCOMES, href=drill, title="t"))

    [(_, _, height)] = segments(root)
    assert height == pytest.approx(150 * 2 / 2)
    [tick] = root.findall(".//s:tspan[@data-time]", NS)
    assert (tick.get("data-time"), tick.get("data-time-format"), tick.text) == (
        "2026-12-06T14:00:00Z",
        "hour",
        "14:00",
    )


def test_time_labels_are_thinned_on_narrow_bins_and_carry_their_format():
    bins = [hour(i, SUCCESS=1) for i in range(24)]

    root = parse(stacked_bars(bins, series=OUTCOMES, href=drill, title="t", time_format="day"))

    ticks = root.findall(".//s:tspan[@data-time]", NS)
    assert [t.get("data-time") for t in ticks] == [
        f"2026-12-{6 + (14 + i) // 24:02d}T{(14 + i) % 24:02d}:00:00Z" for i in range(0, 24, 4)
    ]
    assert {t.get("data-time-format") for t in ticks} == {"day"}
    assert ticks[0].text == "12-06"
    assert root.find(".//s:tspan[@data-time-zone]", NS).text == "UTC"
    assert [tick_step(n) for n in (1, 6, 24, 28, 30, 400)] == [1, 1, 4, 4, 4, 400]


def test_hostile_labels_are_escaped_everywhere():
    evil = [Series("FAILED", HOSTILE, "outcome-failed")]
    svg = stacked_bars(
        [hour(0, FAILED=1)],
        series=evil,
        href=lambda b, key: '/jobs/?q="><script>',
        label=lambda b: HOSTILE,
        title=HOSTILE,
    )
    root = parse(svg)

    assert "<script>" not in svg
    [link] = links(root)
    assert link.get("href") == '/jobs/?q="><script>'
    assert link.get("aria-label") == f"{HOSTILE}: 1 job, {HOSTILE}"
    assert root.find("s:title", NS).text == HOSTILE
    bars = horizontal_bars([Bar(HOSTILE, 1, HOSTILE, '"><script>')], title=HOSTILE)
    assert "<script>" not in bars
    assert parse(bars).find(".//s:a", NS).get("href") == '"><script>'
    line = line_chart(
        [LinePoint(START, START, {"p50": 1})], series=[Series("p50", HOSTILE, "x")], title=HOSTILE
    )
    assert "<script>" not in line
    parse(line)


def test_summary_and_table_of_stacked_bars():
    bins = [hour(0, SUCCESS=3, FAILED=1, UNKNOWN=0), hour(1, SUCCESS=5, FAILED=0, UNKNOWN=2)]

    summary = stacked_bars_summary(bins, series=OUTCOMES)
    headers, rows = stacked_bars_table(bins, series=OUTCOMES)

    assert summary == (
        "11 jobs from 2026-12-06 14:00 to 2026-12-06 16:00 UTC: 8 SUCCESS, 1 FAILED, 2 UNKNOWN; "
        "the most, 7, 2026-12-06 15:00 to 16:00 UTC."
    )
    assert headers == ["Time", "SUCCESS", "FAILED", "UNKNOWN", "All jobs"]
    assert [row[1:] for row in rows] == [[3, 1, 0, 4], [5, 0, 2, 7]]
    assert str(rows[0][0]) == (
        '<span data-time="2026-12-06T14:00:00Z" data-time-format="datetime">2026-12-06 14:00'
        '</span> to <span data-time="2026-12-06T15:00:00Z" data-time-format="hour">15:00</span> '
        '<span data-time-zone="">UTC</span>'
    )


def test_horizontal_bars_in_the_given_order_with_text_beside_and_links():
    rows = [
        Bar("eu1", 0.5, "50 %", "/jobs/?cluster=1"),
        Bar("us1", 0.25, "25 %"),
        Bar("zero", 0, "0 %"),
    ]

    root = parse(horizontal_bars(rows, title="Failure rate", max_value=1))

    texts = [t.text for t in root.iterfind(".//s:text", NS)]
    assert texts == ["eu1", "50 %", "us1", "25 %", "zero", "0 %"]
    [link] = links(root)
    assert link.get("href") == "/jobs/?cluster=1"
    widths = [
        float(r.get("width")) for r in root.iterfind(".//s:rect[@class='chart-seg chart-bar']", NS)
    ]
    tracks = [float(r.get("width")) for r in root.iterfind(".//s:rect[@class='chart-track']", NS)]
    assert widths[0] == pytest.approx(tracks[0] / 2) and widths[1] == pytest.approx(tracks[0] / 4)
    assert widths[2] == 0
    assert horizontal_bars_summary(rows) == "3 rows; the highest eu1 (50 %), the lowest zero (0 %)."
    assert horizontal_bars_table(rows, value_header="Failure rate") == (
        ["Name", "Failure rate"],
        [["eu1", "50 %"], ["us1", "25 %"], ["zero", "0 %"]],
    )


def test_horizontal_bars_without_rows_or_with_a_value_above_the_maximum():
    root = parse(horizontal_bars([], title="t"))
    assert [t.text for t in root.iterfind(".//s:text", NS)] == ["Nothing to show."]
    assert horizontal_bars_summary([]) == "Nothing to show."
    over = parse(horizontal_bars([Bar("a", 2, "200 %")], title="t", max_value=1))
    [bar] = over.findall(".//s:rect[@class='chart-seg chart-bar']", NS)
    [track] = over.findall(".//s:rect[@class='chart-track']", NS)
    assert bar.get("width") == track.get("width")


def test_line_chart_series_differ_in_marker_and_dash_and_break_where_no_value():
    points = [
        LinePoint(
            START + timedelta(hours=i),
            START + timedelta(hours=i + 1),
            {"p50": 100.0 * (i + 1), "p95": None if i == 1 else 400.0},
        )
        for i in range(3)
    ]

    root = parse(line_chart(points, series=CALLS, title="Call time"))

    lines = root.findall(".//s:polyline", NS)
    assert [(line.get("class"), line.get("stroke-dasharray")) for line in lines] == [
        ("chart-line series-p50", None),
        ("chart-line series-p95", "6 3"),
        ("chart-line series-p95", "6 3"),
    ]
    assert len(lines[0].get("points").split()) == 3
    markers = [
        m for m in root.iterfind(".//s:g/s:g/*", NS) if "chart-marker" in (m.get("class") or "")
    ]
    assert [m.tag.split("}")[1] for m in markers] == ["circle"] * 3 + ["rect"] * 2
    tooltips = [t.text for t in root.iterfind(".//s:g/s:g/s:title", NS)]
    assert tooltips[0] == "p50: 100 ms, 2026-12-06 14:00 to 15:00 UTC"
    # Heights in proportion: 100, 200, 300 on a scale to 500.
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])
    assert root.get("role") == "img"


def test_line_chart_summary_and_table():
    points = [
        LinePoint(START, START + timedelta(hours=1), {"p50": 120.0, "p95": 900.5}),
        LinePoint(
            START + timedelta(hours=1), START + timedelta(hours=2), {"p50": 80.0, "p95": None}
        ),
    ]

    assert line_chart_summary(points, series=CALLS) == (
        "p50 highest 120 ms, 2026-12-06 14:00 to 15:00 UTC; "
        "p95 highest 900.5 ms, 2026-12-06 14:00 to 15:00 UTC."
    )
    headers, rows = line_chart_table(points, series=CALLS)
    assert headers == ["Time", "p50", "p95"]
    assert [row[1:] for row in rows] == [["120 ms", "900.5 ms"], ["80 ms", "—"]]
    assert line_chart_summary([], series=CALLS) == "No values: nothing to show."
    parse(line_chart([], series=CALLS, title="t"))


def test_a_table_of_numbers_is_what_a_template_loop_over_its_cells_writes():
    bins = [hour(0, SUCCESS=3, FAILED=1_234, UNKNOWN=0)]
    hostile = ["<b>\"x\" & 'y'</b>", "—"]
    loop = Template(
        '<thead><tr>{% for header in headers %}<th scope="col">{{ header }}</th>{% endfor %}'
        "</tr></thead><tbody>{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>"
        "{% endfor %}</tr>{% endfor %}</tbody>"
    )

    for headers, rows in [
        stacked_bars_table(bins, series=OUTCOMES),
        ([*hostile, "a"], [hostile, [1, 2.5]]),
    ]:
        context = Context({"headers": headers, "rows": rows})
        assert table_html(headers, rows) == loop.render(context)
