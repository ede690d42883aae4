"""dashboard.stats: exact numbers on a small seeded history."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dashboard import stats
from dashboard.stats import Cursor, EventFilters, Period
from telemetry.models import Event
from telemetry.rollups import bucket_range, duration_bucket
from tests.dashboard.conftest import NOW, sdk_event, store
from tests.factories import make_app

UTC = timezone.utc


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def history(app, org):
    """Five events this week, two the week before, one older, and one in another app."""
    store(
        app,
        # The last 7 days (2026-03-04 00:00 to 2026-03-11 00:00 UTC).
        sdk_event(at(10, 10, 15), user="a", session="s1", data={"command": "build", "success": True, "duration_ms": 100}),
        sdk_event(at(10, 11), user="a", session="s1", data={"command": "build", "success": False, "duration_ms": 300}),
        sdk_event(
            at(9, 9), user="b", session="s2", os="macos", arch="aarch64", ci=True, version="1.3.0",
            data={"command": "test", "success": True, "duration_ms": 200},
        ),
        sdk_event(
            at(4, 0), user="c", session=None, type="feature_used", category="library", os="windows", ci=None,
            version="1.3.0", data={"feature": "auth", "success": True},
        ),
        sdk_event(at(8), user="b", session="s3", data={"command": "test", "duration_ms": "slow"}),
        # The 7 days before.
        sdk_event(at(3, 23, 59, 59), user="a", session="s0"),
        sdk_event(at(26, month=2), user="d", session="s9"),
        # Older than both.
        sdk_event(at(24, 23, month=2), user="e", session="s8"),
    )
    other, _ = make_app(org, name="other-cli")
    store(other, sdk_event(at(10, 9), user="z", session="sz"))
    return app, other


def week() -> Period:
    return stats.preset_range("7d", now=NOW)


# --- Ranges ---------------------------------------------------------------------------------


def test_presets_end_with_the_current_utc_hour_or_day():
    assert stats.preset_range("24h", now=NOW) == Period(start=at(9, 13), end=at(10, 13))
    assert week() == Period(start=at(4, 0), end=at(11, 0))
    assert stats.preset_range("90d", now=NOW).start == datetime(2025, 12, 11, tzinfo=UTC)


def test_a_range_of_up_to_48_hours_is_counted_per_hour_and_longer_ones_per_day():
    assert stats.period_of_days(date(2026, 3, 9), date(2026, 3, 10)).bucket == "hour"
    assert stats.period_of_days(date(2026, 3, 8), date(2026, 3, 10)).bucket == "day"


def test_the_previous_period_has_the_same_length_and_ends_where_the_period_starts():
    assert week().previous == Period(start=at(25, 0, month=2), end=at(4, 0))


# --- Totals ---------------------------------------------------------------------------------


def test_summary_counts_events_users_and_sessions_against_the_previous_period(history):
    app, _ = history

    summary = stats.summary([app.pk], period=week())

    assert (summary.events.current, summary.events.previous) == (5, 2)
    assert summary.events.percent == 150.0
    assert (summary.users.current, summary.users.previous) == (3, 2)  # a, b, c against a, d
    assert (summary.sessions.current, summary.sessions.previous) == (3, 2)  # no session is not one
    assert summary.users.percent == 50.0


def test_an_organization_summary_counts_every_app(history):
    app, other = history

    summary = stats.summary([app.pk, other.pk], period=week())

    assert (summary.events.current, summary.users.current, summary.sessions.current) == (6, 4, 4)


def test_change_against_an_empty_previous_period_is_none(history):
    app, _ = history
    first_week = stats.period_of_days(date(2026, 2, 18), date(2026, 2, 24))

    summary = stats.summary([app.pk], period=first_week)

    assert (summary.events.current, summary.events.previous) == (1, 0)
    assert summary.events.percent is None


def test_has_events_tells_an_app_that_never_received_one(history, org):
    app, _ = history
    empty, _ = make_app(org, name="silent")

    assert stats.has_events([app.pk]) is True
    assert stats.has_events([empty.pk]) is False


# --- Over time --------------------------------------------------------------------------------


def test_events_per_day_include_the_days_without_events_as_zero(history):
    app, _ = history

    buckets = stats.events_over_time([app.pk], period=week())

    assert [(b.start.day, b.count) for b in buckets] == [(4, 1), (5, 0), (6, 0), (7, 0), (8, 1), (9, 1), (10, 2)]


def test_events_per_hour_over_the_last_24_hours(history):
    app, _ = history

    buckets = stats.events_over_time([app.pk], period=stats.preset_range("24h", now=NOW))

    assert len(buckets) == 24
    assert buckets[0].start == at(9, 13)
    assert {b.start.hour: b.count for b in buckets if b.count} == {10: 1, 11: 1}
    assert sum(b.count for b in buckets) == 2


# --- Breakdowns --------------------------------------------------------------------------------


def test_breakdowns_count_each_value_with_its_share(history):
    app, _ = history

    by = {b.dimension: b for b in stats.breakdowns([app.pk], period=week())}

    assert [(r.label, r.count) for r in by["event_type"].rows] == [("command_execution", 4), ("feature_used", 1)]
    assert [(r.label, r.count, r.share) for r in by["os"].rows] == [
        ("linux", 3, 60.0), ("macos", 1, 20.0), ("windows", 1, 20.0),
    ]
    assert [(r.label, r.count) for r in by["ci"].rows] == [("Not CI", 3), ("CI", 1), ("Unknown", 1)]
    assert [(r.label, r.count) for r in by["service_version"].rows] == [("1.2.0", 3), ("1.3.0", 2)]
    assert [(r.label, r.count) for r in by["category"].rows] == [("usage", 4), ("library", 1)]
    assert [(r.label, r.count) for r in by["arch"].rows] == [("x86_64", 4), ("aarch64", 1)]
    assert all(b.total == 5 and b.other == 0 for b in by.values())


def test_values_past_the_limit_are_counted_as_other(history):
    app, _ = history

    (os_breakdown,) = stats.breakdowns([app.pk], period=week(), dimensions=["os"], limit=1)

    assert [(r.label, r.count) for r in os_breakdown.rows] == [("linux", 3)]
    assert os_breakdown.other == 2


def test_breakdowns_of_an_empty_period_have_no_rows(history):
    app, _ = history
    empty = stats.period_of_days(date(2026, 1, 1), date(2026, 1, 7))

    assert all(b.rows == [] and b.total == 0 for b in stats.breakdowns([app.pk], period=empty))


# --- Commands ----------------------------------------------------------------------------------


def histogram_reading(*exact: int) -> tuple[float, ...]:
    """What the rollups' duration histogram reports for these exact nearest-rank
    values: the middle of the bucket holding each (telemetry.rollups)."""
    readings = []
    for value in exact:
        low, high = bucket_range(duration_bucket(value))
        readings.append((low + high - 1) / 2)
        assert readings[-1] == pytest.approx(value, rel=0.12)
    return tuple(readings)


def test_command_stats_count_outcomes_and_percentiles_of_numeric_durations(history):
    app, _ = history

    commands = stats.command_stats([app.pk], period=week())

    assert (commands.runs, commands.with_outcome, commands.succeeded, commands.timed) == (4, 3, 2, 3)
    assert commands.success_rate == pytest.approx(200 / 3)
    assert (commands.p50_ms, commands.p90_ms, commands.p99_ms) == histogram_reading(200, 300, 300)


def test_duration_percentiles_are_nearest_rank_over_a_hundred_runs(app):
    store(
        app,
        *[
            sdk_event(at(10, 1) + timedelta(seconds=i), data={"command": "x", "success": i % 4 != 0, "duration_ms": ms})
            for i, ms in enumerate(range(100, 0, -1))
        ],
    )

    commands = stats.command_stats([app.pk], period=week())

    assert (commands.p50_ms, commands.p90_ms, commands.p99_ms) == histogram_reading(50, 90, 99)
    assert commands.success_rate == 75.0


def test_small_durations_are_exact_and_large_ones_within_the_bucket_width(app):
    store(app, *[sdk_event(at(10, 1), data={"command": "x", "duration_ms": ms}) for ms in (3, 3, 3, 7, 12_345)])

    commands = stats.command_stats([app.pk], period=week())

    assert commands.p50_ms == 3
    assert commands.p99_ms == pytest.approx(12_345, rel=0.12)


def test_command_stats_without_command_events_are_empty(app):
    store(app, sdk_event(at(10, 1), type="feature_used", data={"feature": "f", "duration_ms": 5}))

    commands = stats.command_stats([app.pk], period=week())

    assert commands.runs == 0
    assert commands.success_rate is None
    assert commands.p50_ms is None


def test_top_commands_group_runs_by_command_name(history):
    app, _ = history

    rows = stats.top_commands([app.pk], period=week())

    assert [(r.command, r.runs, r.succeeded, r.failed, r.avg_ms) for r in rows] == [
        ("build", 2, 1, 1, 200.0),
        ("test", 2, 1, 0, 200.0),  # "slow" is no duration
    ]
    assert rows[0].success_rate == 50.0


# --- Per app -----------------------------------------------------------------------------------


def test_app_activity_lists_each_apps_events_users_and_latest_event(history, org):
    app, other = history
    silent, _ = make_app(org, name="silent")

    activity = {a.app.name: a for a in stats.app_activity([app, other, silent], period=week())}

    assert (activity["my-cli"].events, activity["my-cli"].users, activity["my-cli"].last_event_at) == (5, 3, at(10, 11))
    assert (activity["other-cli"].events, activity["other-cli"].last_event_at) == (1, at(10, 9))
    assert (activity["silent"].events, activity["silent"].users, activity["silent"].last_event_at) == (0, 0, None)


# --- The explorer ------------------------------------------------------------------------------


def test_recent_events_come_newest_first_and_page_by_keyset(history):
    app, _ = history
    everything = EventFilters()

    first = stats.recent_events(app.pk, filters=everything, limit=3)
    second = stats.recent_events(app.pk, filters=everything, before=first.older, limit=3)
    third = stats.recent_events(app.pk, filters=everything, before=second.older, limit=3)

    assert [e.timestamp for e in first.events] == [at(10, 11), at(10, 10, 15), at(9, 9)]
    assert first.newer is None
    assert [e.timestamp for e in second.events] == [at(8), at(4, 0), at(3, 23, 59, 59)]
    assert [e.timestamp for e in third.events] == [at(26, month=2), at(24, 23, month=2)]
    assert third.older is None

    back = stats.recent_events(app.pk, filters=everything, after=third.newer, limit=3)
    assert [e.timestamp for e in back.events] == [e.timestamp for e in second.events]
    assert back.newer is not None
    assert stats.recent_events(app.pk, filters=everything, after=back.newer, limit=3).newer is None


def test_events_with_the_same_timestamp_are_neither_skipped_nor_repeated(app):
    store(app, *[sdk_event(at(10, 1), user=f"u{i}") for i in range(5)])
    seen = []
    page = stats.recent_events(app.pk, filters=EventFilters(), limit=2)
    while True:
        seen += [e.pk for e in page.events]
        if page.older is None:
            break
        page = stats.recent_events(app.pk, filters=EventFilters(), before=page.older, limit=2)

    assert sorted(seen) == sorted(Event.objects.filter(app=app).values_list("pk", flat=True))
    assert len(seen) == 5


def test_recent_events_filter_by_type_user_session_and_time(history):
    app, _ = history

    def timestamps(**filters):
        return [e.timestamp for e in stats.recent_events(app.pk, filters=EventFilters(**filters)).events]

    assert timestamps(event_type="feature_used") == [at(4, 0)]
    assert timestamps(user_id="client_b") == [at(9, 9), at(8)]
    assert timestamps(session_id="s1") == [at(10, 11), at(10, 10, 15)]
    assert timestamps(start=at(8), end=at(10, 11)) == [at(10, 10, 15), at(9, 9), at(8)]


def test_the_explorer_shows_what_command_or_feature_an_event_was(history):
    app, _ = history

    events = stats.recent_events(app.pk, filters=EventFilters(session_id="s1")).events

    assert [e.command for e in events] == ["build", "build"]


def test_a_cursor_survives_its_text_form_and_garbage_is_no_cursor():
    cursor = Cursor(timestamp=datetime(2026, 3, 10, 1, 2, 3, 456789, tzinfo=UTC), pk=42)

    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode("nonsense") is None
    assert Cursor.decode("99999999999999999999-1") is None
    assert Cursor.decode(f"1-{2**63}") is None  # past the bigint primary key
    assert Cursor.decode("") is None


def test_event_type_suggestions_come_from_the_latest_events_most_frequent_first(history):
    app, _ = history

    assert stats.recent_event_types(app.pk) == ["command_execution", "feature_used"]
    # The 4 latest events are all commands; the feature_used one is older.
    assert stats.recent_event_types(app.pk, sample=4) == ["command_execution"]


def test_the_event_document_has_the_sdks_shape(history):
    app, _ = history
    event = Event.objects.get(app=app, timestamp=at(4, 0))

    document = stats.event_document(stats.get_event(app.pk, event.event_id))

    assert document["event"] == {"type": "feature_used", "category": "library", "data": {"feature": "auth", "success": True}}
    assert document["environment"] == {"os": "windows", "arch": "x86_64", "shell": "bash"}
    assert "session_id" not in document
    assert document["timestamp"] == "2026-03-04T00:00:00Z"
