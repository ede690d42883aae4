"""The Properties page and its summaries against brute force over the raw events.

Every figure the page shows (types, keys, JSON types, coverage, exact sums
and means, percentile buckets, top values, splits) is compared with a plain
Python computation over the stored events, on random data documents, with
the caps set low so that they are hit; then staleness (late events, the
current hour, deletions of every kind) and the page itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from django.urls import reverse
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dashboard import properties as page
from dashboard import stats
from dashboard.filters import Filters
from telemetry import lifecycle, property_summaries, storage
from telemetry import properties as pure
from telemetry.models import Event, PropertyBlock, PropertyKey
from telemetry.properties import Caps
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app

UTC = timezone.utc
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
# Two closed days (day blocks), a closed hour of today and the current hour (hour blocks).
MOMENTS = (
    datetime(2026, 3, 8, 3, 15, tzinfo=UTC),
    datetime(2026, 3, 9, 23, 59, 30, tzinfo=UTC),
    datetime(2026, 3, 10, 1, 10, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 5, tzinfo=UTC),
)
RANGE = stats.period_of_days(date(2026, 3, 8), date(2026, 3, 10))
DOCUMENT = "(data itself)"


def report(app, *, filters=Filters(), event_type=None, key=None, split=None, now=NOW, period=RANGE):
    return page.report(app.pk, period, filters, event_type=event_type, key=key, split=split, now=now)


# --- Brute force -----------------------------------------------------------------------


def block_of(moment: datetime) -> tuple:
    """The block an event belongs to on RANGE at NOW: its day if closed, else its hour."""
    if moment.date() < NOW.date():
        return ("d", moment.date())
    return ("h", moment.replace(minute=0, second=0, microsecond=0))


def cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length] + "…"


def name_label(name: str, caps: Caps) -> str:
    return cut(name, caps.key_length) or '""'


def flat(data, caps: Caps) -> dict[str, object]:
    """{label: value} of what a document carries: top-level keys and one level down."""
    if not isinstance(data, dict):
        return {DOCUMENT: data}
    out: dict[str, object] = {}
    for name in sorted(data):
        label = name_label(name, caps)
        if label in out:
            continue
        out[label] = data[name]
        if isinstance(data[name], dict):
            for child in sorted(data[name]):
                out.setdefault(f"{label} › {name_label(child, caps)}", data[name][child])
    return out


def kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else "array"


def decimal_of(number) -> Decimal:
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def nearest_rank(values: list, fraction: float):
    ordered = sorted(values, key=float)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


class Truth:
    """The page's figures computed from the raw events, caps applied per block as documented."""

    def __init__(self, app, caps: Caps, *, os: str | None = None):
        self.caps = caps
        rows = Event.objects.filter(app=app).values_list("timestamp", "event_type", "os", "data")
        self.events = [(block_of(t), event_type, event_os, flat(data, caps)) for t, event_type, event_os, data in rows]
        self.kept = {}  # (block, type) -> kept labels
        self.kept_values = {}  # (block, type, label) -> kept string values
        self.splits = defaultdict(set)  # (block, type) -> {(number label, string label)}
        self.capped = Counter()  # type -> blocks where keys were past the cap
        for block in {event[0] for event in self.events}:
            self._choose(block)
        self.shown = [event for event in self.events if os is None or event[2] == os]

    def _choose(self, block) -> None:
        caps = self.caps
        mine = [event for event in self.events if event[0] == block]
        per_type = defaultdict(list)
        for _, event_type, _, entries in mine:
            per_type[event_type].append(entries)
        chosen = []
        for event_type, docs in per_type.items():
            counts = Counter(label for entries in docs for label in entries)
            ordinary = sorted((label for label in counts if label != DOCUMENT), key=lambda label: (-counts[label], label))
            chosen += [(counts[label], event_type, label) for label in ordinary[: caps.keys_per_type]]
        chosen.sort(key=lambda item: (-item[0], item[1], item[2]))
        kept = defaultdict(set)
        for _, event_type, label in chosen[: caps.keys]:
            kept[event_type].add(label)
        pairs = []
        for event_type, docs in per_type.items():
            counts = Counter(label for entries in docs for label in entries)
            if DOCUMENT in counts:
                kept[event_type].add(DOCUMENT)
            self.kept[(block, event_type)] = kept[event_type]
            if len(counts) > len(kept[event_type]):
                self.capped[event_type] += 1
            numbers, strings, values = Counter(), Counter(), defaultdict(Counter)
            for entries in docs:
                for label, value in entries.items():
                    if kind(value) == "number":
                        numbers[label] += 1
                    elif kind(value) == "string":
                        strings[label] += 1
                        values[label][cut(value, caps.value_length)] += 1
            for label in kept[event_type]:
                top = sorted(values[label], key=lambda text: (-values[label][text], text))[: caps.values]
                self.kept_values[(block, event_type, label)] = set(top)
            number_keys = sorted((label for label in kept[event_type] if numbers[label]), key=lambda label: (-numbers[label], label))
            string_keys = sorted(
                (label for label in kept[event_type] if strings[label] and len(values[label]) <= min(caps.split_values, caps.values)),
                key=lambda label: (-strings[label], label),
            )
            for number in number_keys[: caps.split_numbers]:
                for string in string_keys[: caps.split_strings]:
                    if number != string:
                        pairs.append((len(docs), event_type, number, string))
        pairs.sort(key=lambda item: (-item[0], item[1], item[2], item[3]))
        for _, event_type, number, string in pairs[: caps.splits]:
            self.splits[(block, event_type)].add((number, string))

    def types(self) -> dict[str, int]:
        return dict(Counter(event_type for _, event_type, _, _ in self.shown))

    def carried(self, event_type: str):
        """(block, label, value) of every kept key of the type's shown events."""
        for block, name, _, entries in self.shown:
            if name == event_type:
                for label, value in entries.items():
                    if label in self.kept[(block, event_type)]:
                        yield block, label, value

    def keys(self, event_type: str) -> dict[str, dict[str, int]]:
        out = defaultdict(Counter)
        for _, label, value in self.carried(event_type):
            out[label][kind(value)] += 1
        return {label: dict(kinds) for label, kinds in out.items()}

    def numbers(self, event_type: str, label: str) -> list:
        return [value for _, key, value in self.carried(event_type) if key == label and kind(value) == "number"]

    def strings(self, event_type: str, label: str) -> tuple[Counter, int, int]:
        counted, other, long = Counter(), 0, 0
        for block, key, value in self.carried(event_type):
            if key == label and kind(value) == "string":
                text = cut(value, self.caps.value_length)
                long += text != value
                if text in self.kept_values[(block, event_type, label)]:
                    counted[text] += 1
                else:
                    other += 1
        return counted, other, long

    def split_options(self, event_type: str, number: str) -> set[str]:
        """String keys that split the number in some block where a shown event has a number there."""
        return {
            string
            for block, name, _, entries in self.shown if name == event_type and kind(entries.get(number)) == "number"
            for n, string in self.splits.get((block, event_type), ()) if n == number
        }  # fmt: skip

    def split(self, event_type: str, number: str, string: str) -> dict:
        out = defaultdict(list)
        for block, name, _, entries in self.shown:
            if name != event_type or (number, string) not in self.splits.get((block, event_type), ()):
                continue
            value = entries.get(number)
            if kind(value) != "number":
                continue
            split = entries.get(string)
            out[cut(split, self.caps.value_length) if isinstance(split, str) else None].append(value)
        return out


