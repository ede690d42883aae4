"""Property summaries: which exist, which are fresh, and building them from raw events.

Counting the keys and values of events' data at read time means parsing
every event of the range: seconds at millions of events. So the Properties
page reads blocks instead: the summary of one app's events of one UTC day
(closed days) or UTC hour (the current day, and the 24-hour range), built
from raw events (telemetry.properties says what a block holds) and written
by telemetry.storage. docs/insights.md, Properties, has the reasons.

A block is a cache of raw events, like the daily rollups (telemetry.daily):

- it records how many events its span had when built, and it is **fresh**
  while the hourly counts (HourlyCounts, exact at every moment) still give
  that number; a late event makes it stale;
- every deletion of events (retention, erasure, dropped partitions, deleted
  apps, rebuilds) deletes the blocks of the days it touches, in the same
  transaction (telemetry.storage), so a block never counts a deleted event;
- the `properties` background job (refresh_apps) builds the blocks of
  closed days and of the last 48 hours' closed hours that are missing or
  stale, and drops hour blocks older than that;
- a page (cover) uses the fresh blocks of its range, builds what is missing
  or stale itself within a budget of events, and uses a stale block that
  is younger than its grace period (the current hour's is rebuilt at most
  once a minute) while saying how many events it leaves out. Whatever is
  still missing is left out and counted, never guessed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import orjson
from django.db.models import Sum, TextField
from django.db.models.functions import Cast

from telemetry import daily, lifecycle, rollups, storage
from telemetry.models import Event, HourlyCounts, PropertyBlock
from telemetry.periods import DAY, HOUR, UTC, start_of_day
from telemetry.properties import Caps, Summary, summarise

logger = logging.getLogger(__name__)

SPAN_LENGTH = {PropertyBlock.DAY: DAY, PropertyBlock.HOUR: HOUR}
# A stale block younger than this is used as it is (the page says how many
# events it leaves out): the current hour's block is rebuilt at most once a
# minute, a day's (costly) at most every 10 minutes by a page.
GRACE = {PropertyBlock.HOUR: timedelta(seconds=60), PropertyBlock.DAY: timedelta(minutes=10)}
# Events a page view may summarise itself; beyond, the background job does it.
READ_BUDGET = 50_000
# Events read from the database per query while summarising.
READ_PAGE = 2000
# Hour blocks are kept this long: the 24-hour range and today read them.
KEEP_HOURS = timedelta(hours=48)


# --- Building one block --------------------------------------------------------------


def events_reader(app_id: int, start: datetime, end: datetime) -> Callable[[], Iterator]:
    """A function yielding (event type, segment, parsed data) of the app's events
    in [start, end), oldest first, a page of READ_PAGE events at a time, each
    page one short query on the (app, timestamp) index (keyset pagination, as
    exports read): no cursor stays open, so it works through PgBouncer in
    transaction mode too, and memory stays bounded whatever the span holds."""
    events = (
        Event.objects.filter(app_id=app_id, timestamp__gte=start, timestamp__lt=end)
        # The stored JSON text, parsed here once: no per-row decoding by the ORM.
        .annotate(document=Cast("data", TextField()))
    )

    def read() -> Iterator:
        fields = ("event_type", "service_version", "os", "arch", "ci", "document")
        for page in lifecycle.keyset_pages(events, fields=fields, page_size=READ_PAGE):
            for _, _, event_type, version, os, arch, ci, document in page:
                yield event_type, (version, os, arch, rollups.ci_text(ci)), orjson.loads(document)

    return read


def summarise_span(app_id: int, span: str, start: datetime, *, caps: Caps | None = None) -> Summary:
    """The summary of the app's events in the span starting at `start`, from raw events."""
    return summarise(events_reader(app_id, start, start + SPAN_LENGTH[span]), caps or Caps.from_settings())


def build(app_id: int, span: str, start: datetime, *, now: datetime, caps: Caps | None = None) -> PropertyBlock | None:
    """Build (or rebuild) one block from raw events; returns it, or the one a
    concurrent build stored first (None if that one is gone already)."""
    summary = summarise_span(app_id, span, start, caps=caps)
    storage.replace_property_block(app_id, span=span, start=start, built_at=now, summary=summary)
    return PropertyBlock.objects.filter(app_id=app_id, span=span, start=start).first()


