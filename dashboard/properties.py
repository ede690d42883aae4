"""Reads of the Properties page: the keys of events' data, their JSON types and
coverage, number keys' sums, means and percentiles over time and split by a
string key, and string keys' most frequent values.

Everything comes from the property summaries (telemetry.property_summaries:
one block per app and closed UTC day, or UTC hour for the current day and
the 24-hour range), never from raw events: `cover` gives the blocks of the
range, building what is missing within a budget, and says how many events
the blocks leave out. Figures of a filtered view come from the blocks'
per-segment rows (version, OS, arch, CI); unfiltered ones from their whole
rows. docs/insights.md, Properties, has the design and the caps.

Sums are exact (decimals, the numbers exactly as stored); means are the
exact sum divided by the count; percentiles are nearest-rank percentiles of
a log-scale histogram, shown as the edge of their bucket nearest zero: the
true value has the same sign and a magnitude up to 6.25 % larger.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet, Sum

from dashboard import stats
from dashboard.charts import BarChart, bar_chart
from dashboard.filters import Filters
from telemetry import properties as pure
from telemetry import replicas
from telemetry.models import PropertyKey, PropertySplit, PropertyType
from telemetry.periods import DAY, HOUR, UTC
from telemetry.property_summaries import Coverage, cover

PERCENTILES = (0.5, 0.9, 0.99)
ERROR_PERCENT = pure.RELATIVE_ERROR * 100  # 6.25
# Values past this many characters of a GET parameter are not anything a block holds.
MAX_PARAMETER = 500


# --- Figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberFigures:
    """A number key's figures over some events: exact count and sum, estimated percentiles."""

    events: int
    total: Decimal
    percentiles: tuple[float | None, ...]  # p50, p90, p99 (bucket edges; None without numbers)

    @property
    def mean(self) -> Decimal | None:
        return pure.EXACT.divide(self.total, Decimal(self.events)) if self.events else None

    @property
    def p50(self) -> float | None:
        return self.percentiles[0]

    @property
    def p90(self) -> float | None:
        return self.percentiles[1]

    @property
    def p99(self) -> float | None:
        return self.percentiles[2]


def _figures(events: int, total: Decimal, histogram: dict[int, int]) -> NumberFigures:
    return NumberFigures(events, total, pure.percentiles(histogram, PERCENTILES))


def _add(total: Decimal, text: str) -> Decimal:
    return pure.EXACT.add(total, Decimal(text)) if text else total


# --- The page --------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeChoice:
    event_type: str
    events: int
    selected: bool


@dataclass(frozen=True)
class KeyRow:
    path: str
    label: str
    nested: bool  # a key of an object-valued key
    events: int  # events of the type whose data has the key (any JSON type)
    coverage: float  # percent of the type's events
    types: list[tuple[str, int]]  # (JSON type, events), most frequent first
    number: NumberFigures | None  # sum and mean of its numbers (no percentiles here)
    selected: bool

    @property
    def type_label(self) -> str:
        return " / ".join(name for name, _ in self.types)


@dataclass(frozen=True)
class ValueRow:
    value: str
    events: int
    share: float  # percent of the events with a string (or boolean) there


@dataclass(frozen=True)
class SeriesRow:
    start: datetime
    label: str
    figures: NumberFigures


@dataclass(frozen=True)
class SplitRow:
    value: str | None  # None: the split key missing or not a string
    figures: NumberFigures
    share: float  # percent of the split's events


@dataclass(frozen=True)
class Split:
    path: str
    label: str
    rows: list[SplitRow]
    events: int  # events of the number key the split covers
    of: int  # events with a number in the key


@dataclass(frozen=True)
class KeyDetail:
    path: str
    label: str
    types: list[tuple[str, int]]
    number: NumberFigures | None = None
    series: list[SeriesRow] = field(default_factory=list)
    chart: BarChart | None = None
    split_options: list[tuple[str, str]] = field(default_factory=list)  # (path, label) of string keys
    split: Split | None = None
    strings: list[ValueRow] = field(default_factory=list)
    string_events: int = 0
    other_values: int = 0  # string values past the cap, counted together
    long_values: int = 0  # string values cut to the length cap
    booleans: list[ValueRow] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    coverage: Coverage
    hourly: bool  # series per UTC hour (else per UTC day)
    filtered: bool
    types: list[TypeChoice]
    event_type: str | None = None
    type_events: int = 0
    keys: list[KeyRow] = field(default_factory=list)
    key_cap_blocks: int = 0  # blocks of the range where this type had more keys than were kept
    keys_seen_most: int = 0  # the most distinct keys one of those blocks saw
    detail: KeyDetail | None = None
    messages: list[str] = field(default_factory=list)  # what was wrong with the query string


