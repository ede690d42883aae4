"""Analytics reads: every number an analytics page shows comes from a function here.

Each function takes the apps to count (primary keys, so one app and a whole
organization share the code) and a time range, runs a bounded number of
aggregate queries, and returns plain values a template can use. Counts come
from the pre-aggregated rollups (telemetry.rollups: per app, UTC hour and
dimension; users and sessions per UTC day, counted over long ranges from
daily sketches, telemetry.sketches), so a page costs about the same whatever
the number of events. A long range prepared by with_daily_rollups reads
everything once: the figures of its closed days from Django's cache while
their rollup_version stands, the rest from the hourly rollups. Only the
recent-events explorer and the event detail read raw events, through the
(app, timestamp) index and its user and session variants.

Every read of the hourly counts (HourlyCounts: HourlyRollup plus the deltas
not folded yet) goes through _hourly_rollups().

Times are UTC throughout: ranges and buckets start on UTC hour or day
boundaries, and pages label them so.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import BigIntegerField, Count, DateField, Func, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from dashboard.filters import Filters
from organizations.models import App
from telemetry import daily, periods, replicas, sketches
from telemetry.models import ROLLUP_DIMENSIONS, DailyRollup, Event, EventKey, HourlyCounts
from telemetry.periods import DAY, HOUR, UTC, start_of_day
from telemetry.rollups import COMMAND_EVENT_TYPE, SEGMENTED_DIMENSIONS, bucket_range

# Ranges up to this long are counted per hour, longer ones per day.
HOURLY_UP_TO = timedelta(hours=48)
# The longest custom range a page accepts (daily buckets: about 3 years of bars).
MAX_RANGE = timedelta(days=1100)

PERCENTILES = (0.5, 0.9, 0.99)
# The dimensions RangeFigures holds: the plain ones. The segmented dimensions have
# thousands of values a day; the insight pages read them through dashboard.segments.
FIGURE_DIMENSIONS = tuple(name for name in ROLLUP_DIMENSIONS if name not in SEGMENTED_DIMENSIONS)
MAX_PK = 2**63 - 1  # events.id is a bigint
NO_ONE = sketches.Distinct(0)


# --- Time ranges -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """start <= timestamp < end, both on UTC bucket boundaries."""

    start: datetime
    end: datetime
    # Closed UTC days whose daily rollups were made fresh for this read
    # (with_daily_rollups); None: read hourly rollups only.
    daily: tuple[date, date] | None = None
    # Every rollup figure of the period and the one before it, read once by
    # with_daily_rollups for some apps; None: each function runs its own queries.
    figures: RangeFigures | None = field(default=None, compare=False, repr=False)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def hourly(self) -> bool:
        return self.length <= HOURLY_UP_TO

    @property
    def bucket(self) -> str:
        return "hour" if self.hourly else "day"

    @property
    def bucket_size(self) -> timedelta:
        return HOUR if self.hourly else DAY

    @property
    def previous(self) -> Period:
        """The period of equal length just before this one."""
        return Period(start=self.start - self.length, end=self.start, daily=self.daily)

    def bucket_starts(self) -> list[datetime]:
        step = self.bucket_size
        starts, moment = [], floor_to(self.start, step)
        while moment < self.end:
            starts.append(moment)
            moment += step
        return starts


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The UTC hour or day boundary at or before the moment."""
    moment = moment.astimezone(UTC)
    if step == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# Preset ranges offered on every analytics page, in display order.
PRESETS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_PRESET = "7d"


def preset_range(key: str, *, now: datetime) -> Period:
    """The preset range ending with the current hour (24 h) or the current UTC day."""
    length = PRESETS[key][1]
    step = HOUR if length <= HOURLY_UP_TO else DAY
    end = floor_to(now, step) + step
    return Period(start=end - length, end=end)


def period_of_days(first: date, last: date) -> Period:
    """Whole UTC days from `first` to `last`, both included."""
    days = periods.day_range(first, last)
    return Period(start=days.start, end=days.end)


# --- Query helpers --------------------------------------------------------------------


def with_daily_rollups(app_ids: Sequence[int], period: Period) -> Period:
    """The period, set to read the daily rollups of its closed whole days (and
    of the period before it), which are brought up to date here, once.

    For a period of whole UTC days it also carries every figure the pages
    read (RangeFigures), read here once: the closed days' from Django's cache
    while their rollups have not changed since (rollup_version), the rest
    from the hourly rollups in one query.

    Every function below gives the same numbers with or without this; with it,
    a long range reads a row per day instead of one per hour, and the figures
    of days that are over are read once, not on every page view."""
    if period.hourly:
        return replace(period, figures=_hourly_figures(app_ids, period)) if app_ids else period
    days = daily.closed_days(period.previous.start, period.end)
    if days is None or not app_ids:
        return replace(period, daily=None)
    version = rollup_version(app_ids, *days)
    if version.stale:
        daily.build(version.stale)
        version = version.rebuilt(_daily_totals(version.stale))
    period = replace(period, daily=days)
    if not _whole_days(period):
        return period
    figures = _range_figures(app_ids, period, version)
    if figures is None:
        return replace(period, daily=None)
    return replace(period, figures=figures)


def _hourly_rollups(app_ids: Sequence[int]) -> QuerySet:
    """The apps' hourly counts (folded or not): every read of them in this module starts here."""
    return HourlyCounts.objects.filter(app_id__in=list(app_ids))


class UTCDay(Func):
    """The UTC day of a timestamp column, computed by the database (Django's
    TruncDate calls back into Python for every row on SQLite)."""

    output_field = DateField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="(%(expressions)s AT TIME ZONE 'UTC')::date", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite keeps UTC timestamps as ISO text.
        return super().as_sql(compiler, connection, template="date(%(expressions)s)", **extra)


