"""A long range's figures of closed days come from a cache, and are never stale:
every change of the rollups of those days shows on the very next read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import stats
from telemetry import daily, sketches, storage
from telemetry.models import DailyActor, DailyRollup, DailySketch, Event
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app

UTC = dt_timezone.utc
NOW = datetime.now(UTC)
TODAY = NOW.date()


def ago(days: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


@pytest.fixture
def apps(app, org):
    """Three weeks of events in two apps, one of them also today."""
    other, _ = make_app(org, name="other-cli")
    store(
        app,
        *(
            sdk_event(
                ago(days, hour),
                user=f"u{days % 4}",
                os=("linux", "macos")[hour % 2],
                data={"command": ("build", "test")[days % 2], "success": days % 3 != 0, "duration_ms": 40 * days + hour},
            )
            for days in range(0, 21)
            for hour in ((1, 8, 15) if days else (0,))
        ),
        now=NOW,
    )
    store(other, *(sdk_event(ago(days), user="z", type="feature_used") for days in range(2, 12)), now=NOW)
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


def runs_read(queries) -> int:
    """How many runs of closed days had their figures read from the daily rollups (not the cache)."""
    table = DailyRollup._meta.db_table
    return sum(table in query["sql"] and "UNION ALL" in query["sql"] for query in queries)


def prepare(app_ids, period, *, runs: bool = False):
    with CaptureQueriesContext(connection) as queries:
        prepared = stats.with_daily_rollups(app_ids, period)
    read = runs_read(queries.captured_queries)
    return prepared, (read if runs else read > 0)


MONTH = stats.preset_range("30d", now=NOW)


def os_counts(app_ids, period) -> dict:
    [breakdown] = stats.breakdowns(app_ids, period=period, dimensions=["os"])
    return {row.value: row.count for row in breakdown.rows}


def test_a_second_read_takes_the_closed_days_from_the_cache(apps):
    first, read_first = prepare(apps, MONTH)
    second, read_second = prepare(apps, MONTH)

    assert first.figures is not None and second.figures is not None
    assert read_first and not read_second
    assert second.figures == first.figures


def test_cached_figures_are_the_figures_read_per_hour(apps, org):
    app_objects = list(org.apps.order_by("pk"))
    prepare(apps, MONTH)

    cached, read = prepare(apps, MONTH)

    assert not read
    assert everything(apps, cached, app_objects) == everything(apps, MONTH, app_objects)


def test_closed_days_are_read_in_two_runs_and_a_late_event_rereads_its_own(apps, app):
    _, cold = prepare(apps, MONTH, runs=True)
    store(app, sdk_event(ago(3, 5), user="late"), now=NOW)  # among the last seven days
    recent, after_recent = prepare(apps, MONTH, runs=True)
    store(app, sdk_event(ago(20, 5), user="later"), now=NOW)  # before them
    older, after_older = prepare(apps, MONTH, runs=True)

    assert (cold, after_recent, after_older) == (2, 1, 1)
    assert stats.summary(apps, period=older) == stats.summary(apps, period=MONTH)
    assert stats.breakdowns(apps, period=older) == stats.breakdowns(apps, period=MONTH)
    assert stats.summary(apps, period=older).events.current == stats.summary(apps, period=recent).events.current + 1


def test_prepared_figures_need_no_query_but_for_distinct_counts(apps, django_assert_num_queries):
    prepared, _ = prepare(apps, MONTH)

    with django_assert_num_queries(0):
        stats.events_over_time(apps, period=prepared)
        stats.breakdowns(apps, period=prepared)
        stats.command_stats(apps, period=prepared)
        stats.top_commands(apps, period=prepared)


def test_figures_of_other_apps_are_not_used(apps, app):
    prepared, _ = prepare(apps, MONTH)

    assert stats.summary([app.pk], period=prepared) == stats.summary([app.pk], period=MONTH)
    assert stats.breakdowns([app.pk], period=prepared) == stats.breakdowns([app.pk], period=MONTH)


def test_a_late_event_in_a_closed_day_shows_at_once(apps, app):
    before, _ = prepare(apps, MONTH)
    events = stats.summary(apps, period=before).events.current

    store(app, sdk_event(ago(5, 3), user="late", os="freebsd", data={"command": "deploy"}), now=NOW)
    after, read = prepare(apps, MONTH)

    assert read
    assert stats.summary(apps, period=after).events.current == events + 1
    assert os_counts(apps, after)["freebsd"] == 1
    assert "deploy" in [row.command for row in stats.top_commands(apps, period=after)]


def test_deleting_an_event_and_adding_another_on_the_same_day_shows_at_once(apps, app):
    """The day's total is the same afterwards; its breakdown is not."""
    prepare(apps, MONTH)
    before = os_counts(apps, MONTH)
    linux = Event.objects.filter(app=app, os="linux", timestamp__gte=ago(6, 0), timestamp__lt=ago(5, 0)).first()

    storage.delete_events(app.pk, [linux.pk])
    store(app, sdk_event(ago(6, 20), os="macos"), now=NOW)
    after, read = prepare(apps, MONTH)

    assert read
    assert os_counts(apps, after) == os_counts(apps, MONTH) == {**before, "linux": before["linux"] - 1, "macos": before["macos"] + 1}