def report(
    app_id: int, period: stats.Period, filters: Filters, *, event_type: str | None, key: str | None,
    split: str | None, now: datetime,
) -> Report:  # fmt: skip
    """Everything the Properties page shows for an app, range and filters, and the
    GET choices (event type, key, split key); a choice that makes no sense is a
    message and is dropped, never an error."""
    hourly = not _whole_days(period)
    # A period prepared by stats.with_daily_rollups has the events per day already.
    known = period.figures.day_events if period.figures is not None and period.figures.covers([app_id]) else None
    coverage = cover(app_id, period.start, period.end, hourly=hourly, now=now, day_events=known)
    messages = []
    event_type, key, split = (_parameter(value) for value in (event_type, key, split))
    event_type = event_type or None  # no event type is empty (ingest refuses one)
    blocks = _Blocks(app_id, coverage, filters, now=now)
    type_events = blocks.type_events()
    chosen = event_type
    if chosen is not None and chosen not in type_events:
        messages.append(f"No events of type “{_shown(chosen)}” in this range{' under these filters' if filters.active else ''}.")
        chosen = key = split = None
    if chosen is None and type_events:
        chosen = min(type_events, key=lambda name: (-type_events[name], name))
    types = [
        TypeChoice(name, n, name == chosen) for name, n in sorted(type_events.items(), key=lambda item: (-item[1], item[0]))
    ]
    base = Report(coverage=coverage, hourly=hourly, filtered=filters.active, types=types, messages=messages)
    if chosen is None:
        return base
    total = type_events[chosen]
    rows = blocks.key_rows(chosen, total, selected=key)
    cap_blocks, seen_most = blocks.key_caps(chosen)
    detail = None
    if key is not None:
        if any(row.path == key for row in rows):
            detail = _detail(blocks, chosen, key, rows, split, period, hourly, messages)
        else:
            messages.append(f"No key “{_shown(pure.path_label(key))}” in {chosen} events of this range.")
    return Report(
        coverage=coverage, hourly=hourly, filtered=filters.active, types=types, event_type=chosen, type_events=total,
        keys=rows, key_cap_blocks=cap_blocks, keys_seen_most=seen_most, detail=detail, messages=messages,
    )  # fmt: skip


def _detail(blocks: _Blocks, event_type: str, key: str, rows: list[KeyRow], split: str | None, period: stats.Period,
            hourly: bool, messages: list[str]) -> KeyDetail:  # fmt: skip
    row = next(row for row in rows if row.path == key)
    kinds = dict(row.types)
    detail = {"path": key, "label": row.label, "types": row.types}
    if kinds.get("number"):
        overall, series = blocks.number_series(event_type, key)
        starts = _bucket_starts(period, hourly)
        detail["number"] = overall
        detail["series"] = [
            SeriesRow(start, _bucket_label(start, hourly), series.get(start, _figures(0, pure.ZERO, {}))) for start in starts
        ]
        detail["chart"] = _chart(detail["series"], hourly)
        options = blocks.split_options(event_type, key)
        detail["split_options"] = [(path, pure.path_label(path)) for path in options]
        if split is not None:
            if split in options:
                detail["split"] = blocks.split(event_type, key, split, of=overall.events)
            else:
                messages.append(
                    f"“{_shown(pure.path_label(split))}” cannot split {row.label}: pick a string key with at most "
                    f"{pure.Caps().split_values} values from the list."
                )
    elif split is not None:
        messages.append(f"Only number keys can be split; {row.label} holds no numbers.")
    if kinds.get("string"):
        values, other, long, total = blocks.values(event_type, key, "string")
        detail.update(strings=values, other_values=other, long_values=long, string_events=total)
    if kinds.get("boolean"):
        detail["booleans"] = blocks.values(event_type, key, "boolean")[0]
    return KeyDetail(**detail)


# --- Reading the blocks ------------------------------------------------------------------
#
# A range's blocks are read in two parts: its closed days' blocks, whose rows
# never change (a rebuild or deletion replaces a block with a new one), and
# the rest (hour blocks of today or of the 24-hour range). What the closed
# part gives is kept in Django's cache under the identity of its blocks (id,
# when built, events), in two runs (the last RECENT_DAYS and the days before),
# so a later view reads only the hour blocks; a changed day is a new block and
# so a new key for its run: nothing stale is read back.