def _whole_days(period: Period) -> bool:
    return floor_to(period.start, DAY) == period.start and floor_to(period.end, DAY) == period.end


# --- The version of closed days' rollups ------------------------------------------------


@dataclass(frozen=True)
class RollupVersion:
    """What some apps' rollups hold for some closed UTC days (rollup_version)."""

    # Per app, the days whose daily rollups are missing or differ from the hourly rollups.
    stale: dict[int, list[date]]
    # The daily `total` row of each fresh day with events: (app, day, row id, events).
    totals: tuple[tuple[int, str, int, int], ...]
    # Which incarnation of the daily rollups table the rows are of (PostgreSQL:
    # its oid, new when a restore recreates the table and replays its ids).
    table: int = 0

    @property
    def token(self) -> str:
        """The same string as long as no figure of these apps and days has changed,
        another one as soon as any has (meaningful only when nothing is stale)."""
        return self.token_of(date.min, date.max)

    def rebuilt(self, totals: Sequence[tuple[int, str, int, int]]) -> RollupVersion:
        """This version once its stale days are rebuilt, with these `total` rows."""
        stale = {(app_id, day.isoformat()) for app_id, days in self.stale.items() for day in days}
        kept = [row for row in self.totals if (row[0], row[1]) not in stale]
        return replace(self, stale={}, totals=tuple(sorted([*kept, *totals])))

    def token_of(self, first: date, last: date) -> str:
        """The token of the days [first, last] only."""
        first_text, last_text = first.isoformat(), last.isoformat()
        return _token(self.table, [row for row in self.totals if first_text <= row[1] <= last_text])


def rollup_version(app_ids: Sequence[int], first: date, last: date) -> RollupVersion:
    """The version of the apps' rollups over the closed UTC days [first, last], in one query.

    What it must return, whatever stores the rollups: `stale`, every app and
    day whose daily rollups are missing or no longer sum that day's hourly
    rollups (as _hourly_rollups() reads them); and `totals`, from which
    `token` and `token_of` are made, such that once the stale days are
    rebuilt (daily.build) a token stays the same exactly as long as no
    figure of these apps on its days changes. A token may change when
    nothing did (the next page view reads those days again); it must never
    stay the same when something did: pages show cached figures under it,
    read from those days' daily rollups, sketches and daily actors (so the
    daily actors of a day must never change without its events or a
    deletion that forgets the day).

    How: each day's event total in the hourly rollups is compared with its
    daily rollup's `total` row, and `totals` are those rows (id and events).
    That is exact because ingest only adds events, so a late event raises
    its day's hourly total (the day is stale until rebuilt, with new rows);
    every other change of a day's figures (deleting events, dropping a
    partition, rebuilding the rollups) deletes the day's daily rollups in
    the same transaction (telemetry.storage.forget_daily_rollups); and daily.build replaces
    a day's rows with new ones (README, "Storage and scaling")."""
    app_ids = sorted(set(app_ids))
    start, end = start_of_day(first), start_of_day(last) + DAY
    hourly = (
        _hourly_rollups(app_ids).filter(dimension="total", hour__gte=start, hour__lt=end)
        .annotate(day=UTCDay("hour")).values("app_id", "day")
        .annotate(n=Sum("events")).order_by()
    )  # fmt: skip
    hourly_sql, hourly_params = hourly.query.sql_with_params()
    apps = ", ".join(["%s"] * len(app_ids))
    table = DailyRollup._meta.db_table
    oid = f"'{table}'::regclass::oid" if connection.vendor == "postgresql" else "0"
    sql = f"""
        SELECT coalesce(h.app_id, d.app_id), coalesce(h.day, d.day), h.n, d.id, d.events, {oid}
        FROM ({hourly_sql}) h
        FULL OUTER JOIN (
            SELECT app_id, day, id, events FROM {table}
            WHERE app_id IN ({apps}) AND dimension = 'total' AND value = '' AND day >= %s AND day <= %s
        ) d ON h.app_id = d.app_id AND h.day = d.day"""
    adapt = connection.ops.adapt_datefield_value
    with replicas.read_connection(DailyRollup).cursor() as cursor:
        cursor.execute(sql, [*hourly_params, *app_ids, adapt(first), adapt(last)])
        rows = cursor.fetchall()
    stale: dict[int, list[date]] = defaultdict(list)
    totals, incarnation = [], 0
    for app_id, day, hourly_events, row_id, daily_events, incarnation in rows:
        if (hourly_events or 0) != (daily_events or 0):
            stale[app_id].append(_as_date(day))
        elif row_id is not None:
            totals.append((app_id, str(day), int(row_id), int(daily_events)))
    return RollupVersion(stale=dict(stale), totals=tuple(sorted(totals)), table=int(incarnation))


def _daily_totals(days: dict[int, list[date]]) -> list[tuple[int, str, int, int]]:
    """The daily `total` rows of these apps' days, as RollupVersion.totals has them."""
    which = Q()
    for app_id, app_days in days.items():
        which |= Q(app_id=app_id, day__in=app_days)
    rows = DailyRollup.objects.filter(which, dimension="total", value="").values_list("app_id", "day", "id", "events")
    return [(app_id, day.isoformat(), row_id, events) for app_id, day, row_id, events in rows]


def _token(table: int, totals: Sequence[tuple[int, str, int, int]]) -> str:
    """A digest of daily `total` rows as (app, day, id, events)."""
    return hashlib.blake2b(repr((table, sorted(totals))).encode(), digest_size=16).hexdigest()


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite gives text


# --- Figures of a whole range, read once ------------------------------------------------