def test_events_today_leave_the_cache_alone_and_still_count(apps, app):
    before, _ = prepare(apps, MONTH)
    events = stats.summary(apps, period=before).events.current

    store(app, sdk_event(ago(0, 0), os="windows"), now=NOW)
    after, read = prepare(apps, MONTH)

    assert not read
    assert stats.summary(apps, period=after).events.current == events + 1
    assert os_counts(apps, after)["windows"] == 1


def test_rebuilding_an_apps_rollups_changes_the_version(apps, app):
    first, last = daily.closed_days(MONTH.previous.start, MONTH.end)
    prepare(apps, MONTH)
    version = stats.rollup_version(apps, first, last)

    storage.rebuild_derived(app.pk)
    stale = stats.rollup_version(apps, first, last)
    _, read = prepare(apps, MONTH)

    assert not version.stale
    assert stale.stale[app.pk]
    assert read
    assert stats.rollup_version(apps, first, last).token != version.token


def test_the_version_stays_while_nothing_in_its_days_changes(apps, app):
    first, last = daily.closed_days(MONTH.previous.start, MONTH.end)
    prepare(apps, MONTH)
    version = stats.rollup_version(apps, first, last)

    store(app, sdk_event(ago(0, 0)), now=NOW)  # today is not one of its days
    assert stats.rollup_version(apps, first, last) == version

    store(app, sdk_event(ago(3, 5)), now=NOW)
    late = stats.rollup_version(apps, first, last)
    assert late.stale == {app.pk: [TODAY - timedelta(days=3)]}
    daily.build(late.stale)
    rebuilt = stats.rollup_version(apps, first, last)
    assert rebuilt.token != version.token
    # What a page does instead of reading the version again: the rebuilt days' rows only.
    assert late.rebuilt(stats._daily_totals(late.stale)) == rebuilt


def test_the_organization_page_shows_a_late_event_at_once(client, alice, org, apps, app):
    client.force_login(alice)
    url = reverse("dashboard:org_overview", kwargs={"org_id": org.public_id})

    before = client.get(url, {"range": "30d"}).context
    store(app, sdk_event(ago(9, 3), user="late", os="freebsd"), now=NOW)
    after = client.get(url, {"range": "30d"}).context

    assert after["summary"].events.current == before["summary"].events.current + 1
    events = {row.app.pk: row.events for row in before["activity"]}
    assert {row.app.pk: row.events for row in after["activity"]} == {**events, app.pk: events[app.pk] + 1}
    os_rows = next(b for b in after["breakdowns"] if b.dimension == "os").rows
    assert ("freebsd", 1) in [(row.value, row.count) for row in os_rows]


# --- Distinct counts merged from sketches ------------------------------------------------------


@pytest.fixture
def large(monkeypatch):
    """Make every range 'large', so distinct counts merge daily sketches."""
    monkeypatch.setattr(sketches, "EXACT_UP_TO", 10)


def sketch_reads(queries) -> int:
    return sum(DailySketch._meta.db_table in query["sql"] and query["sql"].lstrip().startswith("SELECT") for query in queries)


def age_sketches():
    DailySketch.objects.update(built_at=timezone.now() - timedelta(minutes=5))


def test_merged_sketches_of_closed_days_count_as_merging_them_one_by_one(apps, org, large):
    app_objects = list(org.apps.order_by("pk"))
    prepare(apps, MONTH)
    cached, _ = prepare(apps, MONTH)

    figures = everything(apps, cached, app_objects)

    assert figures["summary"].users.estimated
    assert figures == everything(apps, MONTH, app_objects)


