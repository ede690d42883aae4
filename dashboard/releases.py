"""The Releases page's figures: how an app's users move from version to version.

Users are counted from UserDay (one row per app, UTC day, user and the
version and platform they sent events with), exactly. What the figures mean,
as the page says it:

- An *active user* of a UTC day is a user_id with at least one stored event
  that day that matches the filters.
- In the chart of users per version, a user who ran several versions on one
  day counts once, under the newest of them (dashboard.versions order), so a
  day's stack is that day's active users and "older" counts a user once.
- A version's *users in the last 7 days* ran it at least once in the 7 UTC
  days ending today; a user who upgraded in that week counts for both
  versions, so the shares of the table can add up to more than 100 %.
- A *rollout* day's share is the users who ran the version that day over
  that day's active users.
- A user's version over the last 7 days is the newest version they ran in
  them; it is *N releases behind* when N versions seen (any version with a
  stored event matching the filters, pre-releases and versions that do not
  parse included) are newer.

The OS, arch and CI filters choose the users counted, denominators included.
A version filter chooses the version shown (chart, table row, rollout, old
users) among the others: shares stay shares of every user matching the
other filters, since a share of that version's users would always be 100 %.

How: the database groups the users of each day by the set of versions they
ran that day (GROUP BY day, user, then GROUP BY day and that set: a few rows
a day however many users there are), and every per-day figure above follows
from those counts, whatever the version order. Days that are over are read
once per calendar week and kept in Django's cache under the rollup_version
token of that week's days (stats.rollup_version: it changes whenever an event
of those days is added or deleted, and UserDay rows change only with them).
Today, and the 7-day window (whose distinct users do not add up day by day),
are read on every view.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import orjson
from django.core.cache import cache
from django.db import connection
from django.db.models import Min, Q

from dashboard import segments, stats, versions
from dashboard.filters import Filters
from telemetry import daily, replicas, rollups
from telemetry.models import UserDay
from telemetry.periods import DAY, UTC, start_of_day
from telemetry.rollups import COMMAND_EVENT_TYPE

TOP_VERSIONS = 6  # versions drawn on their own in the chart; the rest are summed
WINDOW_DAYS = 7  # "users in the last 7 days": the 7 UTC days ending today
DEFAULT_BEHIND = 2
CACHE_TIMEOUT = stats.FIGURES_TIMEOUT  # bounds the cache's size only: keys name what they hold

VersionSet = frozenset[str]


# --- Reading users by the versions they ran ----------------------------------------------


@dataclass(frozen=True)
class History:
    """Every UTC day's active users from the apps' first stored day to today
    (under the OS, arch and CI filters), grouped by the set of versions each ran."""

    days: dict[date, Counter[VersionSet]]
    first_seen: dict[str, date]  # each version's first UTC day with a user
    order: list[str]  # every version seen, newest first (dashboard.versions)
    today: date

    @property
    def newest(self) -> str | None:
        return self.order[0] if self.order else None

    def behind(self, version: str) -> int:
        """How many versions seen are newer than this one."""
        return self.order.index(version)

    @property
    def last_day(self) -> date | None:
        """The last UTC day with active users."""
        return max((day for day, sets in self.days.items() if sets), default=None)

    def active(self, day: date) -> int:
        return sum(self.days.get(day, Counter()).values())

    def ran(self, day: date, version: str) -> int:
        """Users who ran the version on the day."""
        return sum(n for ran, n in self.days.get(day, Counter()).items() if version in ran)

    def including(self, seen: Iterable[str]) -> History:
        """This history knowing these versions too (first seen today when new to it)."""
        new = set(seen) - set(self.first_seen)
        if not new:
            return self
        first_seen = {**self.first_seen, **dict.fromkeys(new, self.today)}
        return History(days=self.days, first_seen=first_seen, order=_newest_first(first_seen), today=self.today)


def history(app_ids: Sequence[int], *, filters: Filters, today: date) -> History:
    """The apps' users of every day up to today by the versions they ran (filters other than version applied)."""
    app_ids = sorted(set(app_ids))
    population = filters.without("version")
    first = UserDay.objects.filter(app_id__in=app_ids).aggregate(first=Min("day"))["first"]
    if first is None:
        return History(days={}, first_seen={}, order=[], today=today)
    blocks = _weeks(first, today - DAY)
    keys: dict[tuple[date, date], str] = {}
    if blocks:
        version = _fresh_version(app_ids, first, today - DAY)
        if version is not None:
            for start, end in blocks:
                token = version.token_of(start, end)
                keys[(start, end)] = "releases:days:" + hashlib.blake2b(
                    repr((app_ids, population.items(), start.isoformat(), end.isoformat(), token)).encode(),
                    digest_size=16,
                ).hexdigest()
    found = cache.get_many(list(keys.values()))
    missing = [block for block in blocks if keys.get(block) not in found]
    # The weeks not in the cache and today, in one statement.
    which = Q(day__gte=today)
    for start, end in missing:
        which |= Q(day__gte=start, day__lte=end)
    days: dict[date, Counter[VersionSet]] = {}
    for day, ran, users in _version_sets(app_ids, which, population, per_day=True):
        days.setdefault(day, Counter())[ran] += users
    for block in missing:
        if block in keys:
            start, end = block
            cache.set(keys[block], {day: sets for day, sets in days.items() if start <= day <= end}, CACHE_TIMEOUT)
    for block in blocks:
        if block not in missing:
            days.update(found[keys[block]])
    first_seen: dict[str, date] = {}
    for day in sorted(days):
        for ran in days[day]:
            for name in ran:
                first_seen.setdefault(name, day)
    return History(days=days, first_seen=first_seen, order=_newest_first(first_seen), today=today)


