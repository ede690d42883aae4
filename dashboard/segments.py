"""Reads of the segmented rollups and of UserDay, the ground the insight pages stand on.

The segmented dimensions (telemetry.rollups.SEGMENTED_DIMENSIONS) count
events by several fields at once; `counts` sums one of them over a period
(daily rollups for its fresh closed days, hourly counts for the rest, the
same split as dashboard.stats) and keeps the rows whose segment passes the
filter bar. `user_days` gives UserDay rows of a day range under the same
filters: every distinct-user figure of the insight pages is counted from it,
exactly. `sums` adds up a segmented dimension by some of its parts and keeps
the closed days' sums in Django's cache under their rollup version, so a page
reads only its current day's rows on each view.

Times are UTC: days are UTC days and hourly buckets UTC hours.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.core.cache import cache
from django.db import connections
from django.db.models import BigIntegerField, BooleanField, CharField, F, Func, QuerySet, Sum, Value
from django.db.models.functions import Cast

from dashboard import stats
from dashboard.filters import Filters
from telemetry import rollups
from telemetry.models import DailyRollup, HourlyCounts, UserDay
from telemetry.periods import DAY, UTC, start_of_day

FIELDS = ("events", "succeeded", "failed", "timed", "duration_ms_sum")


@dataclass(frozen=True)
class Row:
    """One segmented value's counts in the period (or in one bucket of it)."""

    parts: dict[str, str]
    events: int
    succeeded: int
    failed: int
    timed: int
    duration_ms_sum: int
    bucket: datetime | None = None  # the hour or day, when asked per bucket

    @property
    def segment(self) -> rollups.Segment:
        return rollups.segment_of(self.parts)


def counts(
    app_ids: Sequence[int],
    period: stats.Period,
    dimension: str,
    *,
    filters: Filters = Filters(),
    per_bucket: bool = False,
    prefix: str | None = None,
) -> list[Row]:
    """A segmented dimension's counts over the period, one Row per value (and
    per hour or day of the period with per_bucket), rows outside the filters
    and rows that sum to zero left out. `prefix` keeps the values that start
    with it, case and all (a command's name followed by SEP, say); the
    database narrows the rows by it first."""
    layout = rollups.SEGMENTED_DIMENSIONS.get(dimension)
    if layout is None:
        raise ValueError(f"{dimension!r} is not a segmented dimension")
    filtered = filters.active
    if filtered and not set(rollups.SEGMENT) <= set(layout):
        raise ValueError(f"{dimension!r} carries no whole segment: it cannot be filtered")
    sums: dict[tuple, list[int]] = {}
    for part in stats._rollups(app_ids, period, dimension):
        if prefix is not None:
            part = part.filter(value__startswith=prefix)
        if filtered:
            part = matching(part, dimension, filters)
        for bucket, value, *numbers in _summed(part, period, per_bucket):
            # Django's startswith is LIKE, which ignores ASCII case on SQLite ("Build" for "build").
            if prefix is not None and not value.startswith(prefix):
                continue
            total = sums.get((bucket, value))
            if total is None:
                sums[(bucket, value)] = numbers
            else:
                sums[(bucket, value)] = [a + b for a, b in zip(total, numbers)]
    rows = []
    for (bucket, value), numbers in sums.items():
        if not numbers[0]:
            continue
        parts = rollups.split(dimension, value)
        if filtered and not filters.matches(rollups.segment_of(parts)):
            continue
        rows.append(Row(parts, *numbers, bucket=bucket))
    return rows


Sums = dict[tuple, list[int]]  # group -> [runs, succeeded, failed]


