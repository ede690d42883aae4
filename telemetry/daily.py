"""Daily rollups: HourlyRollup summed per app, UTC day, dimension and value.

A 90-day range of the duration histogram is about 100,000 hourly rows for a
busy app and 4,000 daily ones, so long ranges read whole closed days from
DailyRollup and only their ragged ends from HourlyRollup (dashboard.stats).

DailyRollup is a cache of HourlyRollup, never the truth, and ingest never
writes it. `ensure_fresh` compares each closed day's `total` with the hourly
rollups' and rebuilds the days that differ (late events) or are missing, in
one statement per app; deletions (telemetry.rollups.delete_events, dropped
partitions, rebuilds) delete the days they touch, so a day is never read
stale. The current UTC day is never built: it is still changing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.db.models import Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from telemetry.models import ROLLUP_DIMENSIONS, DailyRollup, HourlyRollup

UTC = dt_timezone.utc
DAY = timedelta(days=1)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def closed_days(start: datetime, end: datetime, *, now: datetime | None = None) -> tuple[date, date] | None:
    """The first and last whole UTC day inside [start, end) that is already over; None when there is none."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    today = (now or timezone.now()).astimezone(UTC).date()
    first = start.date() if start == start_of(start.date()) else start.date() + DAY
    last = min(end.date() - DAY, today - DAY)  # the day `end` falls in is not whole, nor is today
    return (first, last) if first <= last else None


def events_per_day(app_ids: Sequence[int], first: date, last: date) -> dict[tuple[int, date], int]:
    """Stored events per app and UTC day in [first, last], from the hourly rollups (days without any left out)."""
    rows = (
        HourlyRollup.objects.filter(
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
    bounds = HourlyRollup.objects.filter(app_id=app_id, dimension="total").aggregate(first=Min("hour"), last=Max("hour"))
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


def _day_sql() -> str:
    if connection.vendor == "postgresql":
        return "(hour AT TIME ZONE 'UTC')::date"
    return "date(hour)"  # SQLite keeps UTC datetimes as ISO text


def build(stale: dict[int, Iterable[date]]) -> None:
    """(Re)build the daily rollups of these apps' days from their hourly rollups,
    replacing what is there: one delete and one insert whatever the number of apps."""
    stale = {app_id: sorted(set(days)) for app_id, days in stale.items() if days}
    if not stale:
        return
    adapt_day = connection.ops.adapt_datefield_value
    adapt_moment = connection.ops.adapt_datetimefield_value
    table, hourly = DailyRollup._meta.db_table, HourlyRollup._meta.db_table
    dimension_list = ", ".join(["%s"] * len(ROLLUP_DIMENSIONS))
    # Per app: its hour range, then the exact days; `dimension IN (every dimension)`
    # lets PostgreSQL walk rollup_key (app, dimension, hour) one dimension at a time.
    per_app = " OR ".join(
        f"(app_id = %s AND hour >= %s AND hour < %s AND {_day_sql()} IN ({', '.join(['%s'] * len(days))}))"
        for days in stale.values()
    )
    sql = f"""
        INSERT INTO {table} AS d (app_id, day, dimension, value, events, succeeded, failed, timed, duration_ms_sum)
        SELECT app_id, {_day_sql()}, dimension, value,
               sum(events), sum(succeeded), sum(failed), sum(timed), sum(duration_ms_sum)
        FROM {hourly}
        WHERE dimension IN ({dimension_list}) AND ({per_app})
        GROUP BY app_id, {_day_sql()}, dimension, value
        ON CONFLICT (app_id, dimension, day, value) DO UPDATE SET
            events = excluded.events, succeeded = excluded.succeeded, failed = excluded.failed,
            timed = excluded.timed, duration_ms_sum = excluded.duration_ms_sum"""
    params = list(ROLLUP_DIMENSIONS)
    for app_id, days in stale.items():
        params += [app_id, adapt_moment(start_of(days[0])), adapt_moment(start_of(days[-1]) + DAY)]
        params += [adapt_day(day) for day in days]
    doomed = Q()
    for app_id, days in stale.items():
        doomed |= Q(app_id=app_id, day__in=days)
    with transaction.atomic():
        DailyRollup.objects.filter(doomed).delete()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def forget(app_id: int, days: Iterable[date] | None = None) -> None:
    """Drop the app's daily rollups of these days (all of them when None): their hours changed."""
    rows = DailyRollup.objects.filter(app_id=app_id)
    if days is not None:
        rows = rows.filter(day__in=sorted(set(days)))
    rows.delete()


def refresh(app_id: int, *, now: datetime | None = None) -> None:
    """Bring every closed day of the app up to date (the scheduler's job, so page views rarely build any)."""
    stored = stored_days(app_id)
    days = closed_days(start_of(stored[0]), start_of(stored[1]) + DAY, now=now) if stored else None
    if days is not None:
        ensure_fresh([app_id], *days)