@dataclass(frozen=True)
class RangeFigures:
    """Every rollup figure the analytics pages show for some apps over a period
    of whole UTC days and the period just before it (with_daily_rollups)."""

    app_ids: tuple[int, ...]  # sorted
    # Events per app and UTC day of both periods (days without events left out).
    day_events: dict[tuple[int, date], int]
    # The period's (not the previous one's) counts per dimension and value, every plain
    # dimension (FIGURE_DIMENSIONS) but `total`: [events, succeeded, failed, timed, duration_ms_sum].
    values: dict[tuple[str, str], list[int]]
    # The closed days and their version, for distinct counts to merge their sketches once.
    settled: sketches.Settled | None = None
    # Ranges counted per hour: events per app and UTC hour of both periods.
    hour_events: dict[tuple[int, datetime], int] | None = None

    def covers(self, app_ids: Sequence[int]) -> bool:
        return self.app_ids == tuple(sorted(set(app_ids)))


# How long the closed days' figures stay in the cache: a cached entry is never
# wrong (its key names the rollups it was read from), this only bounds its size.
FIGURES_TIMEOUT = 24 * 3600
# The closed days are read and cached in two runs, the last RECENT_DAYS before
# today and the days before them: late events mostly land in the last few
# days, and one makes the next view read its run of days again, not the range.
RECENT_DAYS = 7


def _runs(first: date, last: date, *, today: date) -> list[tuple[date, date]]:
    """[first, last] cut where the last RECENT_DAYS before today begin."""
    recent = today - timedelta(days=RECENT_DAYS)
    runs = [(first, min(last, recent - DAY)), (max(first, recent), last)]
    return [(start, end) for start, end in runs if start <= end]


def _range_figures(app_ids: Sequence[int], period: Period, version: RollupVersion) -> RangeFigures | None:
    """The figures of a prepared period of whole days: its fresh closed days (and
    the previous period's) from the cache or the daily rollups, the rest from the
    hourly rollups. None when the daily rollups changed while being read."""
    app_ids = tuple(sorted(set(app_ids)))
    first, last = period.daily
    own_first = max(first, period.start.date())  # the period's own closed days start here
    runs = [
        (start, end, max(own_first, start), version.token_of(start, end))
        for start, end in _runs(first, last, today=timezone.now().astimezone(UTC).date())
    ]
    keys = {
        run: "stats:closed:" + hashlib.blake2b(repr((app_ids, *map(str, run))).encode(), digest_size=16).hexdigest()
        for run in runs
    }
    found = cache.get_many(list(keys.values()))
    day_events: dict[tuple[int, date], int] = {}
    values: dict[tuple[str, str], list[int]] = {}
    for run in runs:
        start, end, own_start, token = run
        closed = found.get(keys[run])
        if closed is None:
            closed = _closed_figures(app_ids, start, end, own_start, table=version.table)
            if closed[0] != token:
                return None  # the daily rollups changed since the version was read
            cache.set(keys[run], closed, FIGURES_TIMEOUT)
        day_events.update(closed[1])
        for key, sums in closed[2].items():
            counts = values.setdefault(key, [0] * len(_FIELDS))
            for i, n in enumerate(sums):
                counts[i] += n
    # The rest: the hours after the last closed day (today, a day ahead at most).
    rest_start = max(period.previous.start, start_of_day(last) + DAY)
    if rest_start < period.end:
        grouped = (
            # Every dimension named, so PostgreSQL walks rollup_key one dimension at a time.
            _hourly_rollups(app_ids).filter(dimension__in=FIGURE_DIMENSIONS, hour__gte=rest_start, hour__lt=period.end)
            .annotate(day=UTCDay("hour")).values("app_id", "day", "dimension", "value")
            # bigint, not numeric: PostgreSQL's sum of bigints would reach Python as Decimals.
            .annotate(**{f"sum_{name}": Cast(Sum(name), BigIntegerField()) for name in _FIELDS}).order_by()
        )  # fmt: skip
        own_first_text = period.start.date().isoformat()
        # Hundreds of rows: fetched as they come, without the ORM's conversions per value.
        with replicas.read_connection(DailyRollup).cursor() as cursor:
            cursor.execute(*grouped.query.sql_with_params())
            for app_id, day, dimension, value, *sums in cursor.fetchall():
                if dimension == "total":
                    if sums[0]:
                        key = (app_id, _as_date(day))
                        day_events[key] = day_events.get(key, 0) + int(sums[0])
                elif str(day) >= own_first_text:
                    counts = values.setdefault((dimension, value), [0] * len(_FIELDS))
                    for i, n in enumerate(sums):
                        counts[i] += int(n)
    settled = sketches.Settled(runs=tuple((start, end, token) for start, end, _, token in runs))
    return RangeFigures(app_ids=app_ids, day_events=day_events, values=values, settled=settled)


