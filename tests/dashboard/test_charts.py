"""The bar chart's markup: one group per bucket with its tooltip, and the same numbers as a table."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from django.template.loader import render_to_string

from dashboard.charts import bar_chart, compact
from dashboard.stats import Bucket
from dashboard.templatetags.analytics import chart_bars, chart_rows

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def chart(*counts: int, hourly: bool = False):
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    return bar_chart([Bucket(START + i * step, n) for i, n in enumerate(counts)], hourly=hourly)


def test_each_bar_has_its_tooltip_hit_area_and_geometry():
    html = chart_bars(chart(1, 1234, 0))

    groups = re.findall(r'<g class="chart-bucket" (data-tip=".*?")>(.*?)</g>', html)
    assert len(groups) == 3
    assert [tip for tip, _ in groups] == [
        'data-tip="1 Mar 2026 (UTC): 1 event"',
        'data-tip="2 Mar 2026 (UTC): 1,234 events"',
        'data-tip="3 Mar 2026 (UTC): 0 events"',
    ]
    groups = [inner for _, inner in groups]
    assert '<rect class="chart-hit" x="2" y="0" width="1" height="100"></rect>' in groups[2]
    # The tallest bar fills the axis (1,234 of 1,500), the empty one has no height.
    assert re.search(r'class="chart-bar" x="1\.075" y="17\.733" width="0\.850" height="82\.267"', groups[1])
    assert 'height="0.000"' in groups[2]


def test_the_table_lists_every_bucket_with_its_count():
    html = chart_rows(chart(5, 12_345, hourly=True))

    assert re.findall(r'<tr><th scope="row">(.*?)</th><td class="num">(.*?)</td></tr>', html) == [
        ("1 Mar 2026, 00:00–01:00 UTC", "5"),
        ("1 Mar 2026, 01:00–02:00 UTC", "12,345"),
    ]


def test_labels_are_escaped():
    plain = chart(3)
    tricky = replace(plain, bars=[replace(plain.bars[0], label='<script>"x"</script>')])

    for html in (chart_bars(tricky), chart_rows(tricky)):
        assert "<script>" not in html
        assert "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in html


def test_the_chart_template_draws_every_bucket_twice():
    html = render_to_string("dashboard/_chart.html", {"chart": chart(*range(90)), "period": None})

    assert html.count('class="chart-bucket"') == 90
    assert html.count('<tr><th scope="row">') == 90


def test_the_previous_period_is_a_faint_line_on_the_same_axis():
    current = [Bucket(START + timedelta(days=i), n) for i, n in enumerate([10, 20])]
    before = [Bucket(START - timedelta(days=2 - i), n) for i, n in enumerate([40, 0])]

    drawn = bar_chart(current, hourly=False, previous=before)

    # The axis fits the higher of both periods (40), each point on its bucket's centre.
    assert [tick.value for tick in drawn.y_ticks][-1] == 40
    assert drawn.previous_points == "0.500,0.000 1.500,100.000"
    assert drawn.bars[0].tip == "1 Mar 2026 (UTC): 10 events (previous period: 40)"
    html = render_to_string("dashboard/_chart.html", {"chart": drawn, "period": None})
    assert '<polyline class="chart-previous" points="0.500,0.000 1.500,100.000"' in html
    assert re.findall(r'<td class="num">(.*?)</td>', chart_rows(drawn)) == ["10", "40", "20", "0"]


def test_no_line_when_the_periods_do_not_line_up():
    drawn = bar_chart([Bucket(START, 1)], hourly=False, previous=[])
    assert drawn.previous_points == ""
    assert drawn.bars[0].previous is None
    assert "chart-previous" not in render_to_string("dashboard/_chart.html", {"chart": drawn, "period": None})


def test_the_y_axis_reads_at_any_magnitude():
    assert [compact(v) for v in (0, 950, 1000, 1200, 25_000, 3_400_000, 1_250_000_000)] == [
        "0", "950", "1k", "1.2k", "25k", "3.4M", "1.2B"
    ]
    html = render_to_string("dashboard/_chart.html", {"chart": chart(2_400_000), "period": None})
    labels = re.search(r'<div class="chart-y" aria-hidden="true">(.*?)</div>', html, re.S).group(1)
    assert re.findall(r"<span>(.*?)</span>", labels) == ["0", "1M", "2M", "3M"]


def test_the_chart_has_no_inline_style_and_is_reachable_by_keyboard():
    html = render_to_string("dashboard/_chart.html", {"chart": chart(*range(30)), "period": None})

    assert "style=" not in html
    assert '<div class="chart-plot" tabindex="0" role="group"' in html
    # x labels are SVG text placed in percent of the plot (attributes, not styles).
    assert re.search(r'<text x="\d+\.\d{3}%" y="1em" text-anchor="(start|middle|end)"', html)
