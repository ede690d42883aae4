"""The bar chart's markup: one group per bucket with its tooltip, and the same numbers as a table."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from django.template.loader import render_to_string

from dashboard.charts import bar_chart
from dashboard.stats import Bucket
from dashboard.templatetags.analytics import chart_bars, chart_rows

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def chart(*counts: int, hourly: bool = False):
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    return bar_chart([Bucket(START + i * step, n) for i, n in enumerate(counts)], hourly=hourly)


def test_each_bar_has_its_tooltip_hit_area_and_geometry():
    html = chart_bars(chart(1, 1234, 0))

    groups = re.findall(r'<g class="chart-bucket">(.*?)</g>', html)
    assert len(groups) == 3
    assert "<title>1 Mar 2026 (UTC): 1 event</title>" in groups[0]
    assert "<title>2 Mar 2026 (UTC): 1,234 events</title>" in groups[1]
    assert "<title>3 Mar 2026 (UTC): 0 events</title>" in groups[2]
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