def assert_number_figures(figures: page.NumberFigures, values: list) -> None:
    assert figures.events == len(values)
    total = sum((Fraction(decimal_of(value)) for value in values), Fraction(0))
    assert Fraction(figures.total) == total  # exact
    if values:
        mean = total / len(values)
        assert abs(Fraction(figures.mean) - mean) <= abs(mean) / 10**900  # the exact quotient to 1000 digits
    for fraction, shown in zip(page.PERCENTILES, figures.percentiles):
        if not values:
            assert shown is None
            continue
        truth = float(nearest_rank(values, fraction))
        assert shown == pure.bucket_edge(pure.number_bucket(truth))
        # The stated bound: same sign, magnitude from the shown edge to 6.25 % above it.
        assert shown == 0 if truth == 0 else (shown > 0) == (truth > 0)
        assert abs(shown) <= abs(truth) <= abs(shown) * (1 + pure.RELATIVE_ERROR) * (1 + 1e-15)


def assert_page_matches(app, caps: Caps, *, os: str | None = None) -> None:
    truth = Truth(app, caps, os=os)
    filters = Filters(os=os)
    first = report(app, filters=filters)
    assert first.coverage.missing == 0
    assert {choice.event_type: choice.events for choice in first.types} == truth.types()
    for event_type, type_events in truth.types().items():
        shown = report(app, filters=filters, event_type=event_type)
        expected = truth.keys(event_type)
        assert {row.label: dict(row.types) for row in shown.keys} == expected
        for row in shown.keys:
            assert row.events == sum(expected[row.label].values())
            assert row.coverage == pytest.approx(100 * row.events / type_events)
        assert shown.key_cap_blocks == (truth.capped[event_type] if os is None else shown.key_cap_blocks)
        for row in shown.keys:
            detail = report(app, filters=filters, event_type=event_type, key=row.path).detail
            kinds = expected[row.label]
            numbers = truth.numbers(event_type, row.label)
            if kinds.get("number"):
                assert_number_figures(detail.number, numbers)
                assert row.number.total == detail.number.total
                per_day = Counter(event[0][1] if event[0][0] == "d" else event[0][1].date()
                                  for event in truth.shown for _ in [0] if event[1] == event_type
                                  and kind(event[3].get(row.label)) == "number" and row.label in truth.kept[(event[0], event_type)])  # fmt: skip
                assert {r.start.date(): r.figures.events for r in detail.series if r.figures.events} == dict(per_day)
                options = truth.split_options(event_type, row.label)
                assert {pure.path_label(path) for path, _ in detail.split_options} == options
                for path, label in detail.split_options:
                    split = report(app, filters=filters, event_type=event_type, key=row.path, split=path).detail.split
                    groups = truth.split(event_type, row.label, label)
                    assert {r.value: r.figures.events for r in split.rows} == {v: len(n) for v, n in groups.items()}
                    for split_row in split.rows:
                        assert_number_figures(split_row.figures, groups[split_row.value])
                    assert split.of == len(numbers)
            else:
                assert detail.number is None
            counted, other, long = truth.strings(event_type, row.label)
            assert {r.value: r.events for r in detail.strings} == dict(counted)
            assert (detail.other_values, detail.long_values) == (other, long)
            assert detail.string_events == kinds.get("string", 0)
            booleans = Counter(
                "true" if value else "false"
                for _, key, value in truth.carried(event_type) if key == row.label and kind(value) == "boolean"
            )  # fmt: skip
            assert {r.value: r.events for r in detail.booleans} == dict(booleans)


