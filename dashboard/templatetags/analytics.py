"""Formatting for the analytics pages. Filters only format; views pass ready values."""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dashboard import charts
from dashboard.charts import BarChart, StackedChart

register = template.Library()


@register.filter
def change(percent: float | None) -> str:
    """'+12%', '−5%', '±0%' against the previous period; '' when there is nothing to compare."""
    if percent is None:
        return ""
    rounded = round(percent)
    if rounded == 0:
        return "±0%"
    return f"+{rounded:,}%" if rounded > 0 else f"−{abs(rounded):,}%"


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def duration(ms: float | None) -> str:
    """Milliseconds as a person reads them: '850 ms', '1.2 s', '3 min 5 s'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


# A 90-day chart has 90 bars and 90 table rows: written here in one go rather
# than by template tags per bar, which took most of the page's rendering time.
# Labels are escaped; everything else is a number formatted here.


@register.filter
def compact(value) -> str:
    """An axis figure at any magnitude: 950, 1.2k, 3.4M (dashboard.charts.compact)."""
    return charts.compact(value)


@register.simple_tag
def chart_bars(chart: BarChart) -> SafeString:
    """The bars of the chart's SVG, each with its hit area; static/js/charts.js shows
    `data-tip` on hover and keyboard focus (the table below the chart has every figure)."""
    return mark_safe(
        "".join(
            f'<g class="chart-bucket" data-tip="{escape(bar.tip)}">'
            f'<rect class="chart-hit" x="{i}" y="0" width="1" height="{chart.height}"></rect>'
            f'<rect class="chart-bar" x="{bar.x:.3f}" y="{bar.y:.3f}" width="{bar.width:.3f}" height="{bar.height:.3f}"></rect></g>'
            for i, bar in enumerate(chart.bars)
        )
    )


ODD = ' class="odd"'  # every other x label, hidden on a phone (dashboard.css)


@register.simple_tag
def chart_x_labels(chart) -> SafeString:
    """The x axis as SVG text placed in percent of the plot's width: attributes, not
    inline styles, which the Content-Security-Policy forbids (docs/csp.md)."""
    anchors = {"edge-start": "start", "edge-end": "end", "": "middle"}
    return mark_safe(
        "".join(
            f'<text x="{label.percent:.3f}%" y="1em" text-anchor="{anchors[label.edge]}"'
            f'{ODD if i % 2 else ""}>{escape(label.text)}</text>'
            for i, label in enumerate(chart.x_labels)
        )
    )


@register.simple_tag
def share_bar(share: float) -> SafeString:
    """A bar behind a table cell's text, `share` percent wide (an SVG attribute, not a style)."""
    width = min(max(float(share or 0), 0.0), 100.0)
    return mark_safe(
        f'<svg class="share-bar" aria-hidden="true" focusable="false"><rect width="{width:.2f}%" height="100%" rx="4"></rect></svg>'
    )


@register.simple_tag
def chart_rows(chart: BarChart) -> SafeString:
    """The chart's numbers as rows of its table."""
    return mark_safe(
        "".join(
            f'<tr><th scope="row">{escape(bar.label)}</th><td class="num">{bar.count:,}</td>'
            + (f'<td class="num">{bar.previous:,}</td>' if bar.previous is not None else "")
            + "</tr>"
            for bar in chart.bars
        )
    )


@register.simple_tag
def breakdown_query(state, dimension: str, value) -> str | None:
    """The query string of a breakdown row's link that filters the page by its value
    (dashboard.filter_bar.PageState.breakdown_query), or None."""
    return state.breakdown_query(dimension, value) if state is not None else None


@register.simple_tag
def filter_query(state, **values) -> str | None:
    """The query string of a link that adds these filters to the page
    (dashboard.filter_bar.PageState.with_filters); None when they are all in effect."""
    if state is None or all(getattr(state.filters, name) == value for name, value in values.items()):
        return None
    return state.with_filters(**values)