def sums(
    app_ids: Sequence[int], period: stats.Period, dimension: str, by: tuple[str, ...], *,
    filters: Filters = Filters(), command: str | None = None, per_bucket: bool = False,
) -> Sums:  # fmt: skip
    """A segmented dimension's runs, successes and failures in the period, summed per
    `by` parts (led by the UTC hour or day with per_bucket), under the filters;
    with `command`, that command's rows only (read with `prefix=command + SEP`).

    Closed days come from Django's cache while their daily rollups stand."""
    app_ids = tuple(sorted(set(app_ids)))
    prefix = None if command is None else command + rollups.SEP

    def read(part: stats.Period) -> Sums:
        if connections[HourlyCounts.objects.db].vendor == "postgresql":
            return _grouped_by_parts(app_ids, part, dimension, by, filters=filters, prefix=prefix, per_bucket=per_bucket,
                                     bucket_size=period.bucket_size)  # fmt: skip
        sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in counts(app_ids, part, dimension, filters=filters, per_bucket=per_bucket, prefix=prefix):
            # The prefix is matched case-insensitively on SQLite (LIKE): keep this command's rows only.
            if command is not None and row.parts["command"] != command:
                continue
            key = tuple(row.parts[name] for name in by)
            if per_bucket:
                key = (stats.floor_to(row.bucket, period.bucket_size), *key)
            total = sums[key]
            total[0] += row.events
            total[1] += row.succeeded
            total[2] += row.failed
        return dict(sums)

    closed, rest = closed_runs(app_ids, period)
    if not closed:
        return read(period)
    keys = {
        run: "segments:sums:" + hashlib.blake2b(
            repr((app_ids, dimension, by, filters, command, per_bucket, period.bucket, run)).encode(), digest_size=16
        ).hexdigest()
        for run in closed
    }  # fmt: skip
    # The closed runs merged are kept too, under all their keys: a view then
    # unpickles one dict instead of one per run and merges only today's rows in.
    merged_key = "segments:sums:merged:" + hashlib.blake2b(repr(sorted(keys.values())).encode(), digest_size=16).hexdigest()
    closed_sums = cache.get(merged_key)
    if closed_sums is None:
        found = cache.get_many(list(keys.values()))
        parts = []
        for run in closed:
            sums = found.get(keys[run])
            if sums is None:
                first, last, _ = run
                sums = read(stats.Period(start=start_of_day(first), end=start_of_day(last) + DAY, daily=period.daily))
                cache.set(keys[run], sums, stats.FIGURES_TIMEOUT)
            parts.append(sums)
        closed_sums = _merged(parts)
        cache.set(merged_key, closed_sums, stats.FIGURES_TIMEOUT)
    return _merged([closed_sums, *(read(part) for part in rest)])


def _merged(parts: list[Sums]) -> Sums:
    """The parts added up. Every part is a dict of the caller's own (read, or
    unpickled from the cache): the largest becomes the result, the others are added into it."""
    parts = sorted(parts, key=len, reverse=True)
    result = parts[0]
    for sums in parts[1:]:
        for key, numbers in sums.items():
            total = result.get(key)
            result[key] = numbers if total is None else [a + b for a, b in zip(total, numbers)]
    return result


class _SplitPart(Func):
    """PostgreSQL's split_part(value, SEP, n): the n-th part (from 1) of a segmented value."""

    function = "split_part"
    output_field = CharField()


def _grouped_by_parts(
    app_ids: Sequence[int], period: stats.Period, dimension: str, by: tuple[str, ...], *,
    filters: Filters, prefix: str | None, per_bucket: bool, bucket_size,
) -> Sums:  # fmt: skip
    """sums() of one period on PostgreSQL: grouped by the wanted parts in the
    database, so a day of hours comes back as one row per group rather than one
    per segment. Exact, as the Python path: a value has one SEP between parts and
    none inside them (telemetry.rollups.part), and LIKE is case-sensitive here."""
    layout = rollups.SEGMENTED_DIMENSIONS[dimension]
    if filters.active and not set(rollups.SEGMENT) <= set(layout):
        raise ValueError(f"{dimension!r} carries no whole segment: it cannot be filtered")
    parts = {f"part_{name}": _SplitPart(F("value"), Value(rollups.SEP), Value(layout.index(name) + 1)) for name in by}
    totals = {f"sum_{name}": Cast(Sum(name), BigIntegerField()) for name in ("events", "succeeded", "failed")}
    result: Sums = {}
    for part in stats._rollups(app_ids, period, dimension):
        if prefix is not None:
            part = part.filter(value__startswith=prefix)
        if filters.active:
            part = matching(part, dimension, filters)
        bucket: list[str] = []
        if per_bucket:
            if part.model is DailyRollup:
                bucket = ["day"]
            elif period.hourly:
                bucket = ["hour"]
            else:
                part, bucket = part.annotate(utc_day=stats.UTCDay("hour")), ["utc_day"]
        grouped = (
            part.annotate(**parts).values(*bucket, *parts).annotate(**totals).order_by()
            .values_list(*bucket, *parts, *totals)
        )  # fmt: skip
        with connections[part.db].cursor() as cursor:
            cursor.execute(*grouped.query.sql_with_params())
            rows = cursor.fetchall()
        for row in rows:
            if per_bucket:
                moment = row[0] if bucket == ["hour"] else start_of_day(stats._as_date(row[0]))
                key, numbers = (stats.floor_to(moment, bucket_size), *row[1 : 1 + len(by)]), row[1 + len(by) :]
            else:
                key, numbers = tuple(row[: len(by)]), row[len(by) :]
            if not numbers[0]:
                continue  # rows that sum to zero (a deletion's deltas) are left out, as counts() does
            total = result.get(key)
            result[key] = list(numbers) if total is None else [a + b for a, b in zip(total, numbers)]
    return result


