"""Active users, new and returning users and cohort retention, exact, from UserDay.

A user is the SDK's anonymous `user_id` within one app; a user is active on
a UTC day when at least one of their events of that day is stored (a UserDay
row, telemetry.models). Under the filter bar, only the matching UserDay rows
count, and "first seen" is computed after filtering: everything is counted as
if the app had received only the matching events (filtered by version, a
user's first-seen day is the first day they used that version).

Every figure comes from one small summary per UTC day (DaySummary): for each
user active that day, how many days before they were last active ("gap",
capped at GAP_CAP), and the day they were first seen. From those:
- DAU, WAU, MAU of day x are the users active in the 1, 7 or 30 days ending
  on x. A user's active days d1 < d2 < ... cover the days [d, d + L - 1]; the
  part of it that d adds to the earlier days' is [d + max(0, L - gap), d + L - 1],
  and these pieces are disjoint, so a +1/-1 sweep over them counts each
  user once per day (no distinct count per day).
- New users of a day: gap "never" (first seen that day); returning: the rest.
- Cohorts: users first seen in week W (or on day D) active in a later week
  (day): a user counts in week W+k on the first day of W+k they are active,
  which is the day whose previous active day lies before W+k.
- Users seen on one day only: first seen in the range, and no second day:
  each user's second active day is counted by their first-seen day.

Closed days' summaries are cached in Django's cache under a digest of every
closed day's daily rollups up to that day (dashboard.stats.rollup_version:
a summary depends on its day and all days before it), so a late event on a
day recomputes the summaries from that day on, not the range. Today's summary
is cached with the state of today's UserDay rows it covers, and grows by the
users who came since (_today). docs/retention.md has the costs and measurements.

Times are UTC: days are UTC days and weeks start on Monday 00:00 UTC.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum

from dashboard import segments, stats
from dashboard.filters import Filters
from telemetry import daily, replicas
from telemetry.models import UserDay

ONE_DAY = timedelta(days=1)
# Windows of the rolling counts, in days.
WEEK, MONTH = 7, 30
# Gaps of MONTH days or more count the same in every figure (the longest window).
GAP_CAP = MONTH
NEW = 0  # the gap of a user's first-seen day: never seen before
WEEKLY_COHORTS, WEEKLY_OFFSETS = 12, 8
DAILY_COHORTS, DAILY_OFFSETS = 14, 14
# New vs returning users are shown per week beyond this many days.
DAILY_BUCKETS_UP_TO = 92
# A run of missing days at most this long is summarised by looking up each
# active user's previous and first day in the (app, user_id, day) index; a
# longer one in one ordered pass over the apps' UserDay rows up to its end.
PROBE_DAYS_UP_TO = 3
CACHE_TIMEOUT = 24 * 3600  # a cached summary is never wrong (its key names its inputs): this bounds the cache
CACHE_PREFIX = "retention-day:v1"


# --- Day numbers -------------------------------------------------------------------------
# Days are handled as integers, n = date.toordinal() - 1: 0001-01-01, a Monday, is 0,
# so n % 7 == 0 on Mondays and n - n % 7 is the Monday starting n's week.


def day_number(day: date) -> int:
    return day.toordinal() - 1


def day_of(number: int) -> date:
    return date.fromordinal(number + 1)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _number_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} - DATE '0001-01-01')"
    # SQLite keeps dates as ISO text; julianday('0001-01-01') is 1721425.5.
    return f"CAST(julianday({column}) - 1721425.5 AS INTEGER)"


# --- Per-day summaries ----------------------------------------------------------------------


@dataclass(frozen=True)
class DaySummary:
    """The users active on one UTC day, counted by what the figures need."""

    # gap (days since the user's previous active day, GAP_CAP for GAP_CAP or
    # more, NEW when never seen before) -> users
    gaps: dict[int, int] = field(default_factory=dict)
    # first-seen week's Monday (day number) -> users for whom this is their first active day of the week
    first_weeks: dict[int, int] = field(default_factory=dict)
    # first-seen day (day number, at most DAILY_OFFSETS days back) -> users
    first_days: dict[int, int] = field(default_factory=dict)
    # first-seen day (day number) -> users for whom this is their second active day
    second_days: dict[int, int] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return self.gaps.get(NEW, 0)


EMPTY = DaySummary()


def _rows(app_ids: Sequence[int], first: date, last: date, filters: Filters) -> tuple[str, list]:
    """SQL (app_id, user_id, day) of the UserDay rows of [first, last] under the filters, and its parameters."""
    rows = segments.user_days(app_ids, first, last, filters=filters).values("app_id", "user_id", "day")
    sql, params = rows.query.sql_with_params()
    return sql, list(params)


def _tallies_sql() -> str:
    """The four tallies of a CTE `x` (day, prev_day: the user's previous active
    day or NULL, first_day: their first-seen day), as rows of (kind, day
    number, key, users): kind 0 by gap, 1 by first-seen week of users on their
    first active day of the week, 2 by recent first-seen day, 3 by first-seen
    day of users on their second active day."""
    n = _number_sql
    keys = f"""
        SELECT n,
               CASE WHEN prev IS NULL THEN {NEW} WHEN n - prev >= {GAP_CAP} THEN {GAP_CAP} ELSE n - prev END AS gap,
               CASE WHEN prev IS NULL OR prev < n - n %% 7 THEN first - first %% 7 END AS week,
               CASE WHEN first >= n - {DAILY_OFFSETS} THEN first END AS recent,
               CASE WHEN prev = first THEN first END AS second
        FROM (SELECT {n("day")} AS n, {n("prev_day")} AS prev, {n("first_day")} AS first FROM x) d"""
    if connection.vendor == "postgresql":
        # One pass over the user-days, four hash tables.
        return f"""
        SELECT CASE WHEN GROUPING(gap) = 0 THEN 0 WHEN GROUPING(week) = 0 THEN 1 WHEN GROUPING(recent) = 0 THEN 2 ELSE 3 END,
               n, COALESCE(gap, week, recent, second), count(*)
        FROM ({keys}) k
        GROUP BY GROUPING SETS ((n, gap), (n, week), (n, recent), (n, second))
        HAVING COALESCE(gap, week, recent, second) IS NOT NULL"""
    # SQLite has no grouping sets: four passes over the materialised keys.
    return f"""
    , k AS MATERIALIZED ({keys})
    SELECT 0, n, gap, count(*) FROM k GROUP BY 2, 3
    UNION ALL SELECT 1, n, week, count(*) FROM k WHERE week IS NOT NULL GROUP BY 2, 3
    UNION ALL SELECT 2, n, recent, count(*) FROM k WHERE recent IS NOT NULL GROUP BY 2, 3
    UNION ALL SELECT 3, n, second, count(*) FROM k WHERE second IS NOT NULL GROUP BY 2, 3"""


def _probe_sql(span: str, span_params: list, history: str, history_params: list) -> tuple[str, list]:
    """Tallies of the user-days of `span` (SQL of UserDay rows), each looking up
    its previous and first day in the (app, user_id, day) index
    (user_day_by_user), one short index read each."""
    sql = f"""
    WITH r AS (SELECT DISTINCT app_id, user_id, day FROM ({span}) s),
    x AS MATERIALIZED (
        SELECT r.day,
               (SELECT MAX(e.day) FROM ({history}) e
                 WHERE e.app_id = r.app_id AND e.user_id = r.user_id AND e.day < r.day) AS prev_day,
               (SELECT MIN(e.day) FROM ({history}) e
                 WHERE e.app_id = r.app_id AND e.user_id = r.user_id) AS first_day
        FROM r
    )
    {_tallies_sql()}"""
    return sql, [*span_params, *history_params, *history_params]


def _summaries_sql(app_ids: Sequence[int], filters: Filters, first: date, last: date) -> tuple[str, list]:
    """One query summarising the days [first, last] (rows of _tallies_sql)."""
    history, history_params = _rows(app_ids, date.min, last, filters)
    if (last - first).days + 1 <= PROBE_DAYS_UP_TO:
        return _probe_sql(*_rows(app_ids, first, last, filters), history, history_params)
    # Many days: one pass over the rows up to `last` in (app, user_id, day)
    # order, which the index gives without sorting. A user's several rows of
    # one day (versions, platforms) are consecutive: all but the first have
    # prev_day = day and are left out.
    sql = f"""
    WITH x AS (
        SELECT day, prev_day, first_day FROM (
            SELECT day, LAG(day) OVER w AS prev_day, FIRST_VALUE(day) OVER w AS first_day
            FROM ({history}) h
            WINDOW w AS (PARTITION BY app_id, user_id ORDER BY day)
        ) w
        WHERE day >= %s AND (prev_day IS NULL OR prev_day < day)
    )
    {_tallies_sql()}"""
    return sql, [*history_params, connection.ops.adapt_datefield_value(first)]


def compute_summaries(app_ids: Sequence[int], filters: Filters, first: date, last: date) -> dict[date, DaySummary]:
    """The summaries of the days [first, last], read from the database (days without users: EMPTY)."""
    tallies = _tallies(*_summaries_sql(app_ids, filters, first, last))
    out = {}
    day = first
    while day <= last:
        parts = tallies.get(day_number(day))
        out[day] = DaySummary(*parts) if parts else EMPTY
        day += ONE_DAY
    return out


def _tallies(sql: str, params: list) -> dict[int, tuple[dict, dict, dict, dict]]:
    """Day number -> the four tallies of DaySummary, from a query of _tallies_sql rows."""
    tallies: dict[int, tuple[dict, dict, dict, dict]] = defaultdict(lambda: ({}, {}, {}, {}))
    reading = replicas.read_connection(UserDay)
    with transaction.atomic(using=reading.alias), reading.cursor() as cursor:
        if reading.vendor == "postgresql":
            # The grouping sets hash a row per user-day of the run: with the
            # default 4 MB PostgreSQL sorts them on disk instead (docs/retention.md).
            cursor.execute("SET LOCAL work_mem = '32MB'")
        cursor.execute(sql, params)
        for kind, number, key, users in cursor.fetchall():
            tallies[number][kind][key] = users
    return tallies


@dataclass(frozen=True)
class TodayRows:
    """The state of today's UserDay rows of the apps (unfiltered): how many,
    the sum and the newest of their ids; and how many, and their id sum, have
    an id above `since`, the newest id of the state compared with."""

    count: int
    id_sum: int
    top: int | None
    newer: int = 0
    newer_sum: int = 0

    def covers(self, earlier: TodayRows) -> bool:
        """Whether these rows are the `earlier` ones plus newer ones only."""
        return self.count - self.newer == earlier.count and self.id_sum - self.newer_sum == earlier.id_sum


def _today_rows(app_ids: Sequence[int], today: date, since: int | None) -> TodayRows:
    rows = UserDay.objects.filter(app_id__in=list(app_ids), day=today)
    newer = Q(id__gt=since) if since is not None else Q()
    found = rows.aggregate(
        count=Count("id"), id_sum=Sum("id"), top=Max("id"), newer=Count("id", filter=newer), newer_sum=Sum("id", filter=newer)
    )
    return TodayRows(found["count"], found["id_sum"] or 0, found["top"], found["newer"], found["newer_sum"] or 0)


def _today_summary(app_ids: Sequence[int], filters: Filters, today: date, *, upto: int, above: int | None) -> DaySummary:
    """The summary of today's rows with an id up to `upto`, or only of the
    users whose first matching row of today has an id in (above, upto]."""
    rows = segments.user_days(app_ids, today, today, filters=filters).filter(id__lte=upto)
    if above is not None:
        earlier = segments.user_days(app_ids, today, today, filters=filters).filter(
            id__lte=above, app_id=OuterRef("app_id"), user_id=OuterRef("user_id")
        )
        rows = rows.filter(id__gt=above).exclude(Exists(earlier))
    span, span_params = rows.values("app_id", "user_id", "day").query.sql_with_params()
    history, history_params = _rows(app_ids, date.min, today, filters)
    parts = _tallies(*_probe_sql(span, list(span_params), history, history_params)).get(day_number(today))
    return DaySummary(*parts) if parts else EMPTY


def _added(one: DaySummary, other: DaySummary) -> DaySummary:
    def add(a: dict, b: dict) -> dict:
        total = dict(a)
        for key, n in b.items():
            total[key] = total.get(key, 0) + n
        return total

    return DaySummary(*(add(getattr(one, name), getattr(other, name)) for name in ("gaps", "first_weeks", "first_days", "second_days")))


def history_start(app_ids: Sequence[int]) -> date | None:
    """The earliest UTC day with a stored event of the apps (unfiltered), or None."""
    day = UserDay.objects.filter(app_id__in=list(app_ids)).aggregate(first=Min("day"))["first"]
    return stats._as_date(day) if day is not None else None


def _closed_tokens(app_ids: Sequence[int], start: date, last: date) -> dict[date, str]:
    """For each closed day d in [start, last], a digest of every day's daily rollups from `start` to d.

    A day's summary depends on that day and every day before it; the digest
    changes whenever one of their figures does (stats.rollup_version), so it
    names the summary's inputs. Stale days are rebuilt first, as
    stats.with_daily_rollups does, since a digest means something only then."""
    version = stats.rollup_version(app_ids, start, last)
    if version.stale:
        daily.build(version.stale)
        version = version.rebuilt(stats._daily_totals(version.stale))
    per_day: dict[str, list] = defaultdict(list)
    for row in version.totals:
        per_day[row[1]].append(row)
    digest = hashlib.blake2b(repr((version.table, start.isoformat())).encode(), digest_size=16)
    tokens = {}
    day = start
    while day <= last:
        digest.update(repr(per_day.get(day.isoformat(), [])).encode())
        tokens[day] = digest.copy().hexdigest()
        day += ONE_DAY
    return tokens


def _key(app_ids: Sequence[int], filters: Filters, day: date, token: str) -> str:
    scope = hashlib.blake2b(repr((sorted(set(app_ids)), filters.items())).encode(), digest_size=12).hexdigest()
    return f"{CACHE_PREFIX}:{scope}:{day.isoformat()}:{token}"


def summaries(app_ids: Sequence[int], filters: Filters, first: date, last: date, *, today: date) -> dict[date, DaySummary]:
    """The summaries of the days [first, min(last, today)], from the cache where it has them.

    Days after today are left out: a figure of a day not yet begun is blank."""
    last = min(last, today)
    if last < first:
        return {}
    start = history_start(app_ids)
    if start is None or start > last:
        return {day: EMPTY for day in _days(first, last)}
    out = {day: EMPTY for day in _days(first, min(last, start - ONE_DAY))}
    first = max(first, start)
    closed_last = min(last, today - ONE_DAY)
    tokens = _closed_tokens(app_ids, start, closed_last) if start <= closed_last else {}
    keys = {day: _key(app_ids, filters, day, tokens[day]) for day in _days(first, closed_last)}
    today_key = _key(app_ids, filters, today, "today:" + tokens.get(today - ONE_DAY, "")) if last == today else None
    found = cache.get_many([*keys.values(), *([today_key] if today_key else [])])
    missing = [day for day, key in keys.items() if key not in found]
    computed = {}
    if missing:
        # One query for the run of missing days: they are mostly the last few.
        computed = compute_summaries(app_ids, filters, min(missing), max(missing))
        cache.set_many({keys[day]: computed[day] for day in missing}, CACHE_TIMEOUT)
    for day, key in keys.items():
        out[day] = found[key] if key in found else computed[day]
    if today_key:
        out[today] = _today(app_ids, filters, today, today_key, found.get(today_key))
    return out


def _today(app_ids: Sequence[int], filters: Filters, today: date, key: str, cached) -> DaySummary:
    """Today's summary, kept in the cache with the state of today's rows it covers.

    Ingest only adds rows, with ids above every earlier one. So when today's
    rows are those covered (same count and id sum) plus newer ones, the users
    whose first matching row of today is newer are added to the cached
    summary; any other change (a deletion, a row committed late with an older
    id) recomputes it. A summary counts only the rows up to the newest id read
    before it, so a row added meanwhile is never counted twice. (A deletion and
    late rows whose ids add up to exactly the deleted ones', between two views,
    would go unseen until the day is over.)"""
    summary, covered = cached if cached is not None else (None, None)
    rows = _today_rows(app_ids, today, covered.top if covered else None)
    if rows.top is None:
        summary = EMPTY
    elif summary is not None and rows.covers(covered):
        if rows.newer:
            summary = _added(summary, _today_summary(app_ids, filters, today, upto=rows.top, above=covered.top))
    else:
        summary = _today_summary(app_ids, filters, today, upto=rows.top, above=None)
    state = TodayRows(rows.count, rows.id_sum, rows.top)
    if covered != state:
        cache.set(key, (summary, state), CACHE_TIMEOUT)
    return summary


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if first <= last else []


# --- Figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayActivity:
    day: date
    dau: int
    wau: int
    mau: int
    partial: bool  # today: not over yet

    @property
    def stickiness(self) -> float | None:
        """DAU / MAU as a percentage; None without monthly users."""
        return 100 * self.dau / self.mau if self.mau else None


@dataclass(frozen=True)
class NewReturning:
    """Users active in a bucket (a UTC day, or the part of a week inside the range)."""

    first: date
    last: date
    active: int
    new: int
    partial: bool  # holds today

    @property
    def returning(self) -> int:
        return self.active - self.new


@dataclass(frozen=True)
class Cell:
    """Users of a cohort active in one later week or day; users None: not begun yet."""

    users: int | None
    share: float | None  # percent of the cohort
    partial: bool  # the week or day is not over


@dataclass(frozen=True)
class Cohort:
    first: date  # the week's Monday, or the day
    last: date
    size: int
    partial: bool  # still taking in new users (holds today)
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class OneDay:
    users: int  # first seen in the range
    one_day: int  # of them, seen on one day only so far

    @property
    def share(self) -> float | None:
        return 100 * self.one_day / self.users if self.users else None


@dataclass(frozen=True)
class Retention:
    first: date
    last: date  # the range's last day, at most today
    today: date
    days: list[DayActivity]
    buckets: list[NewReturning]
    weekly_buckets: bool
    weekly_cohorts: list[Cohort]
    daily_cohorts: list[Cohort]
    one_day: OneDay

    @property
    def has_users(self) -> bool:
        return any(day.dau for day in self.days)

    @property
    def latest(self) -> DayActivity | None:
        return self.days[-1] if self.days else None


def retention(app_ids: Sequence[int], first: date, last: date, *, filters: Filters = Filters(), today: date) -> Retention:
    """Every figure of the retention page for the UTC days [first, last] (days after today left out)."""
    last = min(last, today)
    weekly_starts = _weekly_cohort_starts(first, last)
    daily_starts = _days(max(first, last - timedelta(days=DAILY_COHORTS - 1)), last)
    earliest = min([first - timedelta(days=MONTH - 1), *weekly_starts])
    by_day = summaries(app_ids, filters, earliest, today, today=today) if first <= last else {}
    weekly = (last - first).days + 1 > DAILY_BUCKETS_UP_TO
    return Retention(
        first=first,
        last=last,
        today=today,
        days=_activity(by_day, first, last, today),
        buckets=_new_returning(by_day, first, last, today, weekly=weekly),
        weekly_buckets=weekly,
        weekly_cohorts=_cohorts(by_day, weekly_starts, length=7, offsets=WEEKLY_OFFSETS, today=today),
        daily_cohorts=_cohorts(by_day, daily_starts, length=1, offsets=DAILY_OFFSETS, today=today),
        one_day=_one_day(by_day, first, last, today),
    )


def _weekly_cohort_starts(first: date, last: date) -> list[date]:
    """The Mondays of the weeks the range overlaps, the last WEEKLY_COHORTS of them."""
    if last < first:
        return []
    starts, week = [], monday(first)
    while week <= last:
        starts.append(week)
        week += timedelta(days=7)
    return starts[-WEEKLY_COHORTS:]


def _activity(by_day: dict[date, DaySummary], first: date, last: date, today: date) -> list[DayActivity]:
    """DAU, WAU and MAU of each day: a +1/-1 sweep over each user-day's new piece of coverage."""
    if last < first:
        return []
    origin = day_number(first) - (MONTH - 1)
    size = day_number(last) - origin + MONTH + 1
    sweeps = {length: [0] * size for length in (1, WEEK, MONTH)}
    for day, summary in by_day.items():
        n = day_number(day) - origin
        if n < 0 or day > last:
            continue
        for gap, users in summary.gaps.items():
            seen_gap = MONTH if gap == NEW else gap  # never seen: nothing earlier to overlap
            for length, sweep in sweeps.items():
                sweep[n + max(0, length - seen_gap)] += users
                sweep[n + length] -= users
    running = {length: 0 for length in sweeps}
    figures = []
    for i in range(day_number(last) - origin + 1):
        for length, sweep in sweeps.items():
            running[length] += sweep[i]
        if i >= MONTH - 1:
            day = day_of(origin + i)
            figures.append(DayActivity(day, running[1], running[WEEK], running[MONTH], partial=day == today))
    return figures


