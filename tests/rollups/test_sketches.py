"""Distinct users and sessions: exact for small ranges, merged daily sketches beyond, never stale for long."""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta, timezone

import pytest
from django.core.management import call_command
from django.urls import reverse

from telemetry import sketches, storage
from telemetry.models import DailyActor, DailyRollup, DailySketch, Event
from tests.factories import iso, make_app, make_event
from tests.rollups.test_rollups import store

UTC = timezone.utc
TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=5 - i) for i in range(3)]  # three whole past days
USERS_PER_DAY = 1000  # each day half new users, half the day before's


def fill(app, days=DAYS, *, offset=0):
    """Per day USERS_PER_DAY events, one per user, each in its own session."""
    for d, day in enumerate(days):
        noon = datetime.combine(day, time(12), tzinfo=UTC)
        events = [
            make_event(timestamp=iso(noon), user_id=f"client_{offset + d * 500 + i}", session_id=f"s{offset}-{d}-{i}")
            for i in range(USERS_PER_DAY)
        ]
        store(app, events)


def exact(app_ids, kind, first, last) -> int:
    return (
        DailyActor.objects.filter(app_id__in=app_ids, kind=kind, day__gte=first, day__lte=last)
        .values("actor")
        .distinct()
        .count()
    )


def close_to(estimate: sketches.Distinct, truth: int) -> bool:
    # lg_k 12 has a relative standard error of 1.6 %; 5 % is three of them.
    return estimate.estimated and abs(estimate.count - truth) <= 0.05 * truth


@pytest.fixture
def large(monkeypatch):
    """Make every range 'large', so reads go through the sketches."""
    monkeypatch.setattr(sketches, "EXACT_UP_TO", 10)


def test_small_ranges_are_counted_exactly_without_sketches(app):
    fill(app)

    counts = sketches.count_distinct([app.pk], spans=[(DAYS[0], DAYS[2]), (DAYS[1], DAYS[1])])

    assert counts["u"] == [sketches.Distinct(2000), sketches.Distinct(1000)]
    assert counts["s"] == [sketches.Distinct(3000), sketches.Distinct(1000)]
    assert not DailySketch.objects.exists()


def test_large_ranges_merge_daily_sketches_to_within_a_few_percent(app, large):
    fill(app)

    counts = sketches.count_distinct([app.pk], spans=[(DAYS[0], DAYS[2]), (DAYS[0], DAYS[0]), (TODAY, TODAY)])

    assert exact([app.pk], "u", DAYS[0], DAYS[2]) == 2000
    assert close_to(counts["u"][0], 2000)
    assert close_to(counts["u"][1], 1000)
    assert close_to(counts["s"][0], 3000)
    assert counts["u"][2] == sketches.Distinct(0)  # nothing to estimate
    built = DailySketch.objects.filter(app=app)
    assert sorted(built.values_list("kind", "day", "actors")) == sorted(
        [(kind, day, USERS_PER_DAY) for kind in "su" for day in DAYS]
    )


def test_apps_are_counted_apart_and_together(app, org, large):
    other, _ = make_app(org, name="other")
    fill(app)
    fill(other, DAYS[:1], offset=100_000)  # 1,000 users of its own

    per_app = sketches.count_distinct_per_app([app.pk, other.pk], kind="u", span=(DAYS[0], DAYS[2]))
    together = sketches.count_distinct([app.pk, other.pk], spans=[(DAYS[0], DAYS[2])], kinds=["u"])

    assert close_to(per_app[app.pk], 2000)
    assert close_to(per_app[other.pk], 1000)
    assert close_to(together["u"][0], 3000)


def test_a_late_event_rebuilds_its_days_sketch_once_the_old_one_is_a_minute_old(app, large):
    fill(app)
    built_at = datetime.now(UTC)
    sketches.fresh_sketches([app.pk], first=DAYS[0], last=DAYS[2], now=built_at)
    late = datetime.combine(DAYS[0], time(18), tzinfo=UTC)
    store(app, [make_event(timestamp=iso(late), user_id=f"client_late{i}", session_id=f"late{i}") for i in range(500)])

    def actors_on_day_one(now):
        fresh = sketches.fresh_sketches([app.pk], kinds=["u"], first=DAYS[0], last=DAYS[0], now=now)
        return [sketch.actors for sketch in fresh]

    assert actors_on_day_one(built_at + timedelta(seconds=30)) == [1000]  # young enough to be used as it is
    assert actors_on_day_one(built_at + timedelta(minutes=2)) == [1500]
    assert close_to(sketches.count_distinct([app.pk], spans=[(DAYS[0], DAYS[2])])["u"][0], 2500)


def test_deleting_events_drops_the_sketches_of_their_days(app, large):
    fill(app)
    sketches.refresh(app.pk)
    doomed = Event.objects.filter(app=app, timestamp__date=DAYS[1], user_id__in=[f"client_{500 + i}" for i in range(600)])

    storage.delete_events(app.pk, list(doomed.values_list("pk", flat=True)))

    assert sorted(DailySketch.objects.filter(app=app).values_list("day", flat=True).distinct()) == [DAYS[0], DAYS[2]]
    counts = sketches.count_distinct([app.pk], spans=[(DAYS[1], DAYS[1])])
    assert close_to(counts["u"][0], 400)
    assert DailySketch.objects.get(app=app, kind="u", day=DAYS[1]).actors == 400


def test_sketches_after_a_rebuild_are_the_ones_ingest_led_to(app, large):
    fill(app)
    sketches.refresh(app.pk)

    def stored():
        return {(s.kind, s.day): (s.actors, s.events, bytes(s.sketch)) for s in DailySketch.objects.filter(app=app)}

    before = stored()
    call_command("rebuild_rollups", app.public_id, stdout=io.StringIO())

    assert stored() == before


def test_refresh_rollups_builds_what_is_missing_and_then_nothing(app):
    fill(app)
    out = io.StringIO()

    call_command("refresh_rollups", stdout=out)
    call_command("refresh_rollups", stdout=out)

    assert out.getvalue().splitlines()[-2:] == ["Done: 6 sketches built.", "Done: 0 sketches built."]
    assert sorted(DailyRollup.objects.filter(app=app, dimension="total").values_list("day", "events")) == [
        (day, USERS_PER_DAY) for day in DAYS
    ]


def test_pages_mark_estimated_counts(client, alice, org, app, large):
    fill(app)
    client.force_login(alice)
    query = {"range": "custom", "start": DAYS[0].isoformat(), "end": DAYS[2].isoformat()}

    app_page = client.get(reverse("dashboard:app_overview", args=[org.public_id, app.public_id]), query)
    org_page = client.get(reverse("dashboard:org_overview", args=[org.public_id]), query)

    assert app_page.status_code == org_page.status_code == 200
    assert app_page.content.decode().count('class="estimate"') == 2  # users and sessions
    assert org_page.content.decode().count('class="estimate"') == 3  # and the app's row


def test_a_range_with_many_events_but_few_user_days_is_still_counted_exactly(app, monkeypatch):
    monkeypatch.setattr(sketches, "EXACT_UP_TO", 2500)
    fill(app)  # 3,000 events: past the limit, so the sketches' per-day counts decide

    users = sketches.count_distinct([app.pk], spans=[(DAYS[0], DAYS[1]), (DAYS[0], DAYS[2])], kinds=["u"])["u"]

    assert users[0] == sketches.Distinct(1500)  # 2,000 user-days: counted
    assert close_to(users[1], 2000)  # 3,000 user-days: estimated
