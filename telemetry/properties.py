"""What events' `data` documents contribute to the property summaries.

Pure computation, no database: telemetry.property_summaries reads the raw
events of a UTC day or hour and hands them here; telemetry.storage writes
what comes out (docs/insights.md, Properties, says why and what is bounded).

What a document contributes:

- **Keys.** Its top-level keys and, for a value that is an object, that
  object's keys (one level of nesting, paths `parent SEP child`); deeper
  levels and array elements are not followed. A document that is not an
  object contributes one entry, the document itself (path DOCUMENT).
  Names are cut to `key_length` characters (marked "…"), SEP in a name
  becomes a space; an event counts at most once per path.
- **JSON type** of each entry's value: object, array, string, number,
  boolean or null.
- **Numbers**: an exact decimal sum (Decimal, the numbers exactly as
  stored) and a histogram over fixed log-scale buckets (number_bucket).
- **Strings and booleans**: counts per value; strings are cut to
  `value_length` characters (marked "…").
- **Splits**: for a number key and a string key with few values, the
  number's sum and histogram per value of the string key.

A block (one app's events of one UTC day or hour) is summarised in two
passes over its events: the first (Census) counts which segments, event
types, keys and values occur, so that the caps keep the most frequent; the
second (Tally) computes the figures of what was kept, for the whole block
and for each kept segment (version, OS, arch, CI), so that the filter bar's
filters can be applied to the stored figures.
"""

from __future__ import annotations

import decimal
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

# Between a parent key and its child in a path. A name containing it has it
# replaced by a space, so a path always splits back into the same names.
SEP = "\x1f"
# The path of a document that is not an object: it has two SEPs, which no key path has.
DOCUMENT = SEP + SEP
CUT = "…"  # ends a key name or string value that was cut

JSON_TYPES = ("number", "string", "boolean", "null", "object", "array")

# Histogram buckets: 16 per power of two, so a bucket's upper edge is at most
# 1/16 (6.25 %) above its lower one. Edges are exact binary fractions, found
# from the float's exponent and mantissa without logarithms (no rounding
# differences between machines).
SUB_BUCKETS = 16
MIN_EXPONENT = -1074  # the exponent of the smallest subnormal double, 2**-1074
RELATIVE_ERROR = 1 / SUB_BUCKETS

# Exact sums of doubles and 64-bit integers: their digits span at most about
# 650 decimal places (1.8e308 down to 5e-324), plus the digits of the count.
EXACT = decimal.Context(prec=1000, Emin=-999_999, Emax=999_999, traps=[decimal.InvalidOperation])
ZERO = Decimal(0)


@dataclass(frozen=True)
class Caps:
    """How much a block (one app's UTC day or hour) keeps: docs/insights.md, Properties."""

    keys: int = 200  # keys (event type, path) per block, over every type
    keys_per_type: int = 50  # keys per event type and block
    values: int = 50  # distinct string values per key and block
    value_length: int = 100  # characters of a string value compared
    key_length: int = 100  # characters of a key name
    types: int = 100  # event types per block
    segments: int = 100  # (version, OS, arch, CI) combinations per block with figures of their own
    split_values: int = 20  # a string key splits a number only with at most this many values
    split_numbers: int = 8  # number keys split per event type
    split_strings: int = 4  # string keys a number is split by, per event type
    splits: int = 64  # (number key, string key) pairs per block
    # What the first pass counts to choose what to keep (it bounds its memory);
    # names past these are not candidates.
    candidate_types: int = 10_000
    candidate_keys: int = 20_000  # (event type, path) pairs
    candidate_values: int = 1_000  # distinct values per key
    candidate_value_total: int = 200_000  # distinct (key, value) pairs

    @classmethod
    def from_settings(cls) -> Caps:
        return cls(
            keys=settings.CLACKS_PROPERTY_KEYS,
            keys_per_type=settings.CLACKS_PROPERTY_KEYS_PER_TYPE,
            values=settings.CLACKS_PROPERTY_VALUES,
            value_length=settings.CLACKS_PROPERTY_VALUE_LENGTH,
        )


Segment = tuple[str, str, str, str]  # service version, OS, arch, CI ("true", "false" or "")
Scope = Segment | None  # None: every event of the block


# --- One value ---------------------------------------------------------------------


def json_type(value) -> str:
    if isinstance(value, bool):  # before numbers: a bool is an int in Python
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return "array"


