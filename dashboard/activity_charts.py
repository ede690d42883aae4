"""Geometry of the retention page's two charts, drawn by the server like dashboard.charts.

Active users are lines (DAU, WAU, MAU) in an SVG stretched to the plot's
width; new and returning users are stacked bars. Axis labels are HTML
around the SVG (templates/dashboard/_chart.html's layout and CSS), so text
stays readable on a phone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dashboard.activity import DayActivity, NewReturning
from dashboard.charts import MAX_X_LABELS, PLOT_HEIGHT, AxisLabel, Tick, nice_ceiling

BAR_GAP = 0.15


@dataclass(frozen=True)
class Line:
    name: str
    css: str  # the line's class, which sets its colour
    points: str  # SVG polyline points in the plot's units
    last: int


@dataclass(frozen=True)
class LineChart:
    title: str
    width: int
    height: int
    lines: list[Line]
    y_ticks: list[Tick]
    x_labels: list[AxisLabel]
    description: str
    # Each day's figures in words, shown on hover and keyboard focus (static/js/charts.js).
    tips: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackedBar:
    x: float
    width: float
    new_y: float
    new_height: float
    returning_y: float
    returning_height: float
    label: str
    new: int
    returning: int


@dataclass(frozen=True)
class StackedChart:
    title: str
    width: int
    height: int
    bars: list[StackedBar]
    y_ticks: list[Tick]
    x_labels: list[AxisLabel]
    description: str


def day_label(day) -> str:
    return f"{day.day} {day:%b %Y}"


def _ticks(top: int) -> tuple[int, list[Tick]]:
    axis_max, step = nice_ceiling(top)
    return axis_max, [Tick(value=v, percent=v * 100 / axis_max) for v in range(0, axis_max + 1, step)]


def _x_labels(days: list, n: int) -> list[AxisLabel]:
    every = max(1, math.ceil(n / MAX_X_LABELS))
    return [AxisLabel(text=f"{days[i].day} {days[i]:%b}", percent=(i + 0.5) * 100 / n) for i in range(0, n, every)]


def active_users_chart(days: list[DayActivity]) -> LineChart:
    """DAU, WAU and MAU per day as three lines over one y axis."""
    n = len(days)
    axis_max, ticks = _ticks(max((day.mau for day in days), default=0))

    def points(values: list[int]) -> str:
        # A lone day is a short flat segment, so it still shows.
        if n == 1:
            y = PLOT_HEIGHT - values[0] * PLOT_HEIGHT / axis_max
            return f"0.2,{y:.3f} 0.8,{y:.3f}"
        return " ".join(f"{i + 0.5:.3f},{PLOT_HEIGHT - v * PLOT_HEIGHT / axis_max:.3f}" for i, v in enumerate(values))

    series = [
        ("Monthly active (30 days)", "line-mau", [day.mau for day in days]),
        ("Weekly active (7 days)", "line-wau", [day.wau for day in days]),
        ("Daily active", "line-dau", [day.dau for day in days]),
    ]
    lines = [Line(name, css, points(values), values[-1] if values else 0) for name, css, values in series]
    description = "Active users per UTC day: no days."
    if days:
        last = days[-1]
        description = (
            f"Active users per UTC day from {day_label(days[0].day)} to {day_label(last.day)}. "
            f"On the last day: {last.dau:,} daily, {last.wau:,} weekly, {last.mau:,} monthly active users."
        )
    return LineChart(
        title="Active users per day (UTC)",
        width=n,
        height=PLOT_HEIGHT,
        lines=lines,
        y_ticks=ticks,
        x_labels=_x_labels([day.day for day in days], n) if n else [],
        description=description,
        tips=tuple(
            f"{day_label(day.day)} (UTC{', so far' if day.partial else ''}): {day.dau:,} daily, {day.wau:,} weekly,"
            f" {day.mau:,} monthly active users"
            for day in days
        ),
    )


def new_returning_chart(buckets: list[NewReturning], *, weekly: bool) -> StackedChart:
    """New users at the bottom of each bar, returning users on top."""
    n = len(buckets)
    axis_max, ticks = _ticks(max((b.active for b in buckets), default=0))
    bars = []
    for i, bucket in enumerate(buckets):
        new_height = bucket.new * PLOT_HEIGHT / axis_max
        returning_height = bucket.returning * PLOT_HEIGHT / axis_max
        label = day_label(bucket.first) if bucket.first == bucket.last else f"{day_label(bucket.first)} – {day_label(bucket.last)}"
        bars.append(
            StackedBar(
                x=i + BAR_GAP / 2,
                width=1 - BAR_GAP,
                new_y=PLOT_HEIGHT - new_height,
                new_height=new_height,
                returning_y=PLOT_HEIGHT - new_height - returning_height,
                returning_height=returning_height,
                label=label + " (UTC)",
                new=bucket.new,
                returning=bucket.returning,
            )
        )
    unit = "week" if weekly else "day"
    new = sum(b.new for b in buckets)
    return StackedChart(
        title=f"New and returning users per {unit} (UTC)",
        width=n,
        height=PLOT_HEIGHT,
        bars=bars,
        y_ticks=ticks,
        x_labels=_x_labels([b.first for b in buckets], n) if n else [],
        description=f"New and returning users per UTC {unit}, {n} bars; {new:,} new users in all.",
    )