# --- Random data documents ------------------------------------------------------------

names = st.sampled_from(["n", "s", "b", "x", "meta", "duration_ms", "command", "", "a.b"]) | st.text("xyz", min_size=1, max_size=2)
long_name = st.just("k" * 120)
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-20, max_value=40)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    | st.sampled_from(["build", "test", "run", "fmt"])
    | text
    | st.text("ab", min_size=9, max_size=14)  # past the value length cap below
)
values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3), max_leaves=6
)
numbers = (
    st.integers(min_value=-20, max_value=40)
    | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)
# SDK-like documents: the same keys again and again, few string values, numbers, nesting.
meta = st.dictionaries(st.sampled_from(["a", "b", "c", ""]), numbers | st.sampled_from(["x", "y"]) | values, max_size=3)
commands = st.fixed_dictionaries(
    {"duration_ms": numbers | st.none(), "command": st.sampled_from(["build", "test", "run"]) | st.text("ab", min_size=9, max_size=14)},
    optional={"flag": st.booleans() | st.none(), "meta": meta, "x": values},
)
features = st.fixed_dictionaries(
    {"s": st.sampled_from("abcde"), "n": numbers | st.sampled_from(["1", "2"])},
    optional={"flag": st.booleans(), "meta": meta, "duration_ms": numbers},
)
documents = commands | features | st.dictionaries(names | long_name, values, max_size=7) | values
events = st.lists(
    # Most events on the first day and of one type, so that blocks hold enough to reach the caps.
    st.tuples(st.sampled_from(["alpha", "alpha", "beta"]), documents, st.sampled_from(MOMENTS[:1] * 3 + MOMENTS),
              st.sampled_from(["linux", "macos"])),
    min_size=3,
    max_size=40,
)
LOW_CAPS = {"CLACKS_PROPERTY_KEYS": 7, "CLACKS_PROPERTY_KEYS_PER_TYPE": 4, "CLACKS_PROPERTY_VALUES": 2,
            "CLACKS_PROPERTY_VALUE_LENGTH": 10}  # fmt: skip


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seeded=events, filtered=st.booleans())
def test_every_figure_matches_brute_force_over_the_raw_events(org, settings, seeded, filtered):
    for name, value in LOW_CAPS.items():
        setattr(settings, name, value)
    app, _ = make_app(org, name="random")
    store(app, *(sdk_event(moment, type=event_type, data=data, os=os) for event_type, data, moment, os in seeded), now=NOW)

    assert_page_matches(app, Caps.from_settings(), os="macos" if filtered else None)