def exact(number: int | float) -> Decimal:
    """The number as stored, as an exact decimal. A double is written (and
    read back) as its shortest round-trip decimal, which repr gives too."""
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def number_bucket(number: int | float) -> int:
    """The histogram bucket of a number: 0 for zero, 1, 2, … for positive
    numbers in increasing order, minus that for negative ones, so buckets
    sort as their numbers do. Integers are placed as the nearest double."""
    x = float(number)
    if x == 0:
        return 0
    mantissa, exponent = math.frexp(abs(x))  # abs(x) = mantissa * 2**exponent, mantissa in [0.5, 1)
    sub = int((mantissa * 2 - 1) * SUB_BUCKETS)  # exact: a power-of-two scaling of the mantissa's bits
    index = (exponent - 1 - MIN_EXPONENT) * SUB_BUCKETS + sub + 1
    return index if x > 0 else -index


def bucket_edge(index: int) -> float:
    """The edge of a bucket nearest zero: every number in the bucket has this
    sign and a magnitude from this edge's to 6.25 % (RELATIVE_ERROR) above it."""
    if index == 0:
        return 0.0
    exponent, sub = divmod(abs(index) - 1, SUB_BUCKETS)
    magnitude = math.ldexp(1 + sub / SUB_BUCKETS, exponent + MIN_EXPONENT)
    return magnitude if index > 0 else -magnitude


def percentiles(histogram: dict[int, int], fractions: tuple[float, ...]) -> tuple[float | None, ...]:
    """Nearest-rank percentiles of a histogram ({bucket: count}), each as its
    bucket's edge nearest zero (bucket_edge); Nones for an empty histogram."""
    total = sum(histogram.values())
    if total <= 0:
        return tuple(None for _ in fractions)
    ranks = [max(1, math.ceil(fraction * total)) for fraction in fractions]
    found: list[float | None] = [None] * len(fractions)
    seen, waiting = 0, sorted(range(len(fractions)), key=lambda i: ranks[i])
    for index in sorted(histogram):
        seen += histogram[index]
        while waiting and seen >= ranks[waiting[0]]:
            found[waiting.pop(0)] = bucket_edge(index)
        if not waiting:
            break
    return tuple(found)


# --- One document ------------------------------------------------------------------


def _name(name: str, caps: Caps) -> str:
    name = name.replace(SEP, " ")
    return name if len(name) <= caps.key_length else name[: caps.key_length] + CUT


def cut_value(text: str, caps: Caps) -> tuple[str, bool]:
    """A string value as it is counted, and whether it was cut."""
    if len(text) <= caps.value_length:
        return text, False
    return text[: caps.value_length] + CUT, True


def entries(data, caps: Caps) -> list[tuple[str, object]]:
    """(path, value) of every key a document contributes (see the module
    docstring), each path once, names in sorted order (so the same document
    gives the same entries however its keys were ordered when stored)."""
    if not isinstance(data, dict):
        return [(DOCUMENT, data)]
    found: dict[str, object] = {}
    for name in sorted(data):
        value = data[name]
        path = _name(name, caps)
        if path in found:
            continue  # two names cut to the same text: the first counts
        found[path] = value
        if isinstance(value, dict):
            for child in sorted(value):
                found.setdefault(path + SEP + _name(child, caps), value[child])
    return list(found.items())


def path_label(path: str) -> str:
    """A path as a page shows it: `parent › child`, "(data itself)", an empty name as ""."""
    if path == DOCUMENT:
        return "(data itself)"
    return " › ".join(name or '""' for name in path.split(SEP))


# --- Pass 1: what occurs ------------------------------------------------------------


Event = tuple[str, Segment, object]  # (event type, segment, parsed data)