def _weeks(first: date, last: date) -> list[tuple[date, date]]:
    """[first, last] cut at Mondays: closed days are cached a calendar week at a
    time, so a late event makes the next view read its week again, not the history."""
    blocks, start = [], first
    while start <= last:
        end = min(last, start + timedelta(days=6 - start.weekday()))
        blocks.append((start, end))
        start = end + DAY
    return blocks


def _fresh_version(app_ids: Sequence[int], first: date, last: date) -> stats.RollupVersion | None:
    """The rollup version of the closed days, their stale daily rollups rebuilt
    first (its tokens mean something only then); None if some are still stale."""
    version = stats.rollup_version(app_ids, first, last)
    if version.stale:
        daily.build(version.stale)
        version = stats.rollup_version(app_ids, first, last)
    # Reading the version before the rows is what makes a cached week safe: rows
    # read afterwards are at least as new as the token they are kept under, and
    # any later change of those days changes the token.
    return None if version.stale else version


def _version_sets(
    app_ids: Sequence[int], which: Q, population: Filters, *, per_day: bool
) -> list[tuple[date | None, VersionSet, int]]:
    """(day or None, versions, users): the users of each day (or of all the days
    `which` selects, with per_day=False) grouped by the set of versions they ran.
    The database does the grouping; a few rows come back per day."""
    rows = UserDay.objects.filter(which, app_id__in=list(app_ids))
    if population.active:
        rows = rows.filter(population.q(ci_as_text=True))
    columns = ("day", "user_id", "service_version") if per_day else ("user_id", "service_version")
    inner, params = rows.values(*columns).distinct().order_by().query.sql_with_params()
    by = "day, user_id" if per_day else "user_id"
    if connection.vendor == "postgresql":
        versions_of = "array_to_json(array_agg(service_version ORDER BY service_version))::text"
    else:
        # SQLite keeps no promise about the order inside json_group_array: the
        # sets are made canonical below, and counts of equal sets added up.
        versions_of = "json_group_array(service_version)"
    sql = f"""
        SELECT {"day" if per_day else "NULL"}, versions, count(*) FROM (
            SELECT {by}, {versions_of} AS versions FROM ({inner}) AS ran GROUP BY {by}
        ) AS users GROUP BY {"day, " if per_day else ""}versions"""
    with replicas.read_connection(UserDay).cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return [
        (_as_date(day) if day is not None else None, frozenset(orjson.loads(ran)), int(users))
        for day, ran, users in fetched
    ]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))  # SQLite gives text


def _newest_first(first_seen: dict[str, date]) -> list[str]:
    return versions.newest_first({name: start_of_day(day) for name, day in first_seen.items()})


@dataclass(frozen=True)
class Window:
    """The users of the 7 UTC days ending today, grouped by the set of versions each ran in them."""

    first: date
    last: date
    sets: Counter[VersionSet]

    @property
    def users(self) -> int:
        return sum(self.sets.values())

    def ran(self, version: str) -> int:
        return sum(n for ran, n in self.sets.items() if version in ran)