# --- What a page reads -------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """The blocks a page reads for a range, and what they leave out."""

    block_ids: tuple[int, ...]
    # Each block's bucket of the page's series: its UTC day, or hour for hourly pages.
    buckets: dict[int, datetime]
    # The day blocks among them as (id, built at, events): what their rows hold
    # never changes (a rebuilt day is a new block), so this names their figures.
    fixed: tuple[tuple[int, str, int], ...]
    expected: int  # events the range holds (the hourly counts)
    # Events in the range the blocks do not count yet: arrived after their
    # day or hour was summarised, or in spans not summarised yet.
    late: int = 0
    pending: int = 0
    pending_spans: int = 0
    folded_events: int = 0  # events of version/OS/arch/CI combinations past the cap (unfiltered figures only)
    other_type_events: int = 0  # events of event types past the cap
    built: int = 0  # blocks this read built

    @property
    def missing(self) -> int:
        return self.late + self.pending


@dataclass
class _Need:
    span: str
    start: datetime
    events: int  # what the hourly counts say now
    block: PropertyBlock | None  # the block there, stale or missing (None)


def spans(start: datetime, end: datetime, *, hourly: bool, now: datetime) -> tuple[list[datetime], list[datetime]]:
    """(day starts, hour starts) that cover [start, end): whole closed UTC days
    as days (unless `hourly`), every other hour as hours."""
    start, end, now = start.astimezone(UTC), end.astimezone(UTC), now.astimezone(UTC)
    days, hours = [], []
    day = start.date()
    while start_of_day(day) < end:
        day_start = start_of_day(day)
        day_end = day_start + DAY
        if not hourly and day_start >= start and day_end <= end and day_end <= now:
            days.append(day_start)
        else:
            moment = max(day_start, start)
            while moment < min(day_end, end):
                hours.append(moment)
                moment += HOUR
        day += DAY
    return days, hours


def cover(app_id: int, start: datetime, end: datetime, *, hourly: bool, now: datetime,
          budget: int | None = None, day_events: dict[tuple[int, date], int] | None = None) -> Coverage:  # fmt: skip
    """The blocks that summarise the app's events in [start, end) (on UTC hour
    boundaries), building the missing and stale ones up to `budget` events
    (READ_BUDGET by default)."""
    # `day_events` saves a query when the caller has the app's events per
    # closed day of the range ((app, day) -> events, days without any left out).
    budget = READ_BUDGET if budget is None else budget
    day_starts, hour_starts = spans(start, end, hourly=hourly, now=now)
    per_day = day_events
    if per_day is None:
        per_day = daily.events_per_day([app_id], day_starts[0].date(), day_starts[-1].date()) if day_starts else {}
    # Hours: those asked for, and those of recent closed days (their hour blocks may stand in for the day's).
    recent = [moment for moment in day_starts if moment >= now - KEEP_HOURS - DAY]
    hour_range = [*hour_starts, *recent, *(moment + DAY - HOUR for moment in recent)]
    per_hour = _events_per_hour(app_id, min(hour_range), max(hour_range) + HOUR) if hour_range else {}
    blocks = {
        (block.span, block.start): block
        for block in PropertyBlock.objects.filter(app_id=app_id, start__gte=start, start__lt=end)
    }

    used: list[tuple[PropertyBlock, int]] = []  # (block, events the span holds now)
    needs: list[_Need] = []
    for day_start in day_starts:
        events = per_day.get((app_id, day_start.date()), 0)
        if not events:
            continue
        block = blocks.get((PropertyBlock.DAY, day_start))
        if block is not None and block.events == events:
            used.append((block, events))
            continue
        hours = [day_start + HOUR * i for i in range(24)]
        hour_blocks = [(blocks.get((PropertyBlock.HOUR, h)), per_hour.get(h, 0)) for h in hours]
        if day_start in recent and all(
            n == 0 or (b is not None and b.events == n) for b, n in hour_blocks
        ) and sum(n for _, n in hour_blocks) == events:
            used += [(b, n) for b, n in hour_blocks if n]
            continue
        needs.append(_Need(PropertyBlock.DAY, day_start, events, block))
    for hour in hour_starts:
        events = per_hour.get(hour, 0)
        if not events:
            continue
        block = blocks.get((PropertyBlock.HOUR, hour))
        if block is not None and block.events == events:
            used.append((block, events))
        else:
            needs.append(_Need(PropertyBlock.HOUR, hour, events, block))

    late = pending = pending_spans = built = 0
    to_build = []
    for need in needs:
        if _usable_stale(need, now):
            used.append((need.block, need.events))
        else:
            to_build.append(need)
    # Hours first (cheap, and the newest figures), then days, newest first.
    to_build.sort(key=lambda need: (need.span != PropertyBlock.HOUR, -need.start.timestamp()))
    spent = 0
    for need in to_build:
        if spent + need.events <= budget:
            spent += need.events
            block = build(app_id, need.span, need.start, now=now)
            built += 1
            if block is not None:
                used.append((block, need.events))
                continue
        if need.block is not None and need.block.events < need.events:
            used.append((need.block, need.events))  # old, but every event it counts is still there
        else:
            pending += need.events
            pending_spans += 1

    buckets: dict[int, datetime] = {}
    folded = other_types = 0
    for block, events in used:
        late += max(0, events - block.events)
        folded += block.folded_events
        other_types += block.other_type_events
        moment = block.start.astimezone(UTC)
        buckets[block.pk] = moment if hourly else start_of_day(moment.date())
    expected = sum(per_day.get((app_id, moment.date()), 0) for moment in day_starts)
    expected += sum(per_hour.get(hour, 0) for hour in hour_starts)
    fixed = tuple(sorted(
        (block.pk, block.built_at.isoformat(), block.events) for block, _ in used if block.span == PropertyBlock.DAY
    ))  # fmt: skip
    return Coverage(
        block_ids=tuple(sorted(buckets)), buckets=buckets, fixed=fixed, expected=expected, late=late, pending=pending,
        pending_spans=pending_spans, folded_events=folded, other_type_events=other_types, built=built,
    )  # fmt: skip


