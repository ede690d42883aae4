"""The platforms page's figures: who runs the app on which OS and architecture, and how it goes there.

For each OS × arch pair seen in the range (under the filter bar's filters):
- users: distinct user ids with at least one matching event on that platform
  on the UTC days the range touches, from UserDay (exact). A user seen on two
  platforms counts in both rows and once in the total;
- events: every matching event, from the `segment` dimension;
- command runs, with success and failure as the SDK's `data.success` says,
  from the `cmd` dimension; the failure rate is failed / (succeeded + failed);
- its OS versions, with their users and events (`segment` carries the OS
  version, UserDay too; command runs are not kept per OS version).

Three queries whatever the range: `segment` and `cmd` summed over the period
(dashboard.segments, daily rollups for closed days) and one of UserDay's
distinct (platform, OS version, user) tuples; for a range prepared by
stats.with_daily_rollups, what its closed days hold is kept in Django's cache
and only the current day is read again on the next view (_counts). Segmented
parts keep their first 64 characters (telemetry.rollups.PART_LENGTHS), and
UserDay's values are cut the same way so both sides name a platform alike.
Times are UTC.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from django.core.cache import cache

from dashboard import segments, stats
from dashboard.filters import Filters
from telemetry import daily, rollups
from telemetry.periods import DAY, start_of_day

NONE = "(none)"  # how an OS, arch or OS version the SDK did not send is shown


@dataclass(frozen=True)
class Tail:
    """What a cut left out: how many rows, and their events and command runs."""

    count: int = 0
    events: int = 0
    runs: int = 0


@dataclass(frozen=True)
class OSVersionRow:
    os_version: str
    users: int
    events: int

    @property
    def label(self) -> str:
        return self.os_version or NONE


@dataclass(frozen=True)
class PlatformRow:
    os: str
    arch: str
    users: int
    events: int
    runs: int
    succeeded: int
    failed: int
    os_versions: list[OSVersionRow] = field(default_factory=list)  # most users first
    hidden_os_versions: Tail | None = None  # set by cut() when it left some out

    @property
    def os_label(self) -> str:
        return self.os or NONE

    @property
    def arch_label(self) -> str:
        return self.arch or NONE

    @property
    def with_outcome(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Percent of runs reporting an outcome that failed; None when none reported one."""
        return self.failed * 100 / self.with_outcome if self.with_outcome else None


@dataclass(frozen=True)
class Platforms:
    rows: list[PlatformRow]  # every platform with events in the period, most users first
    users: int  # distinct over every platform, on the whole UTC days of the period
    events: int
    runs: int
    succeeded: int
    failed: int
    hidden: Tail = Tail()  # set by cut(): the platforms past the cut

    @property
    def total(self) -> int:
        """How many platforms there are, shown or not."""
        return len(self.rows) + self.hidden.count

    @property
    def failure_rate(self) -> float | None:
        reported = self.succeeded + self.failed
        return self.failed * 100 / reported if reported else None


# A cached read of closed days is never wrong while its key stands (the key
# names the rollup versions it was read under); this only bounds the cache.
CLOSED_TIMEOUT = 24 * 3600

VersionKey = tuple[str, str, str]  # os, arch, OS version (as segmented parts)


@dataclass
class _Counts:
    """What platforms() reads for some days: events per OS version, command runs
    per platform ([runs, succeeded, failed]), and the user ids per OS version,
    per platform and in all (kept apart so that adding a day's few ids to a
    long range's many updates them in place, and pickled once each)."""

    events: dict[VersionKey, int] = field(default_factory=dict)
    runs: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    users: dict[VersionKey, set[str]] = field(default_factory=dict)
    platform_users: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    everyone: set[str] = field(default_factory=set)

    def add_users(self, key: VersionKey, ids: Iterable[str]) -> None:
        ids = set(ids)
        self.users.setdefault(key, set()).update(ids)
        self.platform_users.setdefault(key[:2], set()).update(ids)
        self.everyone.update(ids)

    def add(self, other: _Counts) -> None:
        for key, n in other.events.items():
            self.events[key] = self.events.get(key, 0) + n
        for key, numbers in other.runs.items():
            mine = self.runs.setdefault(key, [0, 0, 0])
            for i, n in enumerate(numbers):
                mine[i] += n
        for key, ids in other.users.items():
            self.add_users(key, ids)


def _read(app_ids: Sequence[int], period: stats.Period, first: date, last: date, filters: Filters) -> _Counts:
    """The rollups of the period and the UserDay rows of the UTC days [first, last], under the filters."""
    counts = _Counts()
    for row in segments.counts(app_ids, period, "segment", filters=filters):
        key = (row.parts["os"], row.parts["arch"], row.parts["os_version"])
        counts.events[key] = counts.events.get(key, 0) + row.events
    for row in segments.counts(app_ids, period, "cmd", filters=filters):
        numbers = counts.runs.setdefault((row.parts["os"], row.parts["arch"]), [0, 0, 0])
        numbers[0] += row.events
        numbers[1] += row.succeeded
        numbers[2] += row.failed
    seen = (
        segments.user_days(app_ids, first, last, filters=filters)
        .values_list("os", "arch", "os_version", "user_id")
        .order_by()
        .distinct()
    )
    # Tens of thousands of rows for a long range, made distinct by the database
    # (a hash, not a sort), then each OS version's ids added to its sets at once.
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for os, arch, os_version, user_id in seen:
        grouped[(os, arch, os_version)].append(user_id)
    for (os, arch, os_version), ids in grouped.items():
        # UserDay keeps whole values; the rollups' parts are cut (PART_LENGTHS): name them alike.
        counts.add_users((rollups.part("os", os), rollups.part("arch", arch), rollups.part("os_version", os_version)), ids)
    return counts


