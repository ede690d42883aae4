"""The stacked bar chart: pieces stacked without gaps, every value in the tooltip and the table, names escaped."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from dashboard.charts import PLOT_HEIGHT, stacked_chart
from dashboard.templatetags.analytics import stacked_bars, stacked_rows

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def days(n: int) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


@given(st.lists(st.lists(st.integers(min_value=0, max_value=10_000), min_size=3, max_size=3), min_size=1, max_size=4))
def test_pieces_stack_from_the_bottom_without_gaps_and_the_tallest_fits(values):
    series = [(f"v{i}", values[i]) for i in range(len(values))]
    chart = stacked_chart(days(3), series, title="Users", unit="users")
    axis_max = chart.y_ticks[-1].value
    assert axis_max >= max(column.total for column in chart.columns)
    for column in chart.columns:
        bottom = PLOT_HEIGHT
        for piece in column.pieces:
            assert abs(piece.y + piece.height - bottom) < 1e-9
            assert abs(piece.height - column.values[piece.series] * PLOT_HEIGHT / axis_max) < 1e-9
            bottom = piece.y
        assert [piece.series for piece in column.pieces] == [i for i, value in enumerate(column.values) if value > 0]


def test_tooltips_and_rows_list_the_series_top_first_with_the_total():
    chart = stacked_chart(
        days(2), [("Older versions (3)", [4, 0]), ("1.0.0", [1, 2]), ("<b>2.0</b>", [5, 0])], title="Users", unit="users", rest=0
    )
    assert [series.css for series in chart.legend] == ["stack-0", "stack-1", "stack-rest"]
    groups = re.findall(r'<g class="chart-bucket" data-tip="(.*?)">', stacked_bars(chart))
    assert groups[0] == "1 Mar 2026 (UTC); &lt;b&gt;2.0&lt;/b&gt;: 5; 1.0.0: 1; Older versions (3): 4; Total: 10 users"
    rows = re.findall(r"<tr>(.*?)</tr>", stacked_rows(chart))
    assert re.findall(r'<td class="num">(.*?)</td>', rows[1]) == ["0", "2", "0", "2"]
    assert "Highest: 10 users on 1 Mar 2026 (UTC)" in chart.description


def test_a_percent_chart_runs_from_0_to_100():
    chart = stacked_chart(days(2), [("share", [50.0, 12.345])], title="Rollout", unit="%", percent=True)
    assert [tick.value for tick in chart.y_ticks] == [0, 25, 50, 75, 100]
    assert chart.columns[0].pieces[0].height == 50.0
    assert re.findall(r'<td class="num">(.*?)</td>', stacked_rows(chart)) == ["50.0%", "12.3%"]