def _closed_figures(
    app_ids: tuple[int, ...], first: date, last: date, own_first: date, *, table: int
) -> tuple[str, dict[tuple[int, date], int], dict[tuple[str, str], tuple[int, ...]]]:
    """From the daily rollups of [first, last], in one statement (one snapshot):
    the version token of what was read (as rollup_version computes it), events
    per app and day, and the counts per dimension and value of [own_first, last]
    (`table`: the incarnation of the daily rollups table, RollupVersion.table)."""
    name = DailyRollup._meta.db_table
    apps = ", ".join(["%s"] * len(app_ids))
    dimensions = [dimension for dimension in FIGURE_DIMENSIONS if dimension != "total"]
    sums = ", ".join(f"sum({field})" for field in _FIELDS)
    sql = f"""
        SELECT app_id, day, id, '' AS dimension, '' AS value, events, 0, 0, 0, 0 FROM {name}
        WHERE app_id IN ({apps}) AND dimension = 'total' AND value = '' AND day >= %s AND day <= %s
        UNION ALL
        SELECT NULL, NULL, NULL, dimension, value, {sums} FROM {name}
        WHERE app_id IN ({apps}) AND dimension IN ({", ".join(["%s"] * len(dimensions))})
            AND day >= %s AND day <= %s
        GROUP BY dimension, value"""
    adapt = connection.ops.adapt_datefield_value
    params = [*app_ids, adapt(first), adapt(last), *app_ids, *dimensions, adapt(own_first), adapt(last)]
    with replicas.read_connection(DailyRollup).cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    totals, day_events, values = [], {}, {}
    for app_id, day, row_id, dimension, value, *counts in rows:
        if row_id is not None:
            events = int(counts[0])  # sums are numeric on PostgreSQL, so is this column of the union
            totals.append((app_id, str(day), int(row_id), events))
            if events:
                day_events[(app_id, _as_date(day))] = events
        else:
            values[(dimension, value)] = tuple(int(n) for n in counts)
    return _token(table, totals), day_events, values


def _hourly_figures(app_ids: Sequence[int], period: Period) -> RangeFigures:
    """The figures of a range counted per hour, in two queries: events per app
    and hour of the whole UTC days both periods touch (distinct users and
    sessions are counted over whole days), and the period's counts per
    dimension and value."""
    app_ids = tuple(sorted(set(app_ids)))
    first, last = _days(Period(start=period.previous.start, end=period.end))
    hour_events: dict[tuple[int, datetime], int] = {}
    day_events: dict[tuple[int, date], int] = defaultdict(int)
    totals = _hourly_rollups(app_ids).filter(
        dimension="total", hour__gte=start_of_day(first), hour__lt=start_of_day(last) + DAY
    )
    for app_id, hour, n in totals.values_list("app_id", "hour", "events"):
        if n:
            hour_events[(app_id, hour)] = n
            day_events[(app_id, hour.astimezone(UTC).date())] += n
    rows = (
        _hourly_rollups(app_ids)
        .filter(dimension__in=[name for name in FIGURE_DIMENSIONS if name != "total"], hour__gte=period.start, hour__lt=period.end)
        .values("dimension", "value").annotate(**{f"sum_{name}": Sum(name) for name in _FIELDS}).order_by()
        .values_list("dimension", "value", *(f"sum_{name}" for name in _FIELDS))
    )  # fmt: skip
    values = {(dimension, value): list(sums) for dimension, value, *sums in rows}
    return RangeFigures(app_ids=app_ids, day_events=dict(day_events), values=values, hour_events=hour_events)


def _events_in(figures: RangeFigures, period: Period) -> dict[int, int]:
    """Events per app in the period (or the one before it), from the figures."""
    events: dict[int, int] = defaultdict(int)
    if period.hourly and figures.hour_events is not None:
        for (app_id, hour), n in figures.hour_events.items():
            if period.start <= hour < period.end:
                events[app_id] += n
    else:
        for (app_id, _), n in _day_events_in(figures, period).items():
            events[app_id] += n
    return events


def _rollups(app_ids: Sequence[int], period: Period, dimension: str | Sequence[str]) -> list[QuerySet]:
    """The period's rollup rows of one dimension (or several), as querysets to
    sum: the daily rollups of its fresh closed days and the hourly rollups of the rest."""
    app_ids = list(app_ids)
    days = _daily_days(period)
    # One range of the rollup_key index (app, dimension, hour, value) per app and dimension.
    which = {"dimension": dimension} if isinstance(dimension, str) else {"dimension__in": list(dimension)}
    hourly = _hourly_rollups(app_ids).filter(**which)
    if days is None:
        return [hourly.filter(hour__gte=period.start, hour__lt=period.end)]
    first, last = days
    day_start, day_end = start_of_day(first), start_of_day(last) + DAY
    return [
        DailyRollup.objects.filter(app_id__in=app_ids, day__gte=first, day__lte=last, **which),
        hourly.filter(Q(hour__gte=period.start, hour__lt=day_start) | Q(hour__gte=day_end, hour__lt=period.end)),
    ]


def _daily_days(period: Period) -> tuple[date, date] | None:
    """The whole days of the period that have fresh daily rollups."""
    if period.daily is None or period.hourly:
        return None
    whole = daily.closed_days(period.start, period.end)
    if whole is None:
        return None
    first, last = max(whole[0], period.daily[0]), min(whole[1], period.daily[1])
    return (first, last) if first <= last else None


_FIELDS = ("events", "succeeded", "failed", "timed", "duration_ms_sum")


def _total(parts: list[QuerySet]) -> dict[str, int]:
    """Each rollup count summed over the parts."""
    result = dict.fromkeys(_FIELDS, 0)
    for sums in _grouped(parts, "app_id").values():
        for name in _FIELDS:
            result[name] += sums[name]
    return result


def _grouped(parts: list[QuerySet], *by: str) -> dict[object, dict[str, int]]:
    """Each rollup count summed over the parts per value of the column `by`
    (per tuple of values, given several columns), in one query."""
    sums = {f"sum_{name}": Sum(name) for name in _FIELDS}
    queries = [part.values(*by).annotate(**sums).order_by() for part in parts]
    rows = queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]
    result: dict[object, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_FIELDS, 0))
    for row in rows:
        group = result[row[by[0]] if len(by) == 1 else tuple(row[column] for column in by)]
        for name in _FIELDS:
            group[name] += row[f"sum_{name}"]
    return result


