"""Distinct users and sessions over a range of days, fast at any size.

DailyActor (telemetry.storage writes it) holds one row per app, UTC day and user or
session: exact, but a 90-day range of a busy app is millions of rows, seconds
of counting per page view. So a range is counted one of two ways:

- exactly, from DailyActor, when the range holds at most EXACT_UP_TO rows:
  known before anything is counted when the range has no more events than
  that (an event is at most one user-day and one session-day), else from
  the sketches' exact per-day counts;
- otherwise by merging one HyperLogLog sketch per app and day (Apache
  DataSketches, lg_k 12: about 1.6 % relative standard error), and the
  result says it is an estimate.

Sketches are a cache of DailyActor. They are built when a read first needs
them, or ahead of it by `manage.py refresh_rollups`. Each remembers how many
events its day had (from the hourly rollups) when it was built, and a read
rebuilds the days whose count has changed since (late events). Deletions
(retention, erasure, dropped partitions, rebuilds) delete the sketches of the
days they touch. One leniency keeps a busy current day from being rebuilt on
every page view: a sketch younger than MAX_AGE is used as it is, so estimates
may miss the newest MAX_AGE of new users and sessions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

import datasketches
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from telemetry import daily, storage
from telemetry.models import DailyActor, DailySketch

KINDS = ("u", "s")  # users, sessions
LG_K = 12  # 2^12 registers: 1.6 % error in about 2 KB per app and day
HLL_TYPE = datasketches.tgt_hll_type.HLL_4
# Ranges of at most this many user- or session-days are counted exactly (milliseconds).
EXACT_UP_TO = 5_000
MAX_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class Distinct:
    count: int
    estimated: bool = False  # True when merged from sketches rather than counted


Span = tuple[date, date]  # first and last UTC day, both included


class Sketch(NamedTuple):
    """A DailySketch row as reads use it (plain tuples: a range holds hundreds of them)."""

    app_id: int
    kind: str
    day: date
    actors: int
    events: int
    built_at: datetime
    sketch: bytes


DayEvents = dict[tuple[int, date], int]  # stored events per (app, UTC day), days without any left out


@dataclass(frozen=True)
class Settled:
    """Closed days whose sketches stay as they are while their version does (the
    caller knows: dashboard.stats.rollup_version changes with any change of
    these apps' events on those days), in runs of days with a version each.
    Reads merge each range's sketches of a run once and keep the merge in
    Django's cache under that run's version."""

    runs: tuple[tuple[date, date, str], ...]  # (first day, last day, version), apart from each other

    def clip(self, span: Span) -> list[tuple[Span, str]]:
        """The parts of the span in each run, with the run's version."""
        parts = []
        for first, last, version in self.runs:
            part = (max(span[0], first), min(span[1], last))
            if part[0] <= part[1]:
                parts.append((part, version))
        return parts

    def covers(self, span: Span) -> bool:
        return sum((part[1] - part[0]).days + 1 for part, _ in self.clip(span)) == (span[1] - span[0]).days + 1

    def holds(self, day: date) -> bool:
        return any(first <= day <= last for first, last, _ in self.runs)


class Merged(NamedTuple):
    """Some sketches merged: the sum of their exact daily counts, and their union."""

    actors: int
    sketch: bytes


# A merge is never wrong while its key's version stands; this only bounds the cache.
MERGED_TIMEOUT = 24 * 3600


def count_distinct(
    app_ids: Sequence[int], *, spans: Sequence[Span], kinds: Sequence[str] = KINDS, now: datetime | None = None,
    day_events: DayEvents | None = None, settled: Settled | None = None,
) -> dict[str, list[Distinct]]:
    """Distinct users and/or sessions of the apps, together, in each span of days:
    {kind: [Distinct per span]}. `day_events` saves a query when the caller
    has the apps' events per day of all the spans' days already; with
    `settled`, the sketches of those days are merged once per version."""
    app_ids = list(app_ids)
    first, last = min(span[0] for span in spans), max(span[1] for span in spans)
    if day_events is None:
        day_events = daily.events_per_day(app_ids, first, last)
    wanted = [(kind, span) for kind in kinds for span in spans]
    if sum(day_events.values()) <= EXACT_UP_TO:  # an event is at most one user-day and one session-day
        return _regroup(kinds, spans, _exact(app_ids, wanted))
    group = tuple(sorted(set(app_ids)))
    merged: dict[tuple[str, Span], list[Merged]] = {}
    if settled is not None:
        parts = {(kind, span): [(group, kind, part, version) for part, version in settled.clip(span)] for kind, span in wanted}
        found = _settled_merges([item for items in parts.values() for item in items], day_events=day_events, now=now)
        merged = {key: [found[item] for item in items] for key, items in parts.items()}
    sketches = _other_sketches(app_ids, kinds, day_events, settled, now=now)
    picked = {
        (kind, span): [sketch for sketch in sketches if sketch.kind == kind and span[0] <= sketch.day <= span[1]]
        for kind, span in wanted
    }
    actors = {
        key: sum(row.actors for row in rows) + sum(merge.actors for merge in merged.get(key, ()))
        for key, rows in picked.items()
    }
    small = [key for key in picked if actors[key] <= EXACT_UP_TO]
    result = {key: _merge(rows, merged.get(key, ())) for key, rows in picked.items() if key not in small}
    if settled is None:
        result.update(_exact(app_ids, small))
        return _regroup(kinds, spans, result)
    # Exact counts of spans of settled days only are kept too (say the period before a long range).
    keys = {
        key: _cache_key("distinct", group, *key, *(version for _, version in settled.clip(key[1])))
        for key in small
        if settled.covers(key[1])
    }
    found = cache.get_many(list(keys.values()))
    result.update((key, Distinct(found[name])) for key, name in keys.items() if name in found)
    counted = _exact(app_ids, [key for key in small if key not in result])
    result.update(counted)
    cache.set_many({keys[key]: distinct.count for key, distinct in counted.items() if key in keys}, MERGED_TIMEOUT)
    return _regroup(kinds, spans, result)


def _cache_key(kind: str, *parts) -> str:
    return f"sketches:{kind}:" + hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _other_sketches(
    app_ids: Sequence[int], kinds: Sequence[str], day_events: DayEvents, settled: Settled | None, *, now: datetime | None
) -> list[Sketch]:
    """The fresh sketches of the days with events that are not settled (all of them without `settled`)."""
    if settled is not None:
        day_events = {key: n for key, n in day_events.items() if not settled.holds(key[1])}
    if not day_events:
        return []
    days = [day for _, day in day_events]
    return fresh_sketches(app_ids, kinds=kinds, first=min(days), last=max(days), now=now, day_events=day_events)


def _settled_merges(
    wanted: list[tuple[tuple[int, ...], str, Span, str]], *, day_events: DayEvents, now: datetime | None
) -> dict[tuple[tuple[int, ...], str, Span, str], Merged]:
    """For each (apps, kind, span of settled days, their version), the merge of
    those sketches: from the cache, or merged from fresh sketches read in one
    go (and cached when every sketch matches its day's events, none used as young)."""
    keys = {item: _cache_key("merged", *item) for item in wanted}
    found = cache.get_many(list(keys.values()))
    result = {item: Merged(*found[key]) for item, key in keys.items() if key in found}
    missing = [item for item in wanted if item not in result]
    if not missing:
        return result
    app_ids = sorted({app_id for group, *_ in missing for app_id in group})
    first, last = min(span[0] for _, _, span, _ in missing), max(span[1] for _, _, span, _ in missing)
    days = {
        (app_id, day): n for (app_id, day), n in day_events.items()
        if app_id in app_ids and first <= day <= last and any(span[0] <= day <= span[1] for _, _, span, _ in missing)
    }  # fmt: skip
    kinds = sorted({kind for _, kind, _, _ in missing})
    sketches = []
    if days:
        first, last = min(day for _, day in days), max(day for _, day in days)
        sketches = fresh_sketches(app_ids, kinds=kinds, first=first, last=last, now=now, day_events=days)
    made, exact = {}, []
    for item in missing:
        group, kind, span, _ = item
        rows = [
            sketch for sketch in sketches
            if sketch.kind == kind and sketch.app_id in group and span[0] <= sketch.day <= span[1]
        ]  # fmt: skip
        made[item] = Merged(sum(row.actors for row in rows), _union(rows).get_result(HLL_TYPE).serialize_compact())
        if all(row.events == days[(row.app_id, row.day)] for row in rows):
            exact.append(item)
    cache.set_many({keys[item]: tuple(made[item]) for item in exact}, MERGED_TIMEOUT)
    return {**result, **made}


def _regroup(kinds, spans, counts: dict[tuple[str, Span], Distinct]) -> dict[str, list[Distinct]]:
    return {kind: [counts[(kind, span)] for span in spans] for kind in kinds}


def _exact(app_ids: list[int], wanted: list[tuple[str, Span]]) -> dict[tuple[str, Span], Distinct]:
    """Exact distinct counts from DailyActor for each (kind, span), in one query."""
    if not wanted:
        return {}
    first, last = min(span[0] for _, span in wanted), max(span[1] for _, span in wanted)
    actors = DailyActor.objects.filter(
        app_id__in=app_ids, kind__in=sorted({kind for kind, _ in wanted}), day__gte=first, day__lte=last
    )
    counts = actors.aggregate(**{
        f"n{i}": Count("actor", distinct=True, filter=Q(kind=kind, day__gte=span[0], day__lte=span[1]))
        for i, (kind, span) in enumerate(wanted)
    })  # fmt: skip
    return {key: Distinct(counts[f"n{i}"]) for i, key in enumerate(wanted)}


def count_distinct_per_app(
    app_ids: Sequence[int], *, kind: str, span: Span, now: datetime | None = None, day_events: DayEvents | None = None,
    settled: Settled | None = None,
) -> dict[int, Distinct]:
    """Distinct users or sessions of each app in the span of days; apps without any are left out.
    With `settled`, the sketches of those days are merged once per version."""
    if day_events is None:
        day_events = daily.events_per_day(app_ids, *span)
    events = defaultdict(int)
    for (app_id, _), n in day_events.items():
        events[app_id] += n
    small = {app_id for app_id, n in events.items() if n <= EXACT_UP_TO}
    large = sorted(set(events) - small)
    by_app: dict[int, list[Sketch]] = defaultdict(list)
    merged: dict[int, list[Merged]] = {}
    if large:
        large_days = {key: n for key, n in day_events.items() if key[0] in large}
        if settled is not None:
            parts = {app_id: [((app_id,), kind, part, version) for part, version in settled.clip(span)] for app_id in large}
            found = _settled_merges([item for items in parts.values() for item in items], day_events=large_days, now=now)
            merged = {app_id: [found[item] for item in items] for app_id, items in parts.items()}
        for sketch in _other_sketches(large, [kind], large_days, settled, now=now):
            by_app[sketch.app_id].append(sketch)
    actors = {
        app_id: sum(row.actors for row in by_app[app_id]) + sum(merge.actors for merge in merged.get(app_id, ()))
        for app_id in large
    }
    small |= {app_id for app_id, n in actors.items() if n <= EXACT_UP_TO}
    result = {app_id: _merge(by_app[app_id], merged.get(app_id, ())) for app_id in large if app_id not in small}
    if small:
        grouped = (
            DailyActor.objects.filter(app_id__in=sorted(small), kind=kind, day__gte=span[0], day__lte=span[1])
            .values("app_id")
            .annotate(n=Count("actor", distinct=True))
            .values_list("app_id", "n")
        )
        result.update((app_id, Distinct(n)) for app_id, n in grouped)
    return result


def _merge(sketches: Iterable[Sketch], merged: Iterable[Merged] = ()) -> Distinct:
    """The distinct count estimated from these sketches and merges of others."""
    union = _union(sketches, merged)
    return Distinct(round(union.get_estimate()), estimated=True)


def _union(sketches: Iterable[Sketch], merged: Iterable[Merged] = ()) -> datasketches.hll_union:
    union = datasketches.hll_union(LG_K)
    for merge in merged:  # the same registers as merging its sketches one by one
        union.update(datasketches.hll_sketch.deserialize(merge.sketch))
    for sketch in sketches:
        union.update(datasketches.hll_sketch.deserialize(bytes(sketch.sketch)))
    return union


# --- Building and keeping sketches --------------------------------------------------------


def fresh_sketches(
    app_ids: Sequence[int], *, kinds: Sequence[str] = KINDS, first: date, last: date, now: datetime | None = None,
    day_events: DayEvents | None = None,
) -> list[Sketch]:
    """The sketches of every app, kind and day with events in [first, last],
    building the missing and stale ones (one actors query per app and kind that needs any)."""
    now = now or timezone.now()
    usable, stale = _split(app_ids, kinds=kinds, first=first, last=last, now=now, day_events=day_events)
    for (app_id, kind), days in sorted(stale.items()):
        usable.extend(_build(app_id, kind=kind, day_events=days, now=now))
    return usable


def _split(
    app_ids: Sequence[int], *, kinds: Sequence[str], first: date, last: date, now: datetime,
    day_events: DayEvents | None = None,
) -> tuple[list[Sketch], dict[tuple[int, str], dict[date, int]]]:
    """The usable stored sketches, and per app and kind the days to (re)build with their event counts
    (`day_events`: the apps' events per day in the range, when the caller has read them already)."""
    if day_events is None:
        day_events = daily.events_per_day(app_ids, first, last)
    rows = DailySketch.objects.filter(
        app_id__in=list(app_ids), kind__in=list(kinds), day__gte=first, day__lte=last
    ).values_list(*Sketch._fields)
    stored = {(sketch.app_id, sketch.kind, sketch.day): sketch for sketch in map(Sketch._make, rows)}
    usable, stale = [], defaultdict(dict)
    for (app_id, day), events in day_events.items():
        for kind in kinds:
            sketch = stored.get((app_id, kind, day))
            if sketch is not None and (sketch.events == events or sketch.built_at > now - MAX_AGE):
                usable.append(sketch)
            else:
                stale[(app_id, kind)][day] = events
    return usable, stale


def _build(app_id: int, *, kind: str, day_events: dict[date, int], now: datetime) -> list[Sketch]:
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
        Sketch(
            app_id=app_id, kind=kind, day=day, actors=counts[day], events=events, built_at=now,
            sketch=(hll.get(day) or datasketches.hll_sketch(LG_K, HLL_TYPE)).serialize_compact(),
        )
        for day, events in sorted(day_events.items())
    ]
    storage.save_sketches(sketches)
    return sketches


def refresh(app_id: int, *, now: datetime | None = None) -> int:
    """Build every missing or stale sketch of the app (the scheduler's job,
    so that page views rarely build any); returns how many were built."""
    now = now or timezone.now()
    stored = daily.stored_days(app_id)
    if stored is None:
        return 0
    _, stale = _split([app_id], kinds=KINDS, first=stored[0], last=stored[1], now=now)
    return sum(len(_build(app_id, kind=kind, day_events=days, now=now)) for (_, kind), days in sorted(stale.items()))
