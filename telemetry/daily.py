"""Daily rollups: HourlyRollup summed per app, UTC day, dimension and value.

A 90-day range of the duration histogram is about 100,000 hourly rows for a
busy app and 4,000 daily ones, so long ranges read whole closed days from
DailyRollup and only their ragged ends from HourlyRollup (dashboard.stats).

DailyRollup is a cache of the hourly counts (HourlyRollup plus the deltas
not folded into it yet), never the truth, and ingest never writes it.
`ensure_fresh` compares each closed day's `total` with the hourly counts' and
rebuilds the days that differ (late events) or are missing; deletions
(telemetry.storage: single events, dropped partitions, rebuilds) delete the
days they touch, so a day is never read stale. The current UTC day is never
built: it is still changing. telemetry.storage does the writing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.db.models import Max, Min, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from telemetry import storage
from telemetry.models import DailyRollup, HourlyCounts
from telemetry.periods import DAY, UTC, start_of_day as start_of


def closed_days(start: datetime, end: datetime, *, now: datetime | None = None) -> tuple[date, date] | None:
    """The first and last whole UTC day inside [start, end) that is already over; None when there is none."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    today = (now or timezone.now()).astimezone(UTC).date()
    first = start.date() if start == start_of(start.date()) else start.date() + DAY
    last = min(end.date() - DAY, today - DAY)  # the day `end` falls in is not whole, nor is today
    return (first, last) if first <= last else None


def events_per_day(app_ids: Sequence[int], first: date, last: date) -> dict[tuple[int, date], int]:
    """Stored events per app and UTC day in [first, last], from the hourly counts (days without any left out)."""
    rows = (
        HourlyCounts.objects.filter(
            app_id__in=list(app_ids), dimension="total", hour__gte=start_of(first), hour__lt=start_of(last) + DAY
        )
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("app_id", "day")
        .annotate(n=Sum("events"))
        .filter(n__gt=0)
        .values_list("app_id", "day", "n")
    )
    return {(app_id, day): n for app_id, day, n in rows}


def stored_days(app_id: int) -> tuple[date, date] | None:
    """The first and last UTC day the app has events on, from the hourly rollups; None without any."""
    bounds = HourlyCounts.objects.filter(app_id=app_id, dimension="total").aggregate(first=Min("hour"), last=Max("hour"))
    if bounds["first"] is None:
        return None
    return bounds["first"].astimezone(UTC).date(), bounds["last"].astimezone(UTC).date()


def ensure_fresh(app_ids: Sequence[int], first: date, last: date) -> None:
    """Make the apps' daily rollups of [first, last] match their hourly rollups (call it for closed days only)."""
    app_ids = list(app_ids)
    daily_totals = DailyRollup.objects.filter(
        app_id__in=app_ids, dimension="total", value="", day__gte=first, day__lte=last
    ).values_list("app_id", "day", "events")
    hourly = events_per_day(app_ids, first, last)
    daily = {(app_id, day): n for app_id, day, n in daily_totals}
    stale = defaultdict(set)
    for app_id, day in hourly.keys() | daily.keys():
        if hourly.get((app_id, day), 0) != daily.get((app_id, day), 0):
            stale[app_id].add(day)
    build(stale)


def build(stale: dict[int, Iterable[date]]) -> None:
    """(Re)build the daily rollups of these apps' days from their hourly counts."""
    storage.replace_daily_rollups(stale)


def refresh(app_id: int, *, now: datetime | None = None) -> None:
    """Bring every closed day of the app up to date (the scheduler's job, so page views rarely build any)."""
    stored = stored_days(app_id)
    days = closed_days(start_of(stored[0]), start_of(stored[1]) + DAY, now=now) if stored else None
    if days is not None:
        ensure_fresh([app_id], *days)