def _events_per_day(app_ids: Sequence[int], period: Period) -> sketches.DayEvents | None:
    """Stored events per app and UTC day of a period of whole days, read mostly
    from daily rollups; None for ranges counted per hour, which may cut days."""
    if period.hourly:
        return None
    figures = _figures(app_ids, period)
    if figures is not None:
        return _day_events_in(figures, period)
    totals: dict[tuple[int, date], int] = defaultdict(int)
    for part in _rollups(app_ids, period, "total"):
        if part.model is DailyRollup:
            rows = part.values_list("app_id", "day", "events")
        else:
            rows = (
                part.annotate(day=UTCDay("hour")).values("app_id", "day")
                .annotate(n=Sum("events")).values_list("app_id", "day", "n")
            )  # fmt: skip
        for app_id, day, n in rows:
            totals[(app_id, day)] += n
    return {key: n for key, n in totals.items() if n > 0}


def _figures(app_ids: Sequence[int], period: Period) -> RangeFigures | None:
    """The figures read for the period by with_daily_rollups, when they are these apps'."""
    figures = period.figures
    return figures if figures is not None and figures.covers(app_ids) else None


def _day_events_in(figures: RangeFigures, period: Period) -> dict[tuple[int, date], int]:
    first, last = _days(period)
    return {(app_id, day): n for (app_id, day), n in figures.day_events.items() if first <= day <= last}


def _values(app_ids: Sequence[int], period: Period, dimensions: Sequence[str]) -> dict[tuple[str, str], dict[str, int]]:
    """Each rollup count of the period summed per dimension and value (one query, or none with figures)."""
    figures = _figures(app_ids, period)
    if figures is None:
        return _grouped(_rollups(app_ids, period, list(dimensions)), "dimension", "value")
    wanted = set(dimensions)
    return {
        (dimension, value): dict(zip(_FIELDS, sums))
        for (dimension, value), sums in figures.values.items()
        if dimension in wanted
    }


def _days(period: Period) -> tuple[date, date]:
    """The first and last UTC day the period touches."""
    return period.start.astimezone(UTC).date(), (period.end.astimezone(UTC) - timedelta(microseconds=1)).date()


# --- Totals and change ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    current: int
    previous: int
    estimated: bool = False  # the counts are sketch estimates (telemetry.sketches)

    @property
    def percent(self) -> float | None:
        """Change against the previous period in percent; None when that period had nothing."""
        if self.previous == 0:
            return None
        return (self.current - self.previous) * 100 / self.previous


@dataclass(frozen=True)
class Summary:
    events: Change
    users: Change
    # None when not counted: under filters over long ranges (dashboard.filtered_stats.summary).
    sessions: Change | None


def summary(app_ids: Sequence[int], *, period: Period) -> Summary:
    """Events, distinct users and distinct sessions in the period and in the one before.

    Users and sessions are counted over the whole UTC days the period touches
    (the rollups keep them per day): exactly for ranges of up to
    sketches.EXACT_UP_TO user- or session-days, estimated beyond."""
    previous = period.previous
    figures = _figures(app_ids, period)
    if figures is not None:
        events = {
            "now": sum(_events_in(figures, period).values()),
            "before": sum(_events_in(figures, previous).values()),
        }
        day_events, settled = figures.day_events, figures.settled
    else:
        settled = None
        events = {
            "now": _total(_rollups(app_ids, period, "total"))["events"],
            "before": _total(_rollups(app_ids, previous, "total"))["events"],
        }
        day_events = _events_per_day(app_ids, Period(start=previous.start, end=period.end, daily=period.daily))
    distinct = sketches.count_distinct(
        app_ids, spans=[_days(period), _days(previous)], kinds=("u", "s"), day_events=day_events, settled=settled
    )
    return Summary(
        events=Change(events["now"], events["before"]),
        users=_change(*distinct["u"]),
        sessions=_change(*distinct["s"]),
    )


def _event_total(app_ids: Sequence[int], period: Period) -> int:
    figures = _figures(app_ids, period)
    if figures is not None:
        return sum(_events_in(figures, period).values())
    return _total(_rollups(app_ids, period, "total"))["events"]


def _change(now: sketches.Distinct, before: sketches.Distinct) -> Change:
    return Change(now.count, before.count, estimated=now.estimated or before.estimated)


def has_events(app_ids: Sequence[int]) -> bool:
    """Whether any of the apps ever stored an event (the empty state's question)."""
    return Event.objects.filter(app_id__in=list(app_ids)).exists()


# --- Events over time -----------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int


def events_over_time(app_ids: Sequence[int], *, period: Period) -> list[Bucket]:
    """Event counts per UTC hour or day across the period; buckets without events are zero."""
    step = period.bucket_size
    counts: dict[datetime, int] = defaultdict(int)
    figures = _figures(app_ids, period)
    if figures is not None and period.hourly:
        for (_, hour), n in figures.hour_events.items():
            if period.start <= hour < period.end:
                counts[floor_to(hour, step)] += n
        return [Bucket(start=start, count=counts.get(start, 0)) for start in period.bucket_starts()]
    if figures is not None:  # whole days, counted per day
        for (_, day), n in _day_events_in(figures, period).items():
            counts[start_of_day(day)] += n
        return [Bucket(start=start, count=counts.get(start, 0)) for start in period.bucket_starts()]
    for part in _rollups(app_ids, period, "total"):
        moment = "day" if part.model is DailyRollup else "hour"
        for at, n in part.values(moment).annotate(n=Sum("events")).order_by().values_list(moment, "n"):
            counts[start_of_day(at) if moment == "day" else floor_to(at, step)] += n
    return [Bucket(start=start, count=counts.get(start, 0)) for start in period.bucket_starts()]


# --- Breakdowns ---------------------------------------------------------------------------

