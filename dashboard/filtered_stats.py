"""The analytics pages' figures under the filter bar's filters (version, OS, arch, CI).

With no filter in effect the pages read dashboard.stats, whose fast paths
(plain rollups, RangeFigures, cached closed days) stay as they are. With a
filter, the same figures, with the same types, come from here:

- events, the time series and the version / OS / arch / CI breakdowns from
  the `segment` dimension; event type and category from `seg_type`;
- command runs, outcomes and the top commands from `cmd`, duration
  percentiles from `cmd_duration` (telemetry.rollups, segmented dimensions);
- users from UserDay, exactly: distinct user ids with at least one matching
  event on the UTC days the range touches, as the plain pages count them;
- sessions have no per-day record with version and platform, so they are
  counted from the matching raw events themselves, over the same whole UTC
  days, when those days hold at most SESSION_SCAN_LIMIT events of any kind
  (the read is bounded by the (app, timestamp) index range, not by how many
  events match); past that they are not counted (None) and the page says so.

Segmented values keep each part's first characters only
(telemetry.rollups.PART_LENGTHS: 64 for a version, OS or arch, 128 for a
command), so a longer value is shown cut. Times are UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from django.db.models import Count, Q, Sum

from dashboard import segments, stats
from dashboard.filters import Filters
from organizations.models import App
from telemetry import rollups
from telemetry.models import Event
from telemetry.periods import DAY, start_of_day

# Sessions under filters are counted from raw events when the days counted hold
# at most this many events: a read of at most this many index entries and rows.
SESSION_SCAN_LIMIT = 20_000

# Breakdown dimension (dashboard.stats.BREAKDOWNS) -> (segmented dimension, part).
_BREAKDOWN_PARTS = {
    "event_type": ("seg_type", "type"),
    "category": ("seg_type", "category"),
    "os": ("segment", "os"),
    "arch": ("segment", "arch"),
    "service_version": ("segment", "version"),
    "ci": ("segment", "ci"),
}


class Reads:
    """The segmented counts one page's filtered figures are computed from, each
    read once: the summary, the time series and the breakdowns share the
    `segment` rows, the command outcomes and the top commands the `cmd` rows.
    A read per bucket also answers the same read over the whole period."""

    def __init__(self, app_ids: Sequence[int], filters: Filters):
        self.app_ids = list(app_ids)
        self.filters = filters
        self._rows: dict[tuple, list[segments.Row]] = {}

    def counts(self, period: stats.Period, dimension: str, *, per_bucket: bool = False) -> list[segments.Row]:
        key = (period.start, period.end, period.daily, dimension)
        if not per_bucket and (key, True) in self._rows and (key, False) not in self._rows:
            self._rows[(key, False)] = _merged(self._rows[(key, True)])
        if (key, per_bucket) not in self._rows:
            self._rows[(key, per_bucket)] = segments.counts(
                self.app_ids, period, dimension, filters=self.filters, per_bucket=per_bucket
            )
        return self._rows[(key, per_bucket)]


def _merged(rows: Sequence[segments.Row]) -> list[segments.Row]:
    """Rows per bucket summed per value."""
    sums: dict[tuple, list[int]] = {}
    parts: dict[tuple, dict[str, str]] = {}
    for row in rows:
        key = tuple(row.parts.items())
        parts[key] = row.parts
        numbers = sums.setdefault(key, [0] * len(segments.FIELDS))
        for i, name in enumerate(segments.FIELDS):
            numbers[i] += getattr(row, name)
    return [segments.Row(parts[key], *numbers) for key, numbers in sums.items()]


def _reads(app_ids: Sequence[int], filters: Filters, reads: Reads | None) -> Reads:
    if reads is None:
        return Reads(app_ids, filters)
    if reads.filters != filters or sorted(reads.app_ids) != sorted(app_ids):
        raise ValueError("these reads are of other apps or filters")
    return reads


def event_total(app_ids: Sequence[int], *, period: stats.Period, filters: Filters, reads: Reads | None = None) -> int:
    """Matching events in the period."""
    return sum(row.events for row in _reads(app_ids, filters, reads).counts(period, "segment"))


# --- Totals -----------------------------------------------------------------------------


def summary(
    app_ids: Sequence[int],
    *,
    period: stats.Period,
    filters: Filters,
    session_limit: int | None = None,
    reads: Reads | None = None,
) -> stats.Summary:
    """Matching events, distinct users and (when the days hold few enough events,
    `session_limit`, SESSION_SCAN_LIMIT by default) distinct sessions in the
    period and in the one before it. Users and sessions are
    counted over the whole UTC days each period touches, as stats.summary does,
    and exactly."""
    previous = period.previous
    now_days, before_days = stats._days(period), stats._days(previous)
    reads = _reads(app_ids, filters, reads)
    # Per bucket: the same read as the time series', made once for both.
    events_now = sum(row.events for row in reads.counts(period, "segment", per_bucket=True))
    events_before = event_total(app_ids, period=previous, filters=filters, reads=reads)
    users = distinct_users(app_ids, spans=[now_days, before_days], filters=filters)
    return stats.Summary(
        events=stats.Change(events_now, events_before),
        users=stats.Change(*users),
        sessions=_sessions(app_ids, period, filters, SESSION_SCAN_LIMIT if session_limit is None else session_limit),
    )


def distinct_users(app_ids: Sequence[int], *, spans: Sequence[tuple[date, date]], filters: Filters) -> list[int]:
    """Distinct user ids with a matching event in each span of UTC days (both ends
    included), from UserDay, in one query."""
    first, last = min(span[0] for span in spans), max(span[1] for span in spans)
    rows = segments.user_days(app_ids, first, last, filters=filters)
    counts = rows.aggregate(
        **{
            f"span{i}": Count("user_id", distinct=True, filter=Q(day__gte=start, day__lte=end))
            for i, (start, end) in enumerate(spans)
        }
    )
    return [counts[f"span{i}"] for i in range(len(spans))]


def _sessions(app_ids: Sequence[int], period: stats.Period, filters: Filters, limit: int) -> stats.Change | None:
    """Distinct non-empty session ids of the matching events on the whole UTC days
    of the period and of the one before, or None when those days hold more than
    `limit` events of any kind (the rows the count would read)."""
    now_days, before_days = stats._days(period), stats._days(period.previous)
    first, last = before_days[0], now_days[1]
    if _stored_events(app_ids, period, first, last) > limit:
        return None
    now_start, now_end = start_of_day(now_days[0]), start_of_day(now_days[1]) + DAY
    before_start, before_end = start_of_day(before_days[0]), start_of_day(before_days[1]) + DAY
    counts = (
        Event.objects.filter(app_id__in=list(app_ids), timestamp__gte=before_start, timestamp__lt=now_end)
        .filter(filters.q())
        .exclude(session_id="")
        .aggregate(
            now=Count("session_id", distinct=True, filter=Q(timestamp__gte=now_start, timestamp__lt=now_end)),
            before=Count("session_id", distinct=True, filter=Q(timestamp__gte=before_start, timestamp__lt=before_end)),
        )
    )
    return stats.Change(counts["now"], counts["before"])


def _stored_events(app_ids: Sequence[int], period: stats.Period, first: date, last: date) -> int:
    """Events of any kind on the UTC days [first, last], which the period's figures
    (stats.with_daily_rollups) hold per day when it was prepared; else from the rollups."""
    figures = stats._figures(app_ids, period)
    if figures is not None:
        return sum(n for (_, day), n in figures.day_events.items() if first <= day <= last)
    whole = stats.Period(start=start_of_day(first), end=start_of_day(last) + DAY, daily=period.daily)
    return stats._total(stats._rollups(app_ids, whole, "total"))["events"]


# --- Events over time and breakdowns -----------------------------------------------------


def events_over_time(
    app_ids: Sequence[int], *, period: stats.Period, filters: Filters, reads: Reads | None = None
) -> list[stats.Bucket]:
    """Matching events per UTC hour or day across the period; empty buckets are zero."""
    counts: dict = defaultdict(int)
    for row in _reads(app_ids, filters, reads).counts(period, "segment", per_bucket=True):
        counts[row.bucket] += row.events
    return [stats.Bucket(start=start, count=counts.get(start, 0)) for start in period.bucket_starts()]


def breakdowns(
    app_ids: Sequence[int],
    *,
    period: stats.Period,
    filters: Filters,
    dimensions: Sequence[str] = tuple(stats.BREAKDOWNS),
    limit: int = 8,
    reads: Reads | None = None,
) -> list[stats.Breakdown]:
    """The most frequent values of each dimension among the matching events (one
    query per segmented dimension needed)."""
    unknown = set(dimensions) - set(stats.BREAKDOWNS)
    if unknown:
        raise ValueError(f"unknown dimension {sorted(unknown)[0]!r}")
    needed = sorted({_BREAKDOWN_PARTS[dimension][0] for dimension in dimensions})
    reads = _reads(app_ids, filters, reads)
    rows = {name: reads.counts(period, name) for name in needed}
    total = sum(row.events for row in rows[needed[0]]) if needed else 0
    result = []
    for dimension in dimensions:
        source, part = _BREAKDOWN_PARTS[dimension]
        counts: dict[str, int] = defaultdict(int)
        for row in rows[source]:
            counts[row.parts[part]] += row.events
        result.append(stats.breakdown_of(dimension, list(counts.items()), total=total, limit=limit))
    return result


# --- Commands -----------------------------------------------------------------------------


def command_stats(
    app_ids: Sequence[int], *, period: stats.Period, filters: Filters, reads: Reads | None = None
) -> stats.CommandStats:
    """Runs, outcomes and duration percentiles of the matching command events."""
    reads = _reads(app_ids, filters, reads)
    runs = reads.counts(period, "cmd")
    succeeded = sum(row.succeeded for row in runs)
    failed = sum(row.failed for row in runs)
    timed = sum(row.timed for row in runs)
    percentiles = [None] * len(stats.PERCENTILES)
    if timed:
        histogram = reads.counts(period, "cmd_duration")
        percentiles = stats.percentiles_of([(int(row.parts["bucket"]), row.events) for row in histogram])
    return stats.CommandStats(
        runs=sum(row.events for row in runs),
        with_outcome=succeeded + failed,
        succeeded=succeeded,
        timed=timed,
        p50_ms=percentiles[0],
        p90_ms=percentiles[1],
        p99_ms=percentiles[2],
    )


def top_commands(
    app_ids: Sequence[int], *, period: stats.Period, filters: Filters, limit: int = 10, reads: Reads | None = None
) -> list[stats.CommandRow]:
    """The most run commands among the matching command events."""
    grouped: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(segments.FIELDS, 0))
    for row in _reads(app_ids, filters, reads).counts(period, "cmd"):
        sums = grouped[row.parts["command"]]
        for name in segments.FIELDS:
            sums[name] += getattr(row, name)
    return stats.command_rows(dict(grouped), limit=limit)


# --- The organization's apps ---------------------------------------------------------------


def app_activity(apps: Sequence[App], *, period: stats.Period, filters: Filters) -> list[stats.AppActivity]:
    """For each app, its matching events and users in the period, and its latest
    event of any kind (unfiltered: the filters would make it a scan)."""
    app_ids = [app.pk for app in apps]
    events: dict[int, int] = defaultdict(int)
    for part in stats._rollups(app_ids, period, "segment"):
        rows = segments.matching(part, "segment", filters).values("app_id", "value").annotate(n=Sum("events"))
        for app_id, value, n in rows.order_by().values_list("app_id", "value", "n"):
            if filters.matches(rollups.segment_of(rollups.split("segment", value))):
                events[app_id] += n
    first, last = stats._days(period)
    users = dict(
        segments.user_days(app_ids, first, last, filters=filters)
        .values("app_id")
        .annotate(n=Count("user_id", distinct=True))
        .order_by()
        .values_list("app_id", "n")
    )
    latest = stats.last_event_per_app(app_ids)
    return [
        stats.AppActivity(
            app=app,
            events=events.get(app.pk, 0),
            users=users.get(app.pk, 0),
            users_estimated=False,
            last_event_at=latest.get(app.pk),
        )
        for app in apps
    ]