def test_a_second_read_merges_only_todays_sketches(apps, org, large):
    app_objects = list(org.apps.order_by("pk"))
    first, _ = prepare(apps, MONTH)
    with CaptureQueriesContext(connection) as cold:
        stats.summary(apps, period=first)
        stats.app_activity(app_objects, period=first)
    second, _ = prepare(apps, MONTH)

    with CaptureQueriesContext(connection) as warm:
        summary = stats.summary(apps, period=second)
        stats.app_activity(app_objects, period=second)

    assert summary == stats.summary(apps, period=first)
    # Cold: the closed days' sketches and today's, for the summary and per app; warm: today's only.
    assert sketch_reads(cold.captured_queries) == 4
    assert sketch_reads(warm.captured_queries) == 2
    today = [q["sql"] for q in warm.captured_queries if DailySketch._meta.db_table in q["sql"]]
    assert all(str(TODAY) in sql or TODAY.isoformat() in sql for sql in today)


@pytest.mark.parametrize("days_ago", [4, 20], ids=["recent day", "older day"])
def test_a_new_user_on_a_closed_day_counts_at_once(apps, app, large, days_ago):
    before, _ = prepare(apps, MONTH)
    users = stats.summary(apps, period=before).users.current
    age_sketches()

    store(app, sdk_event(ago(days_ago, 2), user="newcomer"), now=NOW)
    after, _ = prepare(apps, MONTH)

    assert stats.summary(apps, period=after).users.current == users + 1
    assert stats.summary(apps, period=after) == stats.summary(apps, period=MONTH)


def test_a_merge_of_a_sketch_used_while_young_is_not_kept(apps, app, large):
    built, _ = prepare(apps, MONTH)
    users = stats.summary(apps, period=built).users.current  # builds the sketches
    store(app, sdk_event(ago(4, 2), user="newcomer"), now=NOW)
    young, _ = prepare(apps, MONTH)
    # That day's sketch is under a minute old: used as it is, without the newcomer.
    assert stats.summary(apps, period=young).users.current == users

    age_sketches()
    again, read = prepare(apps, MONTH)

    assert not read  # the same version: the closed days' figures come from the cache
    assert stats.summary(apps, period=again).users.current == users + 1


def distinct_counts_read(queries) -> int:
    """How many distinct counts the queries took from the daily actors."""
    return sum(query["sql"].count("COUNT(DISTINCT") for query in queries if DailyActor._meta.db_table in query["sql"])


def test_exact_counts_of_the_previous_period_are_kept_until_it_changes(apps, app, monkeypatch):
    # Few user-days in each period, too many events in both together: exact counts past the sketches.
    monkeypatch.setattr(sketches, "EXACT_UP_TO", 20)
    week = stats.preset_range("7d", now=NOW)
    first, _ = prepare(apps, week)
    with CaptureQueriesContext(connection) as cold:
        before = stats.summary(apps, period=first)
    second, _ = prepare(apps, week)
    with CaptureQueriesContext(connection) as warm:
        again = stats.summary(apps, period=second)

    assert again == before == stats.summary(apps, period=week)
    assert not before.users.estimated
    assert distinct_counts_read(cold.captured_queries) == 4  # users and sessions, this week and the one before
    assert distinct_counts_read(warm.captured_queries) == 2  # this week's only

    store(app, sdk_event(ago(10, 4), user="newcomer", session="s-new"), now=NOW)
    late, _ = prepare(apps, week)
    after = stats.summary(apps, period=late)

    assert (after.users.previous, after.sessions.previous) == (before.users.previous + 1, before.sessions.previous + 1)
    assert after == stats.summary(apps, period=week)


# --- Ranges counted per hour -------------------------------------------------------------------


@pytest.mark.parametrize(
    "period",
    [
        stats.preset_range("24h", now=NOW),
        stats.Period(start=ago(2, 5), end=ago(0, 0)),  # 43 hours across three UTC days
    ],
    ids=["24h", "43 hours"],
)
def test_a_range_counted_per_hour_reads_its_figures_once(apps, org, period, django_assert_num_queries, large):
    app_objects = list(org.apps.order_by("pk"))
    store(org.apps.get(pk=apps[0]), sdk_event(ago(1, 23), user="evening", os="freebsd"), now=NOW)

    prepared = stats.with_daily_rollups(apps, period)

    assert prepared.hourly and prepared.figures is not None
    with django_assert_num_queries(0):
        stats.events_over_time(apps, period=prepared)
        stats.breakdowns(apps, period=prepared)
        stats.command_stats(apps, period=prepared)
        stats.top_commands(apps, period=prepared)
    assert everything(apps, prepared, app_objects) == everything(apps, period, app_objects)