# Dimension and its heading, in display order; the rollups name them shorter.
BREAKDOWNS = {
    "event_type": "Event type",
    "category": "Category",
    "os": "Operating system",
    "arch": "Architecture",
    "service_version": "Service version",
    "ci": "CI",
}
_ROLLUP_DIMENSION = {"event_type": "type", "service_version": "version"}
_CI_VALUES = {"true": True, "false": False, "": None}
_CI_LABELS = {True: "CI", False: "Not CI", None: "Unknown"}


@dataclass(frozen=True)
class BreakdownRow:
    value: str | bool | None
    label: str
    count: int
    share: float  # percent of the period's events


@dataclass(frozen=True)
class Breakdown:
    dimension: str
    title: str
    rows: list[BreakdownRow]
    other: int  # events in values past the shown ones
    total: int


def _label(dimension: str, value) -> str:
    if dimension == "ci":
        return _CI_LABELS[value]
    return value if value else "(none)"


def breakdowns(
    app_ids: Sequence[int], *, period: Period, dimensions: Sequence[str] = tuple(BREAKDOWNS), limit: int = 8
) -> list[Breakdown]:
    """The most frequent values of each dimension in the period (two queries: the total, then every dimension)."""
    unknown = set(dimensions) - set(BREAKDOWNS)
    if unknown:
        raise ValueError(f"unknown dimension {sorted(unknown)[0]!r}")
    total = _event_total(app_ids, period)
    stored = {dimension: _ROLLUP_DIMENSION.get(dimension, dimension) for dimension in dimensions}
    grouped = _values(app_ids, period, sorted(set(stored.values()))) if total else {}
    result = []
    for dimension in dimensions:
        counts = [
            (value, sums["events"])
            for (name, value), sums in grouped.items()
            if name == stored[dimension] and sums["events"] > 0
        ]
        result.append(breakdown_of(dimension, counts, total=total, limit=limit))
    return result


def breakdown_of(dimension: str, counts: Sequence[tuple[str, int]], *, total: int, limit: int = 8) -> Breakdown:
    """The breakdown of one dimension from (stored value, events) pairs of distinct
    values (ci as "true", "false" or ""), `total` the period's events."""
    top: list[tuple] = []
    if total:
        if dimension == "ci":
            # Three values at most; unknown sorts last, as "no value" does elsewhere.
            top = sorted(
                ((_CI_VALUES[value], n) for value, n in counts),
                key=lambda pair: (-pair[1], pair[0] is None, pair[0]),
            )[:limit]
        else:
            top = sorted(counts, key=lambda pair: (-pair[1], pair[0]))[:limit]
    rows = [
        BreakdownRow(value=value, label=_label(dimension, value), count=count, share=count * 100 / total)
        for value, count in top
    ]
    return Breakdown(
        dimension=dimension,
        title=BREAKDOWNS[dimension],
        rows=rows,
        other=total - sum(row.count for row in rows),
        total=total,
    )


def top_values(
    app_ids: Sequence[int], *, period: Period, dimensions: Sequence[str], limit: int
) -> dict[str, list[tuple[str, int]]]:
    """The most frequent values of plain rollup dimensions in the period, per dimension (one query)."""
    grouped = _values(app_ids, period, list(dimensions))
    result: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (dimension, value), sums in grouped.items():
        if sums["events"] > 0:
            result[dimension].append((value, sums["events"]))
    return {name: sorted(rows, key=lambda pair: (-pair[1], pair[0]))[:limit] for name, rows in result.items()}


# --- Command outcomes and durations -----------------------------------------------------


@dataclass(frozen=True)
class CommandStats:
    runs: int  # command events in the period
    with_outcome: int  # those whose data says success true or false
    succeeded: int
    timed: int  # those whose data has a numeric duration_ms
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None

    @property
    def success_rate(self) -> float | None:
        """Percent of runs with an outcome that succeeded; None when none reported one."""
        return self.succeeded * 100 / self.with_outcome if self.with_outcome else None


def command_stats(app_ids: Sequence[int], *, period: Period) -> CommandStats:
    """Success rate and duration percentiles of command events (two queries)."""
    if _figures(app_ids, period) is not None:
        sums = _values(app_ids, period, ["type"]).get(("type", COMMAND_EVENT_TYPE), dict.fromkeys(_FIELDS, 0))
    else:
        sums = _total([part.filter(value=COMMAND_EVENT_TYPE) for part in _rollups(app_ids, period, "type")])
    row = {"runs": sums["events"], "succeeded": sums["succeeded"], "failed": sums["failed"], "timed": sums["timed"]}
    percentiles = duration_percentiles(app_ids, period=period) if row["timed"] else [None] * len(PERCENTILES)
    return CommandStats(
        runs=row["runs"],
        with_outcome=row["succeeded"] + row["failed"],
        succeeded=row["succeeded"],
        timed=row["timed"],
        p50_ms=percentiles[0],
        p90_ms=percentiles[1],
        p99_ms=percentiles[2],
    )


def duration_percentiles(app_ids: Sequence[int], *, period: Period) -> list[float | None]:
    """p50, p90 and p99 of command durations by nearest rank, read from the
    rollups' duration histogram: the middle of the bucket holding that rank
    (exact below 10 ms, within about 12 % above)."""
    histogram = _values(app_ids, period, ["duration"])
    return percentiles_of([(int(value), sums["events"]) for (_, value), sums in histogram.items()])


def percentiles_of(histogram: Sequence[tuple[int, int]]) -> list[float | None]:
    """p50, p90 and p99 by nearest rank from (duration bucket, runs) pairs (a bucket may repeat)."""
    merged: dict[int, int] = defaultdict(int)
    for bucket, n in histogram:
        merged[bucket] += n
    return [None if found is None else found.value for found in histogram_percentiles(merged, PERCENTILES)]