def closed_runs(app_ids: tuple[int, ...], period: stats.Period) -> tuple[list[tuple[date, date, str]], list[stats.Period]]:
    """The period's closed days in runs with their rollup version (from the figures
    with_daily_rollups read), and the periods of the hours around them; no runs
    when the period was not prepared so."""
    figures = period.figures
    if period.hourly or figures is None or figures.settled is None or not figures.covers(app_ids):
        return [], [period]
    own = (period.start.astimezone(UTC).date(), (period.end.astimezone(UTC) - DAY).date())
    runs = [(first, last, token) for (first, last), token in figures.settled.clip(own)]
    if not runs:
        return [], [period]
    closed_start, closed_end = start_of_day(runs[0][0]), start_of_day(runs[-1][1]) + DAY
    rest = [
        stats.Period(start=start, end=end)
        for start, end in ((period.start, closed_start), (closed_end, period.end))
        if start < end
    ]
    return runs, rest


class _Like(Func):
    """`value LIKE pattern` on PostgreSQL, `value GLOB pattern` on SQLite: both
    case-sensitive (SQLite's LIKE is not), patterns made by _pattern()."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="%(expressions)s", arg_joiner=" LIKE ", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="%(expressions)s", arg_joiner=" GLOB ", **extra)


def _pattern(dimension: str, filters: Filters, vendor: str) -> str:
    """A LIKE (or GLOB, on SQLite) pattern matching exactly the values of the
    dimension whose segment passes the filters.

    Exact because every value has exactly one SEP between parts and no part
    holds a SEP (telemetry.rollups.part): the pattern's SEPs pair off with the
    value's one to one, so a wildcard never spans two parts."""
    glob = vendor == "sqlite"
    wanted = dict(filters.items())
    pieces = []
    for name in rollups.SEGMENTED_DIMENSIONS[dimension]:
        if name not in wanted:
            pieces.append("*" if glob else "%")
            continue
        value = getattr(filters, name)
        text = rollups.ci_text(value) if name == "ci" else rollups.part(name, value)
        if glob:
            text = "".join(f"[{c}]" if c in "*?[" else c for c in text)
        else:
            text = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pieces.append(text)
    return rollups.SEP.join(pieces)


def matching(part: QuerySet, dimension: str, filters: Filters) -> QuerySet:
    """The rollup rows of a segmented dimension whose segment passes the filters,
    selected in the database (counts() still checks each value, Filters.matches)."""
    if not filters.active:
        return part
    pattern = _pattern(dimension, filters, connections[part.db].vendor)
    return part.filter(_Like(F("value"), Value(pattern)))


def _summed(part: QuerySet, period: stats.Period, per_bucket: bool):
    """(bucket or None, value, *sums) rows of one part, summed in the database.

    Thousands of rows a view (a day's hours of a segmented dimension): fetched
    with a plain cursor, without the ORM's conversions per value."""
    # bigint, not numeric: PostgreSQL's sum of bigints would reach Python as Decimals.
    sums = {f"sum_{name}": Cast(Sum(name), BigIntegerField()) for name in FIELDS}
    columns = [f"sum_{name}" for name in FIELDS]
    if not per_bucket:
        bucket, convert = None, None
    elif part.model is DailyRollup:
        bucket, convert = "day", lambda day: start_of_day(stats._as_date(day))
    elif period.hourly:
        bucket, convert = "hour", lambda hour: stats.floor_to(as_datetime(hour), stats.HOUR)
    else:
        part, bucket = part.annotate(day=stats.UTCDay("hour")), "day"
        convert = lambda day: start_of_day(stats._as_date(day))  # noqa: E731
    grouped = part.values(*filter(None, (bucket, "value"))).annotate(**sums).order_by()
    grouped = grouped.values_list(*filter(None, (bucket, "value")), *columns)
    with connections[part.db].cursor() as cursor:
        cursor.execute(*grouped.query.sql_with_params())
        rows = cursor.fetchall()
    if convert is None:
        for row in rows:
            yield (None, *row)
    else:
        for moment, *rest in rows:
            yield (convert(moment), *rest)


def as_datetime(value: datetime | str) -> datetime:
    """SQLite gives stored datetimes back as ISO text through a plain cursor."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value).replace(tzinfo=UTC)


def user_days(app_ids: Sequence[int], first: date, last: date, *, filters: Filters = Filters()) -> QuerySet:
    """UserDay rows of the apps from `first` to `last` (UTC days, both included) under the filters."""
    rows = UserDay.objects.filter(app_id__in=list(app_ids), day__gte=first, day__lte=last)
    return rows.filter(filters.q(ci_as_text=True)) if filters.active else rows
