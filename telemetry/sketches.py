"""Distinct users and sessions over a range of days, fast at any size.

DailyActor (telemetry.rollups) holds one row per app, UTC day and user or
session: exact, but a 90-day range of a busy app is millions of rows, seconds
of counting per page view. So a range is counted one of two ways:

- exactly, from DailyActor, when the range holds at most EXACT_UP_TO rows (a
  bounded read of the index tells, before anything is counted);
- otherwise by merging one HyperLogLog sketch per app and day (Apache
  DataSketches, lg_k 12: about 1.6 % relative standard error), and the
  result says it is an estimate.

Sketches are a cache of DailyActor. They are built when a read first needs
them, or ahead of it by `manage.py refresh_sketches`. Each remembers how many
events its day had (from the hourly rollups) when it was built, and a read
rebuilds the days whose count has changed since (late events). Deletions
(retention, erasure, dropped partitions, rebuilds) delete the sketches of the
days they touch. One leniency keeps a busy current day from being rebuilt on
every page view: a sketch younger than MAX_AGE is used as it is, so estimates
may miss the newest MAX_AGE of new users and sessions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

import datasketches
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from telemetry.models import DailyActor, DailySketch, HourlyRollup

UTC = dt_timezone.utc
KINDS = ("u", "s")  # users, sessions
LG_K = 12  # 2^12 registers: 1.6 % error in about 2 KB per app and day
HLL_TYPE = datasketches.tgt_hll_type.HLL_4
# Ranges holding at most this many DailyActor rows are counted exactly (milliseconds).
EXACT_UP_TO = 20_000
MAX_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class Distinct:
    count: int
    estimated: bool = False  # True when merged from sketches rather than counted


Span = tuple[date, date]  # first and last UTC day, both included


def count_distinct(
    app_ids: Sequence[int], *, spans: Sequence[Span], kinds: Sequence[str] = KINDS, now: datetime | None = None
) -> dict[str, list[Distinct]]:
    """Distinct users and/or sessions of the apps, together, in each span of days:
    {kind: [Distinct per span]}."""
    first, last = min(span[0] for span in spans), max(span[1] for span in spans)
    actors = _actors(app_ids, kinds, first, last)
    if _at_most(actors, EXACT_UP_TO):
        counts = actors.aggregate(**{
            f"{kind}{i}": Count("actor", distinct=True, filter=Q(kind=kind, day__gte=a, day__lte=b))
            for kind in kinds
            for i, (a, b) in enumerate(spans)
        })  # fmt: skip
        return {kind: [Distinct(counts[f"{kind}{i}"]) for i in range(len(spans))] for kind in kinds}
    sketches = fresh_sketches(app_ids, kinds=kinds, first=first, last=last, now=now)
    return {
        kind: [_merge(s for s in sketches if s.kind == kind and a <= s.day <= b) for a, b in spans] for kind in kinds
    }


def count_distinct_per_app(
    app_ids: Sequence[int], *, kind: str, span: Span, now: datetime | None = None
) -> dict[int, Distinct]:
    """Distinct users or sessions of each app in the span of days; apps without any are left out."""
    actors = _actors(app_ids, [kind], *span)
    if _at_most(actors, EXACT_UP_TO):
        grouped = actors.values("app_id").annotate(n=Count("actor", distinct=True)).values_list("app_id", "n")
        return {app_id: Distinct(n) for app_id, n in grouped}
    by_app = defaultdict(list)
    for sketch in fresh_sketches(app_ids, kinds=[kind], first=span[0], last=span[1], now=now):
        by_app[sketch.app_id].append(sketch)
    return {app_id: _merge(sketches) for app_id, sketches in by_app.items()}


def _actors(app_ids: Sequence[int], kinds: Sequence[str], first: date, last: date):
    # One range of the actor_once_per_day index (app, kind, day, actor) per app and kind.
    return DailyActor.objects.filter(app_id__in=list(app_ids), kind__in=list(kinds), day__gte=first, day__lte=last)


def _at_most(queryset, limit: int) -> bool:
    """Whether the queryset has at most `limit` rows, reading no more than limit + 1 of them."""
    # "day" is in the actors index, so PostgreSQL can count from the index alone.
    return queryset.values("day")[: limit + 1].count() <= limit


def _merge(sketches: Iterable[DailySketch]) -> Distinct:
    union = datasketches.hll_union(LG_K)
    for sketch in sketches:
        union.update(datasketches.hll_sketch.deserialize(bytes(sketch.sketch)))
    return Distinct(round(union.get_estimate()), estimated=True)


# --- Building and keeping sketches --------------------------------------------------------


def fresh_sketches(
    app_ids: Sequence[int], *, kinds: Sequence[str] = KINDS, first: date, last: date, now: datetime | None = None
) -> list[DailySketch]:
    """The sketches of every app, kind and day with events in [first, last],
    building the missing and stale ones (one actors query per app and kind that needs any)."""
    now = now or timezone.now()
    usable, stale = _split(app_ids, kinds=kinds, first=first, last=last, now=now)
    for (app_id, kind), days in sorted(stale.items()):
        usable.extend(_build(app_id, kind=kind, day_events=days, now=now))
    return usable


def _split(
    app_ids: Sequence[int], *, kinds: Sequence[str], first: date, last: date, now: datetime
) -> tuple[list[DailySketch], dict[tuple[int, str], dict[date, int]]]:
    """The usable stored sketches, and per app and kind the days to (re)build with their event counts."""
    day_events = _day_events(app_ids, first, last)
    stored = {
        (sketch.app_id, sketch.kind, sketch.day): sketch
        for sketch in DailySketch.objects.filter(
            app_id__in=list(app_ids), kind__in=list(kinds), day__gte=first, day__lte=last
        )
    }
    usable, stale = [], defaultdict(dict)
    for (app_id, day), events in day_events.items():
        for kind in kinds:
            sketch = stored.get((app_id, kind, day))
            if sketch is not None and (sketch.events == events or sketch.built_at > now - MAX_AGE):
                usable.append(sketch)
            else:
                stale[(app_id, kind)][day] = events
    return usable, stale


def _day_events(app_ids: Sequence[int], first: date, last: date) -> dict[tuple[int, date], int]:
    """Stored events per app and UTC day, from the hourly rollups (days without any left out)."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=1)
    rows = (
        HourlyRollup.objects.filter(app_id__in=list(app_ids), dimension="total", hour__gte=start, hour__lt=end)
        .annotate(day=TruncDate("hour", tzinfo=UTC))
        .values("app_id", "day")
        .annotate(n=Sum("events"))
        .filter(n__gt=0)
        .values_list("app_id", "day", "n")
    )
    return {(app_id, day): n for app_id, day, n in rows}


