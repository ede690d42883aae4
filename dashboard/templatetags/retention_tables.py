"""The Retention page's repeated markup: chart bars, table rows and cohort cells.

A 90-day range has 90 bars and 90 rows per table and the cohort tables over
300 cells: written here in one go, as dashboard.templatetags.analytics does
for the events chart, rather than by template tags per cell, which took most
of the page's time. Labels are escaped; everything else is a number
formatted here.
"""

from __future__ import annotations

from datetime import date

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dashboard.activity import Cohort, DayActivity, NewReturning
from dashboard.activity_charts import LineChart, StackedChart
from dashboard.templatetags.analytics import percent

register = template.Library()


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


@register.simple_tag
def stacked_bars(chart: StackedChart) -> SafeString:
    """New (bottom) and returning (top) bars, each with its hit area and tooltip."""
    return mark_safe(
        "".join(
            f'<g class="chart-bucket" data-tip="{escape(bar.label)}: {bar.new:,} new, {bar.returning:,} returning">'
            f'<rect class="chart-hit" x="{i}" y="0" width="1" height="{chart.height}"></rect>'
            f'<rect class="bar-returning" x="{bar.x:.3f}" y="{bar.returning_y:.3f}" width="{bar.width:.3f}" height="{bar.returning_height:.3f}"></rect>'
            f'<rect class="bar-new" x="{bar.x:.3f}" y="{bar.new_y:.3f}" width="{bar.width:.3f}" height="{bar.new_height:.3f}"></rect></g>'
            for i, bar in enumerate(chart.bars)
        )
    )


@register.simple_tag
def line_hits(chart: LineChart) -> SafeString:
    """One hit area per day over the lines, carrying its figures for static/js/charts.js."""
    return mark_safe(
        "".join(
            f'<g class="chart-bucket" data-tip="{escape(tip)}"><rect class="chart-hit" x="{i}" y="0" width="1"'
            f' height="{chart.height}"></rect></g>'
            for i, tip in enumerate(chart.tips)
        )
    )


@register.simple_tag
def activity_rows(days: list[DayActivity]) -> SafeString:
    return mark_safe(
        "".join(
            f'<tr><th scope="row">{_day(d.day)}{" (so far)" if d.partial else ""}</th><td class="num">{d.dau:,}</td>'
            f'<td class="num">{d.wau:,}</td><td class="num">{d.mau:,}</td><td class="num">{percent(d.stickiness)}</td></tr>'
            for d in days
        )
    )


@register.simple_tag
def new_returning_rows(buckets: list[NewReturning]) -> SafeString:
    rows = []
    for b in buckets:
        label = _day(b.first) if b.first == b.last else f"{b.first.day} {b.first:%b} – {b.last.day} {b.last:%b %Y}"
        rows.append(
            f'<tr><th scope="row">{label}{" (so far)" if b.partial else ""}</th><td class="num">{b.active:,}</td>'
            f'<td class="num">{b.new:,}</td><td class="num">{b.returning:,}</td></tr>'
        )
    return mark_safe("".join(rows))


@register.simple_tag
def cohort_rows(cohorts: list[Cohort], unit: str) -> SafeString:
    """One row per cohort: its first-seen period, size, and a shaded cell per later period.

    A cell's shade is its share in tenths (CSS shade-0 … shade-10); * marks a period not over yet;
    a period not begun is blank, never 0 %."""
    rows = []
    for cohort in cohorts:
        if unit == "Week":
            label = f"{cohort.first.day} {cohort.first:%b} – {cohort.last.day} {cohort.last:%b %Y}"
        else:
            label = _day(cohort.first)
        cells = []
        for cell in cohort.cells:
            if cell.users is None:
                cells.append('<td class="cell future"><span class="visually-hidden">not begun</span></td>')
            elif cell.share is None:
                cells.append('<td class="cell num">–</td>')
            else:
                classes = "cell num" + (" dark" if cell.share >= 50 else "") + (" partial" if cell.partial else "")
                title = f"{cell.users:,} of {cohort.size:,} users" + (", so far" if cell.partial else "")
                mark = "*" if cell.partial else ""
                cells.append(
                    f'<td class="{classes} shade-{min(10, max(0, round(cell.share / 10)))}" title="{title}">{percent(cell.share, 0)}{mark}</td>'
                )
        rows.append(
            f'<tr><th scope="row">{label}{" *" if cohort.partial else ""}</th><td class="num">{cohort.size:,}</td>{"".join(cells)}</tr>'
        )
    return mark_safe("".join(rows))