FIGURES_TIMEOUT = 24 * 3600  # a cached entry is never wrong; this only bounds the cache


class _Part:
    """Reads of some blocks' rows in the scope the filters select, as plain mergeable values."""

    def __init__(self, app_id: int, block_ids: list[int], buckets: dict[int, datetime], filters: Filters):
        self.app_id, self.block_ids, self.buckets, self.filters = app_id, block_ids, buckets, filters

    def rows(self, model) -> QuerySet:
        rows = model.objects.filter(app_id=self.app_id, block_id__in=self.block_ids)
        if self.filters.active:
            return rows.filter(self.filters.q(ci_as_text=True), whole=False)
        return rows.filter(whole=True)

    def type_events(self) -> dict[str, int]:
        rows = self.rows(PropertyType).values("event_type").annotate(n=Sum("events")).order_by()
        return {row["event_type"]: int(row["n"]) for row in rows if row["n"]}

    def keys(self, event_type: str) -> tuple[dict[str, dict[str, int]], dict[str, Decimal]]:
        """({path: {JSON type: events}}, {path: exact sum of its numbers})."""
        keys = self.rows(PropertyKey).filter(event_type=event_type)
        kinds: dict[str, dict[str, int]] = defaultdict(dict)
        for row in keys.values("path", "json_type").annotate(n=Sum("events")).order_by():
            kinds[row["path"]][row["json_type"]] = int(row["n"])
        sums: dict[str, Decimal] = {}
        for path, text in keys.filter(json_type="number").values_list("path", "number_sum"):
            sums[path] = _add(sums.get(path, pure.ZERO), text)
        return dict(kinds), sums

    def key_caps(self, event_type: str) -> list[int]:
        """Keys seen in each block where the type had more keys than were kept."""
        rows = PropertyType.objects.filter(
            app_id=self.app_id, block_id__in=self.block_ids, whole=True, event_type=event_type, keys_seen__gt=0
        )
        return [seen for seen, kept in rows.values_list("keys_seen", "keys_kept") if seen > kept]

    def numbers(self, event_type: str, path: str) -> dict[datetime, tuple[int, Decimal, dict[int, int]]]:
        """{bucket of the series: (events, exact sum, histogram)}."""
        rows = self.rows(PropertyKey).filter(event_type=event_type, path=path, json_type="number")
        found: dict[datetime, list] = {}
        for block_id, n, text in rows.values_list("block_id", "events", "number_sum"):
            figures = found.setdefault(self.buckets[block_id], [0, pure.ZERO, Counter()])
            figures[0] += n
            figures[1] = _add(figures[1], text)
        for block_id, index, n in _merged_histograms(rows):
            found[self.buckets[block_id]][2][int(index)] += int(n)
        return {bucket: (n, total, dict(histogram)) for bucket, (n, total, histogram) in found.items()}

    def values(self, event_type: str, path: str, json_type: str) -> tuple[dict[str, int], int, int, int]:
        """({value: events}, values past the cap, values cut, events with this JSON type)."""
        rows = self.rows(PropertyKey).filter(event_type=event_type, path=path, json_type=json_type)
        counts: Counter = Counter()
        other = long = events = 0
        for values, n_other, n_long, n in rows.values_list("values", "other_values", "long_values", "events"):
            counts.update(values)
            other, long, events = other + n_other, long + n_long, events + n
        return dict(counts), other, long, events

    def split_options(self, event_type: str, number_path: str) -> set[str]:
        rows = self.rows(PropertySplit).filter(event_type=event_type, number_path=number_path)
        return set(rows.values_list("split_path", flat=True).distinct().order_by())

    def split(self, event_type: str, number_path: str, split_path: str) -> dict[str | None, tuple[int, Decimal, dict[int, int]]]:
        """{value of the split key (None: missing or not a string): (events, exact sum, histogram)}."""
        rows = self.rows(PropertySplit).filter(event_type=event_type, number_path=number_path, split_path=split_path)
        found: dict[str | None, list] = {}
        for value, n, text in _split_elements(rows):
            figures = found.setdefault(value, [0, pure.ZERO, Counter()])
            figures[0] += int(n)
            figures[1] = _add(figures[1], text)
        for value, index, n in _merged_split_histograms(rows):
            found[value][2][int(index)] += int(n)
        return {value: (n, total, dict(histogram)) for value, (n, total, histogram) in found.items()}