class Census:
    """Counts what a block's events hold, to choose what the caps keep."""

    def __init__(self, caps: Caps):
        self.caps = caps
        self.events = 0
        self.segments: Counter[Segment] = Counter()
        self.types: Counter[str] = Counter()
        self.keys: dict[str, Counter[str]] = {}  # type -> path -> events
        self.keys_overflow: set[str] = set()  # types with more distinct keys than candidate_keys
        self.numbers: Counter[tuple[str, str]] = Counter()  # (type, path) -> events with a number
        self.strings: Counter[tuple[str, str]] = Counter()  # (type, path) -> events with a string
        self.values: dict[tuple[str, str], Counter[str]] = {}  # (type, path) -> string value -> events
        self.values_overflow: set[tuple[str, str]] = set()
        self.key_total = self.value_total = 0  # candidates counted, against the caps

    def add(self, event_type: str, segment: Segment, data) -> None:
        caps = self.caps
        self.events += 1
        self.segments[segment] += 1
        if event_type not in self.types and len(self.types) >= caps.candidate_types:
            return
        self.types[event_type] += 1
        keys = self.keys.setdefault(event_type, Counter())
        for path, value in entries(data, caps):
            if path not in keys:
                if self.key_total >= caps.candidate_keys:
                    self.keys_overflow.add(event_type)
                    continue
                self.key_total += 1
            keys[path] += 1
            kind = json_type(value)
            if kind == "number":
                self.numbers[(event_type, path)] += 1
            elif kind == "string":
                key = (event_type, path)
                self.strings[key] += 1
                text, _ = cut_value(value, caps)
                values = self.values.setdefault(key, Counter())
                if text in values:
                    values[text] += 1
                elif len(values) < caps.candidate_values and self.value_total < caps.candidate_value_total:
                    values[text] += 1
                    self.value_total += 1
                else:
                    self.values_overflow.add(key)

    def plan(self) -> Plan:
        caps = self.caps
        segments = {segment for segment, _ in _top(self.segments, caps.segments)}
        types = {name for name, _ in _top(self.types, caps.types)}
        # Keys: the most frequent per type, then the most frequent of those over every type.
        chosen: list[tuple[int, str, str]] = []
        for event_type in types:
            keys = self.keys.get(event_type, Counter())
            top = _top(Counter({path: n for path, n in keys.items() if path != DOCUMENT}), caps.keys_per_type)
            chosen += [(n, event_type, path) for path, n in top]
        chosen.sort(key=lambda item: (-item[0], item[1], item[2]))
        keys: dict[str, set[str]] = {event_type: set() for event_type in types}
        for _, event_type, path in chosen[: caps.keys]:
            keys[event_type].add(path)
        for event_type in types:
            if DOCUMENT in self.keys.get(event_type, ()):
                keys[event_type].add(DOCUMENT)  # the document itself is always kept
        values = {}
        for event_type, paths in keys.items():
            for path in paths:
                counted = self.values.get((event_type, path))
                if counted:
                    values[(event_type, path)] = {text for text, _ in _top(counted, caps.values)}
        splits = self._splits(types, keys)
        keys_seen = {
            event_type: len(self.keys.get(event_type, ())) + (1 if event_type in self.keys_overflow else 0)
            for event_type in types
        }
        return Plan(segments=segments, types=types, keys=keys, values=values, splits=splits, keys_seen=keys_seen)

    def _splits(self, types: set[str], keys: dict[str, set[str]]) -> dict[str, list[tuple[str, str]]]:
        caps = self.caps
        pairs: list[tuple[int, str, str, str]] = []
        for event_type in types:
            numbers = _top(Counter({p: self.numbers[(event_type, p)] for p in keys[event_type]
                                    if self.numbers[(event_type, p)]}), caps.split_numbers)  # fmt: skip
            strings = _top(
                Counter({
                    p: self.strings[(event_type, p)] for p in keys[event_type]
                    if self.strings[(event_type, p)]
                    and (event_type, p) not in self.values_overflow
                    and len(self.values.get((event_type, p), ())) <= min(caps.split_values, caps.values)
                }),
                caps.split_strings,
            )  # fmt: skip
            for number, _ in numbers:
                for string, _ in strings:
                    if number != string:
                        pairs.append((self.types[event_type], event_type, number, string))
        pairs.sort(key=lambda item: (-item[0], item[1], item[2], item[3]))
        splits: dict[str, list[tuple[str, str]]] = {}
        for _, event_type, number, string in pairs[: caps.splits]:
            splits.setdefault(event_type, []).append((number, string))
        return splits


def _top(counter: Counter, limit: int) -> list[tuple]:
    """The `limit` most frequent items, ties broken by the item itself (so the choice never depends on order)."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass(frozen=True)
class Plan:
    """What a block keeps (Census.plan)."""

    segments: set[Segment]
    types: set[str]
    keys: dict[str, set[str]]  # type -> paths kept
    values: dict[tuple[str, str], set[str]]  # (type, path) -> string values counted one by one
    splits: dict[str, list[tuple[str, str]]]  # type -> (number path, string path) pairs
    keys_seen: dict[str, int]  # type -> distinct paths seen (one more when there were too many to count)


# --- Pass 2: the figures -----------------------------------------------------------------


@dataclass
class KeyFigures:
    """One key's figures for one JSON type, in one scope of a block."""

    events: int = 0
    total: Decimal = ZERO  # numbers: their exact sum
    histogram: Counter = field(default_factory=Counter)  # numbers: bucket -> events
    values: Counter = field(default_factory=Counter)  # strings and booleans: value -> events
    other_values: int = 0  # strings whose value is not counted one by one (past the cap)
    long_values: int = 0  # strings cut to value_length

    def add_number(self, number) -> None:
        self.total = EXACT.add(self.total, exact(number))
        self.histogram[number_bucket(number)] += 1