def _counts(app_ids: Sequence[int], period: stats.Period, filters: Filters) -> _Counts:
    """_read() of the period and its UTC days, the closed days' part kept in Django's cache.

    A period prepared by stats.with_daily_rollups carries the versions of its
    closed days' rollups (RangeFigures.settled), in runs (the last week before
    today, and the days before it). UserDay rows are written with their events
    and deleted with them, as the daily actors are, so a closed day's rows
    change only when its version does (stats.rollup_version's contract): the
    read of each run's days is cached under the run's version, and only the
    rest (today) is read on each view. A late event re-reads its run, not the
    range. The distinct users of a 90-day range are hundreds of thousands of
    UserDay rows: far too many to read per view."""
    first, last = stats._days(period)
    figures = period.figures
    settled = figures.settled if figures is not None and figures.covers(app_ids) else None
    closed = daily.closed_days(period.start, period.end)
    if settled is None or closed is None or closed[0] != first or not settled.covers(closed):
        return _read(app_ids, period, first, last, filters)
    parts = settled.clip(closed)

    def key(*what) -> str:
        text = repr((sorted(set(app_ids)), filters.items(), *what))
        return "platforms:closed:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    # The whole closed span under every run's version (one read per view), else
    # assembled from each run's own entry, reading only the runs that changed.
    whole = key(closed[0].isoformat(), closed[1].isoformat(), [version for _, version in parts])
    counts = cache.get(whole)
    if counts is None:
        keys = {part: key(part[0].isoformat(), part[1].isoformat(), version) for part, version in parts}
        found = cache.get_many(list(keys.values()))
        counts = _Counts()
        for part, _ in parts:
            read = found.get(keys[part])
            if read is None:
                days = stats.Period(start=start_of_day(part[0]), end=start_of_day(part[1]) + DAY, daily=period.daily)
                read = _read(app_ids, days, *part, filters)
                cache.set(keys[part], read, CLOSED_TIMEOUT)
            counts.add(read)
        if len(parts) > 1:
            cache.set(whole, counts, CLOSED_TIMEOUT)
    rest_start = start_of_day(closed[1]) + DAY
    if rest_start < period.end:
        counts.add(_read(app_ids, stats.Period(start=rest_start, end=period.end), closed[1] + DAY, last, filters))
    return counts


def platforms(app_ids: Sequence[int], *, period: stats.Period, filters: Filters = Filters()) -> Platforms:
    """Every OS × arch pair with matching events in the period, most users first."""
    counts = _counts(app_ids, period, filters)

    # Rows are the platforms and OS versions with events in the period; users are
    # counted over its whole UTC days (as the overview counts them), so for the
    # 24-hour range a user may count who sent nothing in its last 24 hours.
    versions: dict[tuple[str, str], list[OSVersionRow]] = defaultdict(list)
    for key, n in counts.events.items():
        if n:
            os, arch, os_version = key
            versions[(os, arch)].append(OSVersionRow(os_version, len(counts.users.get(key, ())), n))
    rows = []
    for key in versions:
        os, arch = key
        run, succeeded, failed = counts.runs.get(key, (0, 0, 0))
        rows.append(
            PlatformRow(
                os=os,
                arch=arch,
                users=len(counts.platform_users.get(key, ())),
                events=sum(version.events for version in versions[key]),
                runs=run,
                succeeded=succeeded,
                failed=failed,
                os_versions=sorted(versions[key], key=lambda v: (-v.users, -v.events, v.os_version)),
            )
        )
    rows.sort(key=lambda row: (-row.users, -row.events, -row.runs, row.os, row.arch))
    return Platforms(
        rows=rows,
        users=len(counts.everyone),
        events=sum(row.events for row in rows),
        runs=sum(row.runs for row in rows),
        succeeded=sum(row.succeeded for row in rows),
        failed=sum(row.failed for row in rows),
    )


def cut(result: Platforms, *, platforms: int | None, os_versions: int | None) -> Platforms:
    """The first `platforms` rows, each with its first `os_versions` OS versions
    (None: all), saying what was left out; totals stay those of every platform."""
    rows, hidden = result.rows, Tail()
    if platforms is not None and len(rows) > platforms:
        rest = rows[platforms:]
        hidden = Tail(count=len(rest), events=sum(row.events for row in rest), runs=sum(row.runs for row in rest))
        rows = rows[:platforms]
    if os_versions is not None:
        kept = []
        for row in rows:
            if len(row.os_versions) > os_versions:
                rest = row.os_versions[os_versions:]
                row = replace(
                    row,
                    os_versions=row.os_versions[:os_versions],
                    hidden_os_versions=Tail(count=len(rest), events=sum(v.events for v in rest)),
                )
            kept.append(row)
        rows = kept
    return Platforms(
        rows=rows,
        users=result.users,
        events=result.events,
        runs=result.runs,
        succeeded=result.succeeded,
        failed=result.failed,
        hidden=Tail(
            count=result.hidden.count + hidden.count,
            events=result.hidden.events + hidden.events,
            runs=result.hidden.runs + hidden.runs,
        ),
    )
