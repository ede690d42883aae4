"""Geometry for the server-rendered bar chart of events over time.

The template draws bars in an SVG stretched to the plot's width and puts the
axis labels in HTML around it, so the chart fits a phone or a wide screen and
its text stays readable at any size. No JavaScript is needed to see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dashboard.stats import Bucket

# The plot's own coordinate system: each bar is one unit wide, 100 units tall.
PLOT_HEIGHT = 100
BAR_GAP = 0.15  # the share of each slot left empty beside its bar
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the bucket in words, e.g. "10 Mar 2026, 14:00–15:00 UTC"
    previous: int | None = None  # the same bucket of the period before, when compared

    @property
    def tip(self) -> str:
        """The exact figure that static/js/charts.js shows on hover and keyboard focus."""
        text = f"{self.label}: {self.count:,} event{'' if self.count == 1 else 's'}"
        if self.previous is not None:
            text += f" (previous period: {self.previous:,})"
        return text


@dataclass(frozen=True)
class Tick:
    value: int
    percent: float  # from the bottom of the plot

    @property
    def y(self) -> float:
        return PLOT_HEIGHT - self.percent


@dataclass(frozen=True)
class AxisLabel:
    text: str
    percent: float  # the bucket's centre, from the left of the plot

    @property
    def edge(self) -> str:
        """Labels near an end are shifted inwards so they are not cut off."""
        if self.percent < 8:
            return "edge-start"
        return "edge-end" if self.percent > 92 else ""


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int  # viewBox width: one unit per bucket
    height: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_labels: list[AxisLabel]
    total: int
    peak: Bar | None
    # The previous period's counts as a faint polyline over the bars ("x,y x,y ..."), or "".
    previous_points: str = ""

    @property
    def description(self) -> str:
        """What a screen reader hears instead of the picture."""
        if not self.bars:
            return f"{self.title}: no buckets."
        first, last = self.bars[0].label, self.bars[-1].label
        text = f"{self.title}, {len(self.bars)} bars from {first} to {last}. Total {self.total:,} events."
        if self.peak is not None and self.peak.count:
            text += f" Highest: {self.peak.count:,} in {self.peak.label}."
        return text


def compact(value: float) -> str:
    """An axis figure short enough for any magnitude: 950, 1.2k, 25k, 3.4M, 1.2B."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def nice_ceiling(value: int) -> tuple[int, int]:
    """(axis maximum, tick step): the smallest 1-2-5 step that fits `value` in at most four steps."""
    if value <= 0:
        return 1, 1
    magnitude = 10 ** max(0, math.floor(math.log10(value / 4)) if value >= 4 else 0)
    for multiple in (1, 2, 5, 10):
        step = multiple * magnitude
        if step * 4 >= value:
            return step * math.ceil(value / step), step
    raise AssertionError("unreachable: a step of 10 × magnitude always fits")


def bucket_label(start: datetime, *, hourly: bool) -> str:
    if hourly:
        return f"{start.day} {start:%b %Y}, {start:%H}:00–{(start.hour + 1) % 24:02d}:00 UTC"
    return f"{start.day} {start:%b %Y} (UTC)"


def axis_label(start: datetime, *, hourly: bool, first: bool) -> str:
    """Short x labels: hours, with the date at midnight and on the first label."""
    day = f"{start.day} {start:%b}"
    if hourly:
        return f"{day} {start:%H}:00" if first or start.hour == 0 else f"{start:%H}:00"
    return day


def bar_chart(buckets: list[Bucket], *, hourly: bool, previous: list[Bucket] | None = None) -> BarChart:
    """Bars of `buckets`; with `previous` (the period before, bucket for bucket),
    a faint line of its counts and both figures in each bar's tip."""
    n = len(buckets)
    if previous is not None and len(previous) != n:
        previous = None  # a period that crosses a change of bucket size: nothing to line up
    top = max([b.count for b in buckets] + [b.count for b in previous or []], default=0)
    axis_max, step = nice_ceiling(top)
    bars = []
    for i, bucket in enumerate(buckets):
        height = bucket.count * PLOT_HEIGHT / axis_max
        bars.append(
            Bar(
                x=i + BAR_GAP / 2,
                y=PLOT_HEIGHT - height,
                width=1 - BAR_GAP,
                height=height,
                count=bucket.count,
                label=bucket_label(bucket.start, hourly=hourly),
                previous=previous[i].count if previous is not None else None,
            )
        )
    points = ""
    if previous is not None and n:
        points = " ".join(
            f"{i + 0.5:.3f},{PLOT_HEIGHT - b.count * PLOT_HEIGHT / axis_max:.3f}" for i, b in enumerate(previous)
        )
    ticks = [Tick(value=v, percent=v * 100 / axis_max) for v in range(0, axis_max + 1, step)]
    every = max(1, math.ceil(n / MAX_X_LABELS))
    if hourly and n > MAX_X_LABELS:
        every = next(h for h in (2, 3, 4, 6, 12, 24) if n / h <= MAX_X_LABELS)
        # Hourly labels land on round hours (every 3 h: 00, 03, 06 ...).
        offset = next((i for i, b in enumerate(buckets) if b.start.hour % every == 0), 0)
    else:
        offset = 0
    labels = [
        AxisLabel(
            text=axis_label(buckets[i].start, hourly=hourly, first=(i == offset)),
            percent=(i + 0.5) * 100 / n,
        )
        for i in range(offset, n, every)
    ]
    peak = max(bars, key=lambda bar: bar.count, default=None)
    title = "Events per hour (UTC)" if hourly else "Events per day (UTC)"
    return BarChart(
        title=title,
        width=n,
        height=PLOT_HEIGHT,
        bars=bars,
        y_ticks=ticks,
        x_labels=labels,
        total=sum(b.count for b in buckets),
        peak=peak,
        previous_points=points,
    )