def _build(app_id: int, *, kind: str, day_events: dict[date, int], now: datetime) -> list[DailySketch]:
    """Build and store the app's sketches of these days. `day_events` are the
    days' event counts read before the actors, so a sketch can only look
    older than it is (and be rebuilt), never newer."""
    actors = (
        DailyActor.objects.filter(app_id=app_id, kind=kind, day__in=sorted(day_events))
        .values_list("day", "actor")
        .order_by()
    )
    hll, counts = {}, defaultdict(int)
    for day, actor in actors.iterator(chunk_size=10_000):
        if day not in hll:
            hll[day] = datasketches.hll_sketch(LG_K, HLL_TYPE)
        hll[day].update(actor)
        counts[day] += 1
    sketches = [
        DailySketch(
            app_id=app_id, day=day, kind=kind, actors=counts[day], events=events, built_at=now,
            sketch=(hll.get(day) or datasketches.hll_sketch(LG_K, HLL_TYPE)).serialize_compact(),
        )
        for day, events in sorted(day_events.items())
    ]
    DailySketch.objects.bulk_create(
        sketches,
        update_conflicts=True,
        unique_fields=["app", "kind", "day"],
        update_fields=["actors", "events", "sketch", "built_at"],
    )
    return sketches


def forget(app_id: int, days: Iterable[date] | None = None) -> None:
    """Drop the app's sketches of these days (all of them when None): their events changed."""
    sketches = DailySketch.objects.filter(app_id=app_id)
    if days is not None:
        sketches = sketches.filter(day__in=sorted(set(days)))
    sketches.delete()


def refresh(app_id: int, *, now: datetime | None = None) -> int:
    """Build every missing or stale sketch of the app (the scheduler's job,
    so that page views rarely build any); returns how many were built."""
    now = now or timezone.now()
    bounds = HourlyRollup.objects.filter(app_id=app_id, dimension="total").aggregate(first=Min("hour"), last=Max("hour"))
    if bounds["first"] is None:
        return 0
    first, last = bounds["first"].astimezone(UTC).date(), bounds["last"].astimezone(UTC).date()
    _, stale = _split([app_id], kinds=KINDS, first=first, last=last, now=now)
    return sum(len(_build(app_id, kind=kind, day_events=days, now=now)) for (_, kind), days in sorted(stale.items()))