def _merge(a, b):
    """The sum of two reads of one _Part method (numbers add, dicts merge by key, lists and sets join)."""
    if isinstance(a, tuple):
        return tuple(_merge(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        merged = dict(a)
        for key, value in b.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(a, set):
        return a | b
    if isinstance(a, list):
        return a + b
    if isinstance(a, Decimal):
        return pure.EXACT.add(a, b)
    return a + b


class _Blocks:
    """Reads of a range's blocks: the closed days' parts through the cache, the rest from the database."""

    def __init__(self, app_id: int, coverage: Coverage, filters: Filters, *, now: datetime):
        # Two runs of closed days, cached apart: late events mostly land in the
        # last days, and then only that run is read again (as dashboard.stats does).
        recent = stats.floor_to(now, DAY) - stats.RECENT_DAYS * DAY
        runs: dict[bool, list[tuple[int, str, int]]] = {True: [], False: []}
        for block in coverage.fixed:
            runs[coverage.buckets[block[0]] >= recent].append(block)
        fixed = {block_id for block_id, _, _ in coverage.fixed}
        self.closed = [
            (_Part(app_id, sorted(block_id for block_id, _, _ in run), coverage.buckets, filters),
             (app_id, tuple(run), tuple(filters.items())))
            for run in runs.values() if run
        ]  # fmt: skip
        self.open = _Part(app_id, sorted(set(coverage.block_ids) - fixed), coverage.buckets, filters)

    def read(self, name: str, *args):
        parts = []
        for part, identity in self.closed:
            key = "properties:" + hashlib.blake2b(repr((identity, name, args)).encode(), digest_size=16).hexdigest()
            found = cache.get(key)
            if found is None:
                found = getattr(part, name)(*args)
                cache.set(key, found, FIGURES_TIMEOUT)
            parts.append(found)
        if self.open.block_ids or not parts:
            parts.append(getattr(self.open, name)(*args))
        merged = parts[0]
        for other in parts[1:]:
            merged = _merge(merged, other)
        return merged

    def type_events(self) -> dict[str, int]:
        return {name: n for name, n in self.read("type_events").items() if n}

    def key_rows(self, event_type: str, total: int, *, selected: str | None) -> list[KeyRow]:
        by_path, sums = self.read("keys", event_type)
        rows = []
        for path, kinds in by_path.items():
            events = sum(kinds.values())
            numbers = kinds.get("number", 0)
            rows.append(
                KeyRow(
                    path=path, label=pure.path_label(path), nested=path.count(pure.SEP) == 1, events=events,
                    coverage=100 * events / total if total else 0.0,
                    types=sorted(kinds.items(), key=lambda item: (-item[1], item[0])),
                    number=NumberFigures(numbers, sums.get(path, pure.ZERO), ()) if numbers else None,
                    selected=path == selected,
                )
            )  # fmt: skip
        # Most carried first; a nested key right after its parent.
        parents = {row.path: row.events for row in rows if not row.nested}
        return sorted(rows, key=lambda row: _key_order(row, parents))

    def key_caps(self, event_type: str) -> tuple[int, int]:
        """(blocks where the type had more keys than were kept, the most keys one of them saw)."""
        capped = self.read("key_caps", event_type)
        return len(capped), max(capped, default=0)

    def number_series(self, event_type: str, path: str) -> tuple[NumberFigures, dict[datetime, NumberFigures]]:
        found = self.read("numbers", event_type, path)
        overall: Counter = Counter()
        total = pure.ZERO
        for _, subtotal, histogram in found.values():
            overall.update(histogram)
            total = pure.EXACT.add(total, subtotal)
        series = {bucket: _figures(*figures) for bucket, figures in found.items()}
        return _figures(sum(n for n, _, _ in found.values()), total, overall), series

    def values(self, event_type: str, path: str, json_type: str) -> tuple[list[ValueRow], int, int, int]:
        """(value rows, most frequent first; values past the cap; values cut; events with this JSON type)."""
        counts, other, long, events = self.read("values", event_type, path, json_type)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [ValueRow(value, n, 100 * n / events if events else 0.0) for value, n in ordered], other, long, events

    def split_options(self, event_type: str, number_path: str) -> list[str]:
        return sorted(self.read("split_options", event_type, number_path), key=pure.path_label)

    def split(self, event_type: str, number_path: str, split_path: str, *, of: int) -> Split:
        found = self.read("split", event_type, number_path, split_path)
        covered = sum(n for n, _, _ in found.values())
        ordered = sorted(found, key=lambda value: (value is None, -found[value][0], value or ""))
        rows = [
            SplitRow(value, _figures(*found[value]), 100 * found[value][0] / covered if covered else 0.0)
            for value in ordered
        ]
        return Split(split_path, pure.path_label(split_path), rows, covered, of)


# Histograms are merged by the database (jsonb_each_text on PostgreSQL, json_each
# on SQLite): a filtered 90-day range holds thousands of rows of dozens of
# buckets each, which Python added one by one in most of the page's time.


def _merged_histograms(rows: QuerySet) -> list[tuple]:
    """(block id, bucket, events) of these PropertyKey rows' histograms, summed per block and bucket."""
    sql, params = rows.values("block_id", "histogram").query.sql_with_params()
    if connection.vendor == "postgresql":
        each, count = "jsonb_each_text(s.histogram)", "sum(h.value::bigint)"
    else:
        each, count = "json_each(s.histogram)", "sum(h.value)"
    return _fetch(f"SELECT s.block_id, h.key, {count} FROM ({sql}) s CROSS JOIN {_lateral()}{each} h GROUP BY 1, 2", params)


def _split_elements(rows: QuerySet) -> list[tuple]:
    """(value, events, exact sum text) of every element of these PropertySplit rows."""
    sql, params = rows.values("values").query.sql_with_params()
    if connection.vendor == "postgresql":
        columns = "e.value->>0, (e.value->>1)::bigint, e.value->>2"
        each = 'jsonb_array_elements(s."values")'
    else:
        columns = "json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]')"
        each = 'json_each(s."values")'
    return _fetch(f"SELECT {columns} FROM ({sql}) s CROSS JOIN {_lateral()}{each} e", params)


def _merged_split_histograms(rows: QuerySet) -> list[tuple]:
    """(value, bucket, events) of these PropertySplit rows' histograms, summed per value and bucket."""
    sql, params = rows.values("values").query.sql_with_params()
    if connection.vendor == "postgresql":
        value, each = "e.value->>0", "jsonb_array_elements(s.\"values\") e CROSS JOIN LATERAL jsonb_each_text(e.value->3) h"
        count = "sum(h.value::bigint)"
    else:
        value, each = "json_extract(e.value, '$[0]')", "json_each(s.\"values\") e, json_each(e.value, '$[3]') h"
        count = "sum(h.value)"
    return _fetch(f"SELECT {value}, h.key, {count} FROM ({sql}) s CROSS JOIN {_lateral()}{each} GROUP BY 1, 2", params)


def _lateral() -> str:
    return "LATERAL " if connection.vendor == "postgresql" else ""


def _fetch(sql: str, params) -> list[tuple]:
    with replicas.read_connection(PropertyKey).cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _key_order(row: KeyRow, parents: dict[str, int]) -> tuple:
    if row.nested:
        parent = row.path.split(pure.SEP)[0]
        return (-parents.get(parent, 0), parent, 1, -row.events, row.path)
    return (-row.events, row.path, 0, 0, "")


# --- Helpers -----------------------------------------------------------------------


def _parameter(value: str | None) -> str | None:
    """A GET choice as given (absent: none; empty is a choice too, a key may be named "").
    Overlong text is cut: it matches nothing, and the message says so."""
    return None if value is None else value[:MAX_PARAMETER]


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "…"


def _whole_days(period: stats.Period) -> bool:
    return stats.floor_to(period.start, DAY) == period.start and stats.floor_to(period.end, DAY) == period.end


def _bucket_starts(period: stats.Period, hourly: bool) -> list[datetime]:
    step = HOUR if hourly else DAY
    starts, moment = [], stats.floor_to(period.start, step)
    while moment < period.end:
        starts.append(moment)
        moment += step
    return starts


def _bucket_label(start: datetime, hourly: bool) -> str:
    start = start.astimezone(UTC)
    if hourly:
        return f"{start.day} {start:%b} {start:%H}:00 UTC"
    return f"{start.day} {start:%b %Y}"


def _chart(series: Iterable[SeriesRow], hourly: bool) -> BarChart:
    chart = bar_chart([stats.Bucket(row.start, row.figures.events) for row in series], hourly=hourly)
    title = "Events with a number here, per hour (UTC)" if hourly else "Events with a number here, per day (UTC)"
    return replace(chart, title=title)