def test_a_known_document_gives_the_expected_figures(app):
    store(
        app,
        sdk_event(MOMENTS[0], data={"d": 0.1, "s": "a", "o": {"x": -2, "y": {"deep": 1}}, "f": True}),
        sdk_event(MOMENTS[1], data={"d": 0.2, "s": "a", "o": {"x": 1e300}, "f": False}),
        sdk_event(MOMENTS[2], data={"d": 5e-324, "s": "b", "f": None}),
        sdk_event(MOMENTS[3], type="other", data=[1, 2]),
        now=NOW,
    )
    figures = report(app, event_type="command_execution", key="d").detail
    assert figures.number.total == pure.EXACT.add(Decimal("0.3"), Decimal("5E-324"))  # decimals: not 0.30000000000000004
    assert [row.label for row in report(app, event_type="command_execution").keys] == [
        "d", "f", "s", "o", "o › x", "o › y",
    ]  # fmt: skip
    keys = {row.label: row for row in report(app, event_type="command_execution").keys}
    assert dict(keys["f"].types) == {"boolean": 2, "null": 1}
    assert keys["o › y"].type_label == "object"  # not followed further
    assert keys["o"].coverage == pytest.approx(200 / 3)
    assert keys["o › x"].number.total == pure.EXACT.subtract(Decimal("1E+300"), 2)
    other = {row.label: dict(row.types) for row in report(app, event_type="other").keys}
    assert other == {DOCUMENT: {"array": 1}}