@dataclass(frozen=True)
class BucketPercentile:
    """A nearest-rank percentile read from a duration histogram: the bucket holding that rank."""

    low: int  # the bucket's first whole ms
    high: int | None  # its last whole ms; None for the open last bucket

    @property
    def value(self) -> float:
        """The figure shown: the middle of the bucket (its low edge for the open last one)."""
        return float(self.low) if self.high is None else (self.low + self.high) / 2

    @property
    def error(self) -> float | None:
        """How far the exact percentile can be from `value`, in ms (None: unbounded above)."""
        return None if self.high is None else (self.high - self.low) / 2

    @property
    def exact(self) -> bool:
        return self.error == 0


def histogram_percentiles(histogram: dict[int, int], percentiles: Sequence[float]) -> list[BucketPercentile | None]:
    """Nearest-rank percentiles of a duration histogram ({bucket index: count}, telemetry.rollups
    buckets), each as the bucket holding that rank; None for every one of an empty histogram."""
    counts = sorted((bucket, n) for bucket, n in histogram.items() if n > 0)
    total = sum(n for _, n in counts)
    if not total:
        return [None] * len(percentiles)
    result = []
    for p in percentiles:
        rank, seen = max(1, math.ceil(p * total)), 0
        for bucket, n in counts:
            seen += n
            if seen >= rank:
                low, high = bucket_range(bucket)
                # Durations are whole ms, so [low, high) holds low .. high - 1.
                result.append(BucketPercentile(low=low, high=None if high is None else high - 1))
                break
    return result


@dataclass(frozen=True)
class CommandRow:
    command: str
    runs: int
    succeeded: int
    failed: int
    avg_ms: float | None

    @property
    def success_rate(self) -> float | None:
        reported = self.succeeded + self.failed
        return self.succeeded * 100 / reported if reported else None


def top_commands(app_ids: Sequence[int], *, period: Period, limit: int = 10) -> list[CommandRow]:
    """The most run commands (data.command) with their outcomes and mean duration."""
    grouped = _values(app_ids, period, ["command"])
    return command_rows({command: sums for (_, command), sums in grouped.items()}, limit=limit)


def command_rows(grouped: dict[str, dict[str, int]], *, limit: int = 10) -> list[CommandRow]:
    """The `limit` most run commands from their summed rollup counts ({command: {field: sum}})."""
    top = sorted(
        ((command, sums) for command, sums in grouped.items() if sums["events"] > 0),
        key=lambda pair: (-pair[1]["events"], pair[0]),
    )[:limit]
    return [
        CommandRow(
            command=command or "(none)",
            runs=sums["events"],
            succeeded=sums["succeeded"],
            failed=sums["failed"],
            avg_ms=sums["duration_ms_sum"] / sums["timed"] if sums["timed"] else None,
        )
        for command, sums in top
    ]


# --- Organization: activity per app ----------------------------------------------------


@dataclass(frozen=True)
class AppActivity:
    app: App
    events: int
    users: int
    users_estimated: bool
    last_event_at: datetime | None


def app_activity(apps: Sequence[App], *, period: Period) -> list[AppActivity]:
    """For each app, its events and users in the period and its latest event ever (a bounded number of queries)."""
    app_ids = [app.pk for app in apps]
    figures = _figures(app_ids, period)
    if figures is not None:
        events = _events_in(figures, period)
        day_events = _day_events_in(figures, period)
    else:
        events = {app_id: sums["events"] for app_id, sums in _grouped(_rollups(app_ids, period, "total"), "app_id").items()}
        day_events = _events_per_day(app_ids, period)
    users = sketches.count_distinct_per_app(
        app_ids, kind="u", span=_days(period), day_events=day_events,
        settled=figures.settled if figures is not None else None,
    )  # fmt: skip
    last = last_event_per_app(app_ids)
    return [
        AppActivity(
            app=app,
            events=events.get(app.pk, 0),
            users=users.get(app.pk, NO_ONE).count,
            users_estimated=users.get(app.pk, NO_ONE).estimated,
            last_event_at=last.get(app.pk),
        )
        for app in apps
    ]


def last_event_per_app(app_ids: Sequence[int]) -> dict[int, datetime | None]:
    """When each app's newest event happened, read from the end of each app's index range (one query)."""
    return _newest_event_per_app(app_ids, "timestamp")


def _newest_event_per_app(app_ids: Sequence[int], column: str) -> dict[int, datetime | None]:
    """`column` of each app's newest event by timestamp (None without events), in one
    query reading the end of each app's (app, timestamp) index range.

    On PostgreSQL the apps' ids are a list, not a join with the apps' table: the
    events may be on a server of their own (docs/events-database.md), which only
    PostgreSQL supports."""
    ids = sorted(set(app_ids))
    reading = replicas.read_connection(Event)
    if reading.vendor == "postgresql":
        with reading.cursor() as cursor:
            cursor.execute(
                f'SELECT app.id, (SELECT e."{column}" FROM {Event._meta.db_table} e WHERE e.app_id = app.id '
                f'ORDER BY e."timestamp" DESC LIMIT 1) FROM unnest(%s::bigint[]) AS app(id)',
                [ids],
            )
            return dict(cursor.fetchall())
    newest = Event.objects.filter(app_id=OuterRef("pk")).order_by("-timestamp").values(column)[:1]
    return dict(App.objects.filter(pk__in=ids).annotate(last=Subquery(newest)).values_list("pk", "last"))


def last_event_at(app_ids: Sequence[int]) -> datetime | None:
    """When the newest stored event of these apps happened."""
    return Event.objects.filter(app_id__in=list(app_ids)).aggregate(last=Max("timestamp"))["last"]