def window(app_ids: Sequence[int], *, filters: Filters, today: date, days: int = WINDOW_DAYS) -> Window:
    """The last `days` UTC days' users by the versions they ran (filters other than version applied)."""
    first = today - timedelta(days=days - 1)
    sets: Counter[VersionSet] = Counter()
    for _, ran, users in _version_sets(
        sorted(set(app_ids)), Q(day__gte=first, day__lte=today), filters.without("version"), per_day=False
    ):
        sets[ran] += users
    return Window(first=first, last=today, sets=sets)


# --- Users per version per day ------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    version: str | None  # None: the versions summed together
    label: str
    per_day: list[int]

    @property
    def total(self) -> int:
        return sum(self.per_day)


@dataclass(frozen=True)
class DailyUsers:
    days: list[date]
    series: list[Series]  # newest first, the summed versions last
    active: list[int]  # active users per day
    # "newest": each user counted once a day, under the newest version they ran;
    # "ran": one version's users (a version filter), whatever else they ran.
    counted: str

    @property
    def users(self) -> int:
        """User-days of the series: what the chart draws, added up."""
        return sum(series.total for series in self.series)

    @property
    def shown(self) -> list[Series]:
        """The series of one version each."""
        return [series for series in self.series if series.version is not None]

    @property
    def rest(self) -> Series | None:
        """The series that sums the other versions, if there is one."""
        return next((series for series in self.series if series.version is None), None)


def range_days(period: stats.Period) -> tuple[date, date]:
    """The first and last UTC day the period touches."""
    return period.start.astimezone(UTC).date(), (period.end.astimezone(UTC) - timedelta(microseconds=1)).date()


def daily_users(history: History, *, period: stats.Period, version: str | None = None, top: int = TOP_VERSIONS) -> DailyUsers:
    """Active users per version on each UTC day the period touches: the `top`
    versions with the most user-days in it, the rest summed; or, given a
    version, that version's users and nothing else."""
    first, last = range_days(period)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    active = [history.active(day) for day in days]
    if version is not None:
        per_day = [history.ran(day, version) for day in days]
        return DailyUsers(days=days, series=[Series(version, version, per_day)], active=active, counted="ran")
    rank = {name: i for i, name in enumerate(history.order)}
    counts: dict[str, list[int]] = {}
    for i, day in enumerate(days):
        for ran, users in history.days.get(day, Counter()).items():
            newest = min(ran, key=rank.__getitem__)
            counts.setdefault(newest, [0] * len(days))[i] += users
    shown = sorted(counts, key=lambda name: (-sum(counts[name]), rank[name]))[:top]
    rest = [name for name in counts if name not in shown]
    series = [Series(name, name, counts[name]) for name in sorted(shown, key=rank.__getitem__)]
    if rest:
        oldest_shown = max(rank[name] for name in shown)
        label = "Older versions" if all(rank[name] > oldest_shown for name in rest) else "Other versions"
        summed = [sum(counts[name][i] for name in rest) for i in range(len(days))]
        series.append(Series(None, f"{label} ({len(rest)})", summed))
    return DailyUsers(days=days, series=series, active=active, counted="newest")


# --- The versions table ---------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    version: str
    first_seen: date
    behind: int  # versions seen that are newer
    users: int  # users who ran it in the window
    share: float | None  # percent of the window's users
    events: int  # in the page's range
    runs: int  # command_execution events in the range
    kind: str  # "release", "pre-release" or "unparsed" (ordered by first seen)


@dataclass(frozen=True)
class VersionTable:
    rows: list[VersionRow]  # newest first
    window: Window
    not_shown: int  # versions seen, but not in the range nor in the window