@given(st.integers(min_value=-(2**64), max_value=2**64) | st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_lies_in_its_bucket_and_buckets_sort_like_numbers(number):
    index = pure.number_bucket(number)
    edge = pure.bucket_edge(index)
    x = float(number)
    assert abs(edge) <= abs(x) and (edge > 0) == (x > 0) and (edge < 0) == (x < 0)
    if abs(x) > 1e-300:  # subnormal doubles have too few bits for the 6.25 % edges
        assert abs(x) < abs(edge) * (1 + pure.RELATIVE_ERROR)
    assert pure.number_bucket(edge) == index or edge == 0 or abs(edge) < 1e-300  # edges are the buckets' own
    above = math.nextafter(x, math.inf)
    assert math.isinf(above) or pure.number_bucket(above) >= index


# --- Staleness: late events, the current hour, deletions --------------------------------


def test_a_late_event_is_counted_once_its_day_is_rebuilt(app):
    store(app, sdk_event(MOMENTS[1], data={"n": 5}), now=NOW)
    assert report(app, event_type="command_execution", key="n").detail.number.total == 5

    store(app, sdk_event(MOMENTS[1] - timedelta(hours=2), data={"n": 7}), now=NOW + timedelta(minutes=1))

    young = report(app, event_type="command_execution", key="n", now=NOW + timedelta(minutes=2))
    assert young.coverage.late == 1  # the day was summarised 2 minutes ago: used as it is, and said so
    assert young.detail.number.total == 5
    later = report(app, event_type="command_execution", key="n", now=NOW + timedelta(minutes=11))
    assert later.coverage.missing == 0
    assert later.detail.number.total == 12


def test_the_current_hour_is_summarised_again_a_minute_later(app):
    store(app, sdk_event(NOW - timedelta(minutes=20), data={"n": 1}), now=NOW)
    assert report(app, event_type="command_execution", key="n").detail.number.events == 1
    store(app, sdk_event(NOW - timedelta(minutes=1), data={"n": 2}), now=NOW)

    assert report(app, now=NOW + timedelta(seconds=30)).coverage.late == 1
    fresh = report(app, event_type="command_execution", key="n", now=NOW + timedelta(seconds=61))
    assert fresh.coverage.missing == 0
    assert fresh.detail.number.total == 3


def test_deleted_events_leave_the_figures_at_once(app):
    store(app, *(sdk_event(MOMENTS[0], data={"n": n, "s": f"v{n}"}) for n in (1, 2, 3)), sdk_event(MOMENTS[1]), now=NOW)
    assert report(app, event_type="command_execution", key="n").detail.number.total == 6
    doomed = Event.objects.get(app=app, data__n=3)

    storage.delete_events(app.pk, [doomed.pk])

    assert not PropertyBlock.objects.filter(app=app, start=datetime(2026, 3, 8, tzinfo=UTC)).exists()
    assert PropertyBlock.objects.filter(app=app, start=datetime(2026, 3, 9, tzinfo=UTC)).exists()  # untouched day
    after = report(app, event_type="command_execution", key="s")
    assert {row.value for row in after.detail.strings} == {"v1", "v2"}
    assert report(app, event_type="command_execution", key="n").detail.number.total == 3


def test_a_summary_stored_by_a_build_that_raced_a_deletion_is_never_read(app):
    store(app, *(sdk_event(MOMENTS[0], data={"n": n}) for n in (1, 2, 3)), now=NOW)
    day = datetime(2026, 3, 8, tzinfo=UTC)
    before = property_summaries.summarise_span(app.pk, PropertyBlock.DAY, day)  # read before the deletion...
    storage.delete_events(app.pk, [Event.objects.get(app=app, data__n=3).pk])
    storage.replace_property_block(app.pk, span=PropertyBlock.DAY, start=day, built_at=NOW, summary=before)  # ...stored after

    held = property_summaries.cover(app.pk, RANGE.start, RANGE.end, hourly=False, now=NOW, budget=0)
    assert held.block_ids == () and held.pending == 2  # not read, even when it cannot be rebuilt
    assert report(app, event_type="command_execution", key="n").detail.number.total == 3  # rebuilt


def test_erasing_a_user_and_retention_go_through_the_same_deletion(app):
    store(app, sdk_event(MOMENTS[0], user="gone", data={"n": 1}), sdk_event(MOMENTS[0], user="kept", data={"n": 2}), now=NOW)
    report(app)
    lifecycle.erase_user(app.organization, user_id="client_gone", via="command")
    assert report(app, event_type="command_execution", key="n").detail.number.total == 2


def test_deleting_an_apps_events_or_rebuilding_drops_every_summary(app, org):
    other, _ = make_app(org, name="other")
    store(app, sdk_event(MOMENTS[0]), sdk_event(MOMENTS[2]), now=NOW)
    store(other, sdk_event(MOMENTS[0]), now=NOW)
    report(app), report(other)
    assert PropertyBlock.objects.filter(app=app).count() == 2

    storage.rebuild_derived(app.pk)
    assert not PropertyBlock.objects.filter(app=app).exists()
    report(app)
    storage.delete_app_events(app.pk)

    assert not PropertyBlock.objects.filter(app=app).exists()
    assert not PropertyKey.objects.filter(app=app).exists()
    assert PropertyBlock.objects.filter(app=other).count() == 1
    assert report(app).types == []

    storage.delete_app_events(other.pk)  # as deleting the app does (dashboard.manage_views.app_delete)
    assert not PropertyBlock.objects.exists() and not PropertyKey.objects.exists()


@pytest.mark.postgres
def test_a_dropped_partition_takes_its_summaries(on_postgres, app, org):
    from telemetry import partitions

    org.retention_days = 30
    org.save()
    old = datetime(2020, 3, 5, 12, tzinfo=UTC)
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    store(app, sdk_event(old), sdk_event(MOMENTS[0]), now=NOW)
    property_summaries.build(app.pk, PropertyBlock.DAY, datetime(2020, 3, 5, tzinfo=UTC), now=NOW)
    report(app)

    assert "telemetry_event_p20200301" in partitions.drop_expired_partitions(now=datetime.now(UTC))

    assert not PropertyBlock.objects.filter(app=app, start__lt=datetime(2020, 4, 1, tzinfo=UTC)).exists()
    assert PropertyBlock.objects.filter(app=app, start=datetime(2026, 3, 8, tzinfo=UTC)).exists()


def test_a_block_reads_its_events_page_by_page_without_losing_ties(app, monkeypatch):
    monkeypatch.setattr(property_summaries, "READ_PAGE", 2)
    store(app, *(sdk_event(MOMENTS[0], data={"n": n}) for n in range(5)), sdk_event(MOMENTS[0] + timedelta(hours=1), data={"n": 10}),
          now=NOW)  # fmt: skip
    summary = property_summaries.summarise_span(app.pk, PropertyBlock.DAY, datetime(2026, 3, 8, tzinfo=UTC))
    assert summary.events == 6
    [numbers] = [row for row in summary.keys if row.scope is None and row.path == "n"]
    assert (numbers.figures.events, numbers.figures.total) == (6, 20)


def test_a_page_builds_within_its_budget_and_the_job_does_the_rest(app):
    store(app, sdk_event(MOMENTS[0], data={"n": 1}), sdk_event(MOMENTS[1], data={"n": 2}), now=NOW)

    held = property_summaries.cover(app.pk, RANGE.start, RANGE.end, hourly=False, now=NOW, budget=1)
    assert (held.built, held.pending, held.pending_spans) == (1, 1, 1)  # the newest day fitted

    result = property_summaries.refresh_apps([app.pk], now=NOW)
    assert (result.built, result.left, result.failed) == (2, 0, [])  # the missing day, and 9 Mar 23h (last 48 hours)
    done = property_summaries.cover(app.pk, RANGE.start, RANGE.end, hourly=False, now=NOW, budget=0)
    assert (done.built, done.missing, len(done.block_ids)) == (0, 0, 2)


def test_the_job_keeps_hour_summaries_for_48_hours(app):
    store(app, sdk_event(NOW - timedelta(hours=3)), sdk_event(NOW - timedelta(minutes=5)), now=NOW)
    property_summaries.refresh_apps([app.pk], now=NOW)
    hours = PropertyBlock.objects.filter(app=app, span=PropertyBlock.HOUR)
    assert list(hours.values_list("start", flat=True)) == [datetime(2026, 3, 10, 9, tzinfo=UTC)]  # not the open hour

    result = property_summaries.refresh_apps([app.pk], now=NOW + timedelta(hours=49))

    assert result.pruned == 1 and not hours.exists()
    assert PropertyBlock.objects.filter(app=app, span=PropertyBlock.DAY).count() == 1  # the day, now closed


def test_the_last_24_hours_read_hour_summaries_of_yesterday_and_today(app):
    store(app, sdk_event(NOW - timedelta(hours=20), data={"n": 1}), sdk_event(NOW - timedelta(days=2), data={"n": 5}),
          sdk_event(NOW - timedelta(hours=1), data={"n": 2}), now=NOW)  # fmt: skip
    period = stats.preset_range("24h", now=NOW)
    shown = report(app, event_type="command_execution", key="n", period=period)
    assert shown.hourly and shown.detail.number.total == 3
    assert [(row.start.hour, row.figures.events) for row in shown.detail.series if row.figures.events] == [(16, 1), (11, 1)]


# --- The page -------------------------------------------------------------------------------


def url(app, **query) -> str:
    base = reverse("dashboard:properties", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def visible(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def recent(app):
    now = django_timezone.now()
    store(
        app,
        sdk_event(now - timedelta(days=2), data={"command": "build", "duration_ms": 1200, "cache": {"hits": 3}}),
        sdk_event(now - timedelta(hours=2), data={"command": "test", "duration_ms": 800.5}),
        sdk_event(now - timedelta(minutes=5), os="macos", data={"command": "build", "duration_ms": 40}),
        now=now,
    )
    return app


def test_a_viewer_reads_the_figures_and_an_outsider_gets_404(client, bob, charlie, recent):
    client.force_login(bob)
    response = client.get(url(recent, type="command_execution", key="duration_ms", split="command"))
    assert response.status_code == 200
    text = visible(response)
    assert "Sum 2,040.5" in text and "Mean 680.167" in text
    assert "build 2 66.7% 1,240 620" in text  # the split by command
    assert "cache › hits" in text

    client.force_login(charlie)
    assert client.get(url(recent)).status_code == 404


def test_the_filters_apply_to_every_figure(client, bob, recent):
    client.force_login(bob)
    text = visible(client.get(url(recent, os="macos", type="command_execution", key="duration_ms")))
    assert "Sum 40 " in text and "1 event of this type" in text


def test_bad_choices_are_messages_not_errors(client, bob, recent):
    client.force_login(bob)
    cases = {
        url(recent, type="nope"): "No events of type “nope” in this range.",
        url(recent, key="nope"): "No key “nope” in command_execution events",
        url(recent, key="command", split="duration_ms"): "Only number keys can be split",
        url(recent, key="duration_ms", split="nope"): "“nope” cannot split duration_ms",
        url(recent, type="x" * 5000, key="%1F%00" * 100): "No events of type",
        url(recent, range="custom", start="2026-03-09", end="2026-03-01"): "The end date is before the start date.",
        url(recent, os="%00", version="a%00", key="duration_ms", split="command"): "duration_ms by command",
    }
    for address, message in cases.items():
        response = client.get(address)
        assert response.status_code == 200, address
        assert message in visible(response), address


def test_the_page_says_when_a_cap_is_hit(client, bob, app, settings):
    settings.CLACKS_PROPERTY_KEYS_PER_TYPE = 2
    settings.CLACKS_PROPERTY_VALUES = 1
    now = django_timezone.now()
    # The three events in one UTC hour, whenever the test runs (early in an hour, in the previous one).
    base = now - timedelta(minutes=5) if now.minute < 5 else now
    store(app, *(sdk_event(base - timedelta(minutes=m), data={"a": 1, "b": 2, "c": "v" * (m + 1), "d": m}) for m in (1, 2, 3)),
          now=now)  # fmt: skip
    client.force_login(bob)

    text = visible(client.get(url(app)))
    assert "Key limit reached on 1 day or hour of this range (up to 4 keys seen)" in text
    assert [row.label for row in report(app, now=now, period=stats.preset_range("24h", now=now)).keys] == ["a", "b"]

    settings.CLACKS_PROPERTY_KEYS_PER_TYPE = 50
    storage.forget_property_blocks(app.pk)
    text = visible(client.get(url(app, key="c")))
    assert "Value limit reached" in text and "Other values (past the limit of 1 a day) 2" in text


def test_the_page_says_how_many_events_are_not_summarised_yet(client, bob, recent, monkeypatch):
    monkeypatch.setattr(property_summaries, "READ_BUDGET", 1)
    client.force_login(bob)

    text = visible(client.get(url(recent, range="30d")))

    assert "2 of the range's 3 events are not in these figures yet" in text  # the newest hour fitted the budget
    assert "The background job properties adds them within minutes." in text


def test_filtered_figures_say_what_rare_combinations_leave_out(client, bob, app):
    store(app, sdk_event(MOMENTS[0], os="linux", data={"n": 1}), sdk_event(MOMENTS[0], os="macos", data={"n": 2}),
          sdk_event(MOMENTS[0], os="macos", data={"n": 4}), now=NOW)  # fmt: skip
    day = datetime(2026, 3, 8, tzinfo=UTC)
    summary = property_summaries.summarise_span(app.pk, PropertyBlock.DAY, day, caps=Caps(segments=1))
    storage.replace_property_block(app.pk, span=PropertyBlock.DAY, start=day, built_at=NOW, summary=summary)

    linux = report(app, filters=Filters(os="linux"), event_type="command_execution", key="n")
    assert linux.coverage.folded_events == 1 and linux.types == []  # linux was the rarer combination
    macos = report(app, filters=Filters(os="macos"), event_type="command_execution", key="n")
    assert macos.detail.number.total == 6
    assert report(app, event_type="command_execution", key="n").detail.number.total == 7  # unfiltered: every event

    client.force_login(bob)
    text = visible(client.get(url(app, range="custom", start="2026-03-08", end="2026-03-08", os="linux")))
    assert "Filtered figures leave out 1 event of rare version, OS, arch and CI combinations" in text