def latest_event(app_id: int) -> dict | None:
    """The app's newest event by timestamp (its `timestamp`, `received_at` and
    `event_type`), or None. One query reading the end of the (app, timestamp) index."""
    return (
        Event.objects.filter(app_id=app_id)
        .order_by("-timestamp")
        .values("timestamp", "received_at", "event_type")
        .first()
    )


def last_received_at(app_ids: Sequence[int]) -> dict[int, datetime]:
    """When each app's newest event (by timestamp) arrived; apps without events are left out.

    One query, reading the end of each app's (app, timestamp) index range."""
    return {pk: last for pk, last in _newest_event_per_app(app_ids, "received_at").items() if last is not None}


# --- The recent-events explorer ---------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first list: an event's timestamp and primary key."""

    timestamp: datetime
    pk: int

    _FORMAT = re.compile(r"(\d{1,19})-(\d{1,19})\Z")

    def encode(self) -> str:
        micros = (self.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return f"{micros}-{self.pk}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor in `text`, or None when it is not one."""
        match = cls._FORMAT.match(text or "")
        if match is None:
            return None
        pk = int(match[2])
        if pk > MAX_PK:  # the database would refuse it as out of range
            return None
        try:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match[1]))
        except OverflowError:
            return None
        return cls(timestamp=moment, pk=pk)


@dataclass(frozen=True)
class EventFilters:
    event_type: str = ""
    user_id: str = ""
    session_id: str = ""
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    segment: Filters = Filters()  # the filter bar's version, OS, arch and CI


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    newer: Cursor | None  # pass as `after` for the page before this one
    older: Cursor | None  # pass as `before` for the page after this one


def recent_events(
    app_id: int,
    *,
    filters: EventFilters,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> EventPage:
    """One page of the app's events, newest first, by keyset over (timestamp, id).

    Without a cursor it is the newest page; `before` pages to older events,
    `after` to newer ones. Each page is one indexed query of limit + 1 rows."""
    events = Event.objects.filter(app_id=app_id).defer("data")
    if filters.event_type:
        events = events.filter(event_type=filters.event_type)
    if filters.user_id:
        events = events.filter(user_id=filters.user_id)
    if filters.session_id:
        events = events.filter(session_id=filters.session_id)
    if filters.start is not None:
        events = events.filter(timestamp__gte=filters.start)
    if filters.end is not None:
        events = events.filter(timestamp__lt=filters.end)
    if filters.segment.active:
        events = events.filter(filters.segment.q())
    # A one-line summary of what happened, for the list: the command or feature name.
    events = events.annotate(
        command=KeyTextTransform("command", "data"), feature=KeyTextTransform("feature", "data")
    )

    if after is not None:
        newer_first = events.filter(
            Q(timestamp__gt=after.timestamp) | Q(timestamp=after.timestamp, pk__gt=after.pk)
        ).order_by("timestamp", "pk")
        rows = list(newer_first[: limit + 1])
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        return EventPage(
            events=rows,
            newer=_cursor(rows[0]) if rows and more_newer else None,
            older=_cursor(rows[-1]) if rows else None,
        )

    if before is not None:
        events = events.filter(Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, pk__lt=before.pk))
    rows = list(events.order_by("-timestamp", "-pk")[: limit + 1])
    more_older = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        events=rows,
        newer=_cursor(rows[0]) if rows and before is not None else None,
        older=_cursor(rows[-1]) if rows and more_older else None,
    )


def _cursor(event: Event) -> Cursor:
    return Cursor(timestamp=event.timestamp, pk=event.pk)


def recent_event_types(app_id: int, *, sample: int = 1000, limit: int = 50) -> list[str]:
    """The event types among the app's latest `sample` events, most frequent first,
    for the explorer's suggestions: a bounded read of the index, whatever the app's size."""
    latest = Event.objects.filter(app_id=app_id).order_by("-timestamp").values("pk")[:sample]
    return list(
        Event.objects.filter(pk__in=latest)
        .values_list("event_type", flat=True)
        .annotate(n=Count("pk"))
        .order_by("-n", "event_type")[:limit]
    )


def get_event(app_id: int, event_id) -> Event | None:
    """The app's event with this event_id (a UUID), or None.

    Found through its idempotency key (telemetry.models.EventKey, one per stored
    event, keyed by app and id), whose timestamp leads to the event through the
    (app, timestamp) index and, on PostgreSQL, to its time partition alone: the
    events table has no index on event_id (docs/storage.md, Idempotency)."""
    moment = EventKey.objects.filter(app_id=app_id, event_id=event_id).values_list("timestamp", flat=True).first()
    if moment is None:
        return None
    return Event.objects.filter(app_id=app_id, timestamp=moment, event_id=event_id).order_by("pk").first()


def event_document(event: Event) -> dict:
    """The stored event in the shape the SDK sent it (docs/protocol.md, Event fields), for display."""

    def present(**fields):
        return {key: value for key, value in fields.items() if value not in ("", None)}

    return {
        "schema_version": event.schema_version,
        "event_id": str(event.event_id),
        "timestamp": event.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "service": present(
            name=event.service_name,
            version=event.service_version,
            language=event.service_language,
            language_version=event.service_language_version,
        ),
        "user_id": event.user_id,
        **({"session_id": event.session_id} if event.session_id else {}),
        "environment": {
            **present(os=event.os, os_version=event.os_version, arch=event.arch),
            **({"ci": event.ci} if event.ci is not None else {}),
            **present(shell=event.shell),
        },
        "event": {"type": event.event_type, **present(category=event.category), "data": event.data},
        "metadata": {"sdk_version": event.sdk_version},
    }