@register.simple_tag
def stacked_bars(chart: StackedChart) -> SafeString:
    """The stacked bars of the chart's SVG, each bucket with its hit area and a tooltip of every value."""
    out = []
    for i, column in enumerate(chart.columns):
        lines = [f"{escape(column.label)}"]
        lines += [
            f"{escape(series.name)}: {chart.format(value)}" for series, value in zip(chart.legend, column.values[::-1])
        ]
        if len(chart.series) > 1:
            lines.append(f"Total: {chart.format(column.total)} {escape(chart.unit)}")
        pieces = "".join(
            f'<rect class="chart-piece {chart.series[piece.series].css}" x="{column.x:.3f}" y="{piece.y:.3f}"'
            f' width="{column.width:.3f}" height="{piece.height:.3f}"></rect>'
            for piece in column.pieces
        )
        out.append(
            f'<g class="chart-bucket" data-tip="{"; ".join(lines)}">'
            f'<rect class="chart-hit" x="{i}" y="0" width="1" height="{chart.height}"></rect>{pieces}</g>'
        )
    return mark_safe("".join(out))


@register.simple_tag
def stacked_rows(chart: StackedChart) -> SafeString:
    """The stacked chart's numbers as rows of its table: the bucket, each series top first, the total."""
    total = len(chart.series) > 1
    return mark_safe(
        "".join(
            f'<tr><th scope="row">{escape(column.label)}</th>'
            + "".join(f'<td class="num">{chart.format(value)}</td>' for value in column.values[::-1])
            + (f'<td class="num">{chart.format(column.total)}</td>' if total else "")
            + "</tr>"
            for column in chart.columns
        )
    )


# Release health and command pages have a p50, a p90 and a comparison on each of
# their ~100 rows: written here rather than by an {% include %} per cell, which
# took most of those pages' rendering time.


@register.simple_tag
def duration_estimate(estimate) -> SafeString:
    """A percentile read from the duration histogram (dashboard.stats.BucketPercentile):
    "≈" with its bounds in a tooltip unless exact, "≥" for the open last bucket."""
    if estimate is None:
        return mark_safe("—")
    shown = escape(duration(estimate.value))
    if estimate.exact:
        return shown
    if estimate.high is None:
        return mark_safe(
            f'<abbr class="estimate" title="At least {estimate.low:,} ms: the histogram\'s last bucket has no upper'
            f' edge">≥</abbr>{shown}'
        )
    error = f"{estimate.error:,.1f}".removesuffix(".0")
    return mark_safe(
        f'<abbr class="estimate" title="Estimated from the duration histogram: the exact value is between'
        f' {estimate.low:,} and {estimate.high:,} ms, so within ±{error} ms of this">≈</abbr>{shown}'
    )


@register.simple_tag
def health_comparison(comparison) -> SafeString:
    """A command in one version against the previous version that ran it (dashboard.health.Comparison)."""
    if comparison.previous_version is None:
        return mark_safe('<span class="muted">No earlier version ran it</span>')
    out = []
    for regression in comparison.regressions:
        previous = f'<span class="version">{escape(regression.previous_version)}</span>'
        if regression.failures:
            what = f'<strong class="flag">Fails more</strong> {percent(regression.after)} vs {percent(regression.before)} in {previous}'
        else:
            what = (
                f'<strong class="flag">Slower</strong> p50 ≈{duration(regression.after)} vs'
                f' ≈{duration(regression.before)} in {previous}'
            )
        out.append(f'<p class="regression">{what} <span class="sub">{escape(regression.test.p_text)}</span></p>')
    if not comparison.regressions:
        out.append(
            f'<span class="ok-text">No regression</span> <span class="muted">vs'
            f' <span class="version">{escape(comparison.previous_version)}</span></span>'
        )
    out += [f'<span class="sub">Not compared: {escape(reason)}</span>' for reason in comparison.not_tested]
    return mark_safe(" ".join(out))


@register.filter
def thousands(value) -> str:
    """A whole number with thousands separators, as intcomma writes it in English, without its per-call locale work."""
    return f"{value:,}" if isinstance(value, int) else str(value)