def version_table(
    app_ids: Sequence[int], history: History, week: Window, *, period: stats.Period, filters: Filters
) -> VersionTable:
    """The versions with users or events in the range or users in the window,
    newest first (one query: the range's events and runs per version)."""
    events: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    # Rollup values hold a version's first 64 characters (telemetry.rollups.PART_LENGTHS).
    full = {rollups.part("version", name): name for name in history.order}
    command_type = rollups.part("type", COMMAND_EVENT_TYPE)
    by_type = segments.sums(app_ids, period, "seg_type", ("version", "type"), filters=filters.without("version"))
    for (version, event_type), (count, _, _) in by_type.items():
        name = full.get(version, version)
        events[name] += count
        if event_type == command_type:
            runs[name] += count
    first, last = range_days(period)
    in_range = {name for day, sets in history.days.items() if first <= day <= last for ran in sets for name in ran}
    in_week = {name for ran in week.sets for name in ran}
    history = history.including(in_week | set(events))
    listed = in_range | in_week | {name for name, n in events.items() if n}
    users = week.users
    rows = []
    for name in history.order:
        if name not in listed or (filters.version is not None and name != filters.version):
            continue
        ran = week.ran(name)
        rows.append(
            VersionRow(
                version=name,
                first_seen=history.first_seen[name],
                behind=history.behind(name),
                users=ran,
                share=ran * 100 / users if users else None,
                events=events[name],
                runs=runs[name],
                kind=_kind(name),
            )
        )
    return VersionTable(rows=rows, window=week, not_shown=len(history.order) - len(listed))


def _kind(version: str) -> str:
    parsed = versions.parse(version)
    if parsed is None:
        return "unparsed"
    return "pre-release" if parsed.prerelease else "release"


# --- Rollout of the newest version -------------------------------------------------------


@dataclass(frozen=True)
class RolloutDay:
    day: date
    users: int  # who ran the version that day
    active: int
    share: float | None  # percent; None on a day without active users


@dataclass(frozen=True)
class Rollout:
    version: str
    newest: bool  # the newest version seen (not one picked by the version filter)
    first_seen: date
    days: list[RolloutDay]  # from first seen to today
    reached_50: int | None  # days after first seen when the share first reached 50 %; None: not yet
    reached_90: int | None


def rollout(history: History, *, version: str | None = None) -> Rollout | None:
    """The share of each day's active users who ran the version (the newest
    seen unless given), from the day it was first seen to today."""
    version = version if version is not None else history.newest
    if version is None or version not in history.first_seen:
        return None
    first_seen = history.first_seen[version]
    days = []
    for i in range((history.today - first_seen).days + 1):
        day = first_seen + timedelta(days=i)
        active = history.active(day)
        users = history.ran(day, version)
        days.append(RolloutDay(day=day, users=users, active=active, share=users * 100 / active if active else None))

    def reached(percent: int) -> int | None:
        # Shares compared as users * 100 >= active * percent: exact, no rounding.
        return next(((d.day - first_seen).days for d in days if d.active and d.users * 100 >= d.active * percent), None)

    return Rollout(
        version=version,
        newest=version == history.newest,
        first_seen=first_seen,
        days=days,
        reached_50=reached(50),
        reached_90=reached(90),
    )


# --- Users still on old versions -----------------------------------------------------------


@dataclass(frozen=True)
class BehindRow:
    behind: int  # releases behind the newest; with `more`, more than this
    users: int
    share: float | None
    more: bool = False


@dataclass(frozen=True)
class OldVersions:
    limit: int  # N: "more than N releases behind"
    newest: str
    users: int  # users of the window (whose version is the filtered one, under a version filter)
    old: int  # those whose version is more than N releases behind
    rows: list[BehindRow]  # 0, 1, … N releases behind, then more than N
    version: str | None  # the version filter, if any

    @property
    def share(self) -> float | None:
        return self.old * 100 / self.users if self.users else None


def old_versions(history: History, week: Window, *, limit: int = DEFAULT_BEHIND, version: str | None = None) -> OldVersions | None:
    """How many of the window's users are on a version more than `limit`
    releases behind the newest; a user's version is the newest they ran in the
    window. Under a version filter, only the users whose version it is count."""
    history = history.including(name for ran in week.sets for name in ran)
    if history.newest is None:
        return None
    rank = {name: i for i, name in enumerate(history.order)}
    behind: Counter[int] = Counter()
    for ran, users in week.sets.items():
        newest = min(ran, key=rank.__getitem__)
        if version is None or newest == version:
            behind[rank[newest]] += users
    total = sum(behind.values())

    def share(n: int) -> float | None:
        return n * 100 / total if total else None

    # One row per possible distance up to N, then "more than N" when there can be any.
    oldest = len(history.order) - 1
    rows = [BehindRow(behind=k, users=behind[k], share=share(behind[k])) for k in range(min(limit, oldest) + 1)]
    old = sum(n for k, n in behind.items() if k > limit)
    if oldest > limit:
        rows.append(BehindRow(behind=limit, users=old, share=share(old), more=True))
    return OldVersions(limit=limit, newest=history.newest, users=total, old=old, rows=rows, version=version)
