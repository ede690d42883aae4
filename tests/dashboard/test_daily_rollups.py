"""Long ranges read daily rollups for their closed days: the numbers are the same as from hourly rollups."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dashboard import stats
from telemetry import daily, storage
from telemetry.models import DailyRollup, Event
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app

UTC = timezone.utc
NOW = datetime.now(UTC)
TODAY = NOW.date()


def ago(days: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


@pytest.fixture
def apps(app, org):
    """A month of varied events in two apps, some today (never rolled up per day)."""
    other, _ = make_app(org, name="other-cli")
    commands = ("build", "test", "run")
    events = [
        sdk_event(
            ago(days, hour),
            user=f"u{days % 5}",
            session=f"s{days}-{hour}",
            os=("linux", "macos", "windows")[days % 3],
            ci=(None, True, False)[hour % 3],
            version=f"1.{days % 4}.0",
            data={"command": commands[days % 3], "success": days % 4 != 0, "duration_ms": 10 * days + hour},
        )
        for days in range(0, 40)
        for hour in ((0, 7, 23) if days else (0,))  # today: nothing in the future
    ]
    store(app, *events, now=NOW)
    store(other, *(sdk_event(ago(days), user="z", type="feature_used") for days in range(3, 20)), now=NOW)
    return [app.pk, other.pk]


def everything(app_ids, period, app_objects):
    return {
        "summary": stats.summary(app_ids, period=period),
        "chart": stats.events_over_time(app_ids, period=period),
        "breakdowns": stats.breakdowns(app_ids, period=period),
        "commands": stats.command_stats(app_ids, period=period),
        "top": stats.top_commands(app_ids, period=period),
        "activity": [(a.app.pk, a.events, a.users) for a in stats.app_activity(app_objects, period=period)],
    }


def periods():
    yield stats.preset_range("7d", now=NOW)
    yield stats.preset_range("30d", now=NOW)
    yield stats.period_of_days(TODAY - timedelta(days=35), TODAY - timedelta(days=2))  # all closed days
    yield stats.period_of_days(TODAY - timedelta(days=5), TODAY - timedelta(days=3))  # the shortest range read per day


@pytest.mark.parametrize("period", list(periods()), ids=["7d", "30d", "past", "three days"])
def test_every_number_is_the_same_read_per_day_or_per_hour(apps, org, period):
    app_objects = list(org.apps.order_by("pk"))

    hourly = everything(apps, period, app_objects)
    prepared = stats.with_daily_rollups(apps, period)

    assert prepared.daily is not None and prepared.figures is not None
    assert DailyRollup.objects.exists()
    assert everything(apps, prepared, app_objects) == hourly


def test_the_current_day_is_never_rolled_up_per_day(apps):
    stats.with_daily_rollups(apps, stats.preset_range("30d", now=NOW))

    days = set(DailyRollup.objects.values_list("day", flat=True))
    assert TODAY not in days
    assert TODAY - timedelta(days=1) in days


def test_a_late_event_rebuilds_its_day(apps, app):
    period = stats.preset_range("30d", now=NOW)
    before = stats.summary(apps, period=stats.with_daily_rollups(apps, period)).events.current

    store(app, sdk_event(ago(5, 3), user="late", data={"command": "deploy"}), now=NOW)
    prepared = stats.with_daily_rollups(apps, period)

    assert stats.summary(apps, period=prepared).events.current == before + 1
    assert [row.command for row in stats.top_commands(apps, period=prepared)] == [
        row.command for row in stats.top_commands(apps, period=period)
    ]
    assert DailyRollup.objects.get(app=app, day=TODAY - timedelta(days=5), dimension="command", value="deploy").events == 1


def test_deleting_events_drops_the_daily_rollups_of_their_days(apps, app):
    period = stats.preset_range("30d", now=NOW)
    stats.with_daily_rollups(apps, period)
    doomed = Event.objects.filter(app=app, timestamp__gte=ago(6, 0), timestamp__lt=ago(5, 0))

    storage.delete_events(app.pk, list(doomed.values_list("pk", flat=True)))

    assert not DailyRollup.objects.filter(app=app, day=TODAY - timedelta(days=6)).exists()
    assert DailyRollup.objects.filter(app=app, day=TODAY - timedelta(days=7)).exists()
    assert stats.summary(apps, period=stats.with_daily_rollups(apps, period)) == stats.summary(apps, period=period)


def test_rebuilding_the_rollups_drops_the_apps_daily_rollups(apps, app):
    stats.with_daily_rollups(apps, stats.preset_range("30d", now=NOW))

    storage.rebuild_derived(app.pk)

    assert not DailyRollup.objects.filter(app=app).exists()
    assert DailyRollup.objects.exclude(app=app).exists()


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC), (date(2026, 3, 1), date(2026, 3, 3))),
        (datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 3, 4, 5, tzinfo=UTC), (date(2026, 3, 2), date(2026, 3, 3))),
        (datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 3, 2, 5, tzinfo=UTC), None),
        (datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC), (date(2026, 3, 8), date(2026, 3, 9))),
    ],
)
def test_closed_days_are_whole_and_over(start, end, expected):
    assert daily.closed_days(start, end, now=datetime(2026, 3, 10, 12, tzinfo=UTC)) == expected