# --- Stacked bars: several series per bucket ----------------------------------------------

SERIES_COLOURS = 8  # CSS classes stack-0 … stack-7 (dashboard.css); the summed rest is stack-rest


@dataclass(frozen=True)
class StackPiece:
    series: int  # index into StackedChart.series
    y: float
    height: float


@dataclass(frozen=True)
class StackColumn:
    x: float
    width: float
    label: str  # the bucket in words
    values: list[float]  # one per series
    pieces: list[StackPiece]  # bottom first; zero values left out

    @property
    def total(self) -> float:
        return sum(self.values)


@dataclass(frozen=True)
class StackSeries:
    name: str
    css: str
    total: float


@dataclass(frozen=True)
class StackedChart:
    """Bars of several series stacked per bucket, bottom series first; with
    `percent`, values are percentages on a 0–100 axis."""

    title: str
    unit: str  # what a value counts, for the description and the tooltips ("users")
    width: int
    height: int
    series: list[StackSeries]  # bottom first
    columns: list[StackColumn]
    y_ticks: list[Tick]
    x_labels: list[AxisLabel]
    percent: bool = False

    @property
    def legend(self) -> list[StackSeries]:
        """The series top first, as they appear in the stack."""
        return self.series[::-1]

    def format(self, value: float) -> str:
        return f"{value:.1f}%" if self.percent else f"{round(value):,}"

    @property
    def description(self) -> str:
        """What a screen reader hears instead of the picture."""
        if not self.columns:
            return f"{self.title}: no buckets."
        first, last = self.columns[0].label, self.columns[-1].label
        text = f"{self.title}, {len(self.columns)} bars from {first} to {last}"
        if len(self.series) > 1:
            text += ", stacked: " + ", ".join(series.name for series in self.legend)
        text += "."
        if not self.percent:
            peak = max(self.columns, key=lambda column: column.total)
            if peak.total:
                text += f" Highest: {self.format(peak.total)} {self.unit} on {peak.label}."
        return text


def stacked_chart(
    starts: list[datetime],
    series: list[tuple[str, list[float]]],
    *,
    title: str,
    unit: str,
    hourly: bool = False,
    percent: bool = False,
    rest: int | None = None,
) -> StackedChart:
    """A stacked bar per bucket start; `series` are (name, value per bucket),
    bottom first. `rest` is the index of a series that sums what is not shown
    on its own (drawn in grey)."""
    n = len(starts)
    totals = [sum(values[i] for _, values in series) for i in range(n)]
    if percent:
        axis_max, step = 100, 25
    else:
        axis_max, step = nice_ceiling(math.ceil(max(totals, default=0)))
    columns = []
    for i, start in enumerate(starts):
        values = [values[i] for _, values in series]
        pieces, bottom = [], float(PLOT_HEIGHT)
        for index, value in enumerate(values):
            if value <= 0:
                continue
            height = value * PLOT_HEIGHT / axis_max
            bottom -= height
            pieces.append(StackPiece(series=index, y=bottom, height=height))
        columns.append(
            StackColumn(
                x=i + BAR_GAP / 2, width=1 - BAR_GAP, label=bucket_label(start, hourly=hourly), values=values, pieces=pieces
            )
        )
    every = max(1, math.ceil(n / MAX_X_LABELS))
    labels = [
        AxisLabel(text=axis_label(starts[i], hourly=hourly, first=i == 0), percent=(i + 0.5) * 100 / n)
        for i in range(0, n, every)
    ]
    # Colours go from the top of the stack down, so the top series always gets the first one.
    own = [index for index in range(len(series)) if index != rest][::-1]
    colours = {index: f"stack-{position % SERIES_COLOURS}" for position, index in enumerate(own)}
    return StackedChart(
        title=title,
        unit=unit,
        width=n,
        height=PLOT_HEIGHT,
        series=[
            StackSeries(name=name, css=colours.get(index, "stack-rest"), total=sum(values))
            for index, (name, values) in enumerate(series)
        ],
        columns=columns,
        y_ticks=[Tick(value=v, percent=v * 100 / axis_max) for v in range(0, axis_max + 1, step)],
        x_labels=labels,
        percent=percent,
    )