def _new_returning(
    by_day: dict[date, DaySummary], first: date, last: date, today: date, *, weekly: bool
) -> list[NewReturning]:
    buckets = []
    start = first
    while start <= last:
        end = min(last, monday(start) + timedelta(days=6)) if weekly else start
        active = new = 0
        for day in _days(start, end):
            summary = by_day.get(day, EMPTY)
            offset = (day - start).days
            new += summary.new
            # Counted on their first active day of the bucket: the previous one lies before it.
            active += sum(users for gap, users in summary.gaps.items() if gap == NEW or gap > offset)
        buckets.append(NewReturning(start, end, active, new, partial=start <= today <= end))
        start = end + ONE_DAY
    return buckets


def _cohorts(
    by_day: dict[date, DaySummary], starts: list[date], *, length: int, offsets: int, today: date
) -> list[Cohort]:
    """Users first seen in each period [start, start + length - 1], and how many
    of them were active in each of the `offsets` periods after it."""
    cohorts = []
    for start in starts:
        end = start + timedelta(days=length - 1)
        size = sum(by_day.get(day, EMPTY).new for day in _days(start, min(end, today)))
        key = day_number(start)
        cells = []
        for k in range(1, offsets + 1):
            begins = start + timedelta(days=k * length)
            ends = begins + timedelta(days=length - 1)
            if begins > today:
                cells.append(Cell(users=None, share=None, partial=False))
                continue
            users = 0
            for day in _days(begins, min(ends, today)):
                summary = by_day.get(day, EMPTY)
                users += (summary.first_weeks if length == 7 else summary.first_days).get(key, 0)
            cells.append(Cell(users=users, share=100 * users / size if size else None, partial=ends >= today))
        cohorts.append(Cohort(first=start, last=end, size=size, partial=end >= today, cells=tuple(cells)))
    return cohorts


def _one_day(by_day: dict[date, DaySummary], first: date, last: date, today: date) -> OneDay:
    """Users first seen in the range, and those of them with no second active day up to today."""
    if last < first:
        return OneDay(0, 0)
    low, high = day_number(first), day_number(last)
    users = sum(by_day.get(day, EMPTY).new for day in _days(first, last))
    returned = 0
    for day in _days(first, today):
        for first_seen, count in by_day.get(day, EMPTY).second_days.items():
            if low <= first_seen <= high:
                returned += count
    return OneDay(users=users, one_day=users - returned)