@dataclass
class SplitFigures:
    """A number key's figures among events with one value of a string key."""

    events: int = 0
    total: Decimal = ZERO
    histogram: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class TypeRow:
    scope: Scope
    event_type: str
    events: int
    keys_seen: int  # whole scope only (0 in segments)
    keys_kept: int


@dataclass(frozen=True)
class KeyRow:
    scope: Scope
    event_type: str
    path: str
    json_type: str
    figures: KeyFigures


@dataclass(frozen=True)
class SplitRow:
    scope: Scope
    event_type: str
    number_path: str
    split_path: str
    # Per value of the string key (None: events whose split key is missing or not a string).
    values: dict[str | None, SplitFigures]


@dataclass(frozen=True)
class Summary:
    """The figures of one block, ready to store."""

    events: int
    folded_events: int  # events of segments past the cap: in the whole block's figures only
    other_type_events: int  # events of event types past the cap: in no figure
    types: list[TypeRow]
    keys: list[KeyRow]
    splits: list[SplitRow]


class Tally:
    def __init__(self, plan: Plan, caps: Caps):
        self.plan, self.caps = plan, caps
        self.types: Counter[tuple[Scope, str]] = Counter()
        self.keys: dict[tuple[Scope, str, str, str], KeyFigures] = {}
        self.splits: dict[tuple[Scope, str, str, str], dict[str | None, SplitFigures]] = {}
        self.events = self.folded = self.other_types = 0

    def add(self, event_type: str, segment: Segment, data) -> None:
        plan, caps = self.plan, self.caps
        self.events += 1
        kept = segment in plan.segments
        if not kept:
            self.folded += 1
        if event_type not in plan.types:
            self.other_types += 1
            return
        scopes: tuple[Scope, ...] = (None, segment) if kept else (None,)
        paths = plan.keys[event_type]
        found = {path: value for path, value in entries(data, caps) if path in paths}
        for scope in scopes:
            self.types[(scope, event_type)] += 1
        for path, value in found.items():
            kind = json_type(value)
            text = long = None
            if kind == "string":
                text, long = cut_value(value, caps)
                if text not in plan.values.get((event_type, path), ()):
                    text = None
            for scope in scopes:
                figures = self.keys.get((scope, event_type, path, kind))
                if figures is None:
                    figures = self.keys[(scope, event_type, path, kind)] = KeyFigures()
                figures.events += 1
                if kind == "number":
                    figures.add_number(value)
                elif kind == "string":
                    figures.long_values += long
                    if text is None:
                        figures.other_values += 1
                    else:
                        figures.values[text] += 1
                elif kind == "boolean":
                    figures.values["true" if value else "false"] += 1
        for number_path, split_path in plan.splits.get(event_type, ()):
            number = found.get(number_path)
            if json_type(number) != "number":
                continue
            split = found.get(split_path)
            value = cut_value(split, caps)[0] if isinstance(split, str) else None
            for scope in scopes:
                per_value = self.splits.setdefault((scope, event_type, number_path, split_path), {})
                figures = per_value.get(value)
                if figures is None:
                    figures = per_value[value] = SplitFigures()
                figures.events += 1
                figures.total = EXACT.add(figures.total, exact(number))
                figures.histogram[number_bucket(number)] += 1

    def summary(self) -> Summary:
        plan = self.plan
        types = [
            TypeRow(scope, event_type, events, plan.keys_seen[event_type] if scope is None else 0,
                    len(plan.keys[event_type]))
            for (scope, event_type), events in self.types.items()
        ]  # fmt: skip
        keys = [KeyRow(scope, t, path, kind, figures) for (scope, t, path, kind), figures in self.keys.items()]
        splits = [SplitRow(scope, t, n, s, values) for (scope, t, n, s), values in self.splits.items()]
        return Summary(self.events, self.folded, self.other_types, types, keys, splits)


def summarise(read: Callable[[], Iterable[Event]], caps: Caps) -> Summary:
    """The summary of a block whose events `read()` yields (it is called twice, for the two passes)."""
    census = Census(caps)
    for event_type, segment, data in read():
        census.add(event_type, segment, data)
    tally = Tally(census.plan(), caps)
    for event_type, segment, data in read():
        tally.add(event_type, segment, data)
    return tally.summary()