def _usable_stale(need: _Need, now: datetime) -> bool:
    """A stale block is used while young: it must count only events still there (fewer than now)."""
    block = need.block
    return block is not None and block.events < need.events and now - block.built_at < GRACE[need.span]


def _events_per_hour(app_id: int, start: datetime, end: datetime) -> dict[datetime, int]:
    """Stored events of the app per UTC hour in [start, end), from the hourly counts (hours without any left out)."""
    rows = (
        HourlyCounts.objects.filter(app_id=app_id, dimension="total", hour__gte=start, hour__lt=end)
        .values("hour").annotate(n=Sum("events")).filter(n__gt=0).order_by().values_list("hour", "n")
    )  # fmt: skip
    return {moment.astimezone(UTC): int(n) for moment, n in rows}


# --- The background job ---------------------------------------------------------------------


@dataclass
class RefreshResult:
    built: int = 0  # blocks built
    pruned: int = 0  # hour blocks dropped
    left: int = 0  # blocks still to build when time ran out
    failed: list[str] = field(default_factory=list)  # "app #1 d 2026-03-01" of builds that raised


def refresh_apps(app_ids: Sequence[int], *, now: datetime, seconds: float = 240.0) -> RefreshResult:
    """Build the apps' missing and stale blocks: the last KEEP_HOURS' closed
    hours first, then closed days, newest first, until `seconds` have passed;
    drop hour blocks older than KEEP_HOURS. A build that fails is logged and
    counted, and the others go on."""
    deadline = time.monotonic() + seconds
    result = RefreshResult()
    todo: list[tuple[int, str, datetime]] = []
    current_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for app_id in app_ids:
        result.pruned += storage.forget_property_hours(app_id, before=current_hour - KEEP_HOURS)
        todo += [(app_id, PropertyBlock.HOUR, hour) for hour in _stale_hours(app_id, current_hour - KEEP_HOURS, current_hour)]
    days = [(app_id, PropertyBlock.DAY, day) for app_id in app_ids for day in _stale_days(app_id, now=now)]
    days.sort(key=lambda item: item[2], reverse=True)
    todo += days
    for index, (app_id, span, start) in enumerate(todo):
        if time.monotonic() > deadline:
            result.left = len(todo) - index
            break
        try:
            build(app_id, span, start, now=now)
            result.built += 1
        except Exception:
            logger.exception("building the property summary of app #%s, %s %s failed", app_id, span, start)
            result.failed.append(f"app #{app_id} {span} {start:%Y-%m-%d %H}h")
    return result


def _stale_hours(app_id: int, start: datetime, end: datetime) -> list[datetime]:
    """Closed hours in [start, end) whose hour block is missing or stale, newest first."""
    counts = _events_per_hour(app_id, start, end)
    built = dict(
        PropertyBlock.objects.filter(app_id=app_id, span=PropertyBlock.HOUR, start__gte=start, start__lt=end)
        .values_list("start", "events")
    )  # fmt: skip
    built = {moment.astimezone(UTC): n for moment, n in built.items()}
    return sorted((hour for hour, n in counts.items() if built.get(hour) != n), reverse=True)


def _stale_days(app_id: int, *, now: datetime) -> list[datetime]:
    """Closed days with events whose day block is missing or stale."""
    stored = daily.stored_days(app_id)
    if stored is None:
        return []
    last = min(stored[1], now.astimezone(UTC).date() - DAY)
    if last < stored[0]:
        return []
    counts = daily.events_per_day([app_id], stored[0], last)
    built = {
        moment.astimezone(UTC).date(): n
        for moment, n in PropertyBlock.objects.filter(app_id=app_id, span=PropertyBlock.DAY).values_list("start", "events")
    }
    return [start_of_day(day) for (_, day), n in counts.items() if built.get(day) != n]
