"""The Releases page: every figure against a brute-force count over the raw
events, on random data (both databases), and the page itself."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dashboard import releases, stats, versions
from dashboard.filters import Filters
from telemetry.models import Event
from telemetry.periods import UTC, start_of_day
from tests.dashboard.conftest import NOW, sdk_event, store
from tests.factories import make_app

TODAY = NOW.date()
LONG = "3.0.0-" + "x" * 70  # longer than the 64 characters a rollup value keeps of a version
VERSIONS = ["1.0.0", "v1.1.0", "1.9.2-rc.1", "1.9.2", "1.10.0", "2.0.0-beta", "nightly", "2024.1", "1.0.0+build.7", LONG]
USERS = ["a", "b", "c", "d", "e", "f"]
OFFSETS = [timedelta(0), timedelta(hours=-8), timedelta(hours=5, minutes=30), timedelta(hours=14), timedelta(hours=-11)]


# --- Brute force over Event rows -------------------------------------------------------------


def raw_events(app, filters: Filters) -> list[dict]:
    """The app's stored events that match the filters other than version."""
    rows = Event.objects.filter(app=app).values("timestamp", "user_id", "service_version", "os", "arch", "ci", "event_type")
    return [
        row
        for row in rows
        if (filters.os is None or row["os"] == filters.os)
        and (filters.arch is None or row["arch"] == filters.arch)
        and (filters.ci is None or row["ci"] is filters.ci)
    ]


def brute(app, *, filters: Filters, period: stats.Period, today: date, limit: int) -> dict:
    events = raw_events(app, filters)
    ran: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # day -> user -> versions
    for row in events:
        ran[row["timestamp"].astimezone(UTC).date()][row["user_id"]].add(row["service_version"])
    first_seen: dict[str, date] = {}
    for day in sorted(ran):
        for names in ran[day].values():
            for name in names:
                first_seen.setdefault(name, day)
    order = versions.newest_first({name: start_of_day(day) for name, day in first_seen.items()})

    def newest_of(names) -> str:
        return min(names, key=order.index)

    # The chart: each day's users under the newest version they ran that day.
    first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_version: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for i, day in enumerate(days):
        for names in ran.get(day, {}).values():
            per_version[newest_of(names)][i] += 1
    active = [len(ran.get(day, {})) for day in days]

    # The last 7 days.
    week_users: dict[str, set[str]] = defaultdict(set)
    for day in (today - timedelta(days=i) for i in range(7)):
        for user, names in ran.get(day, {}).items():
            week_users[user] |= names
    in_range = [row for row in events if period.start <= row["timestamp"] < period.end]
    return {
        "order": order,
        "first_seen": first_seen,
        "days": days,
        "active": active,
        "per_version": dict(per_version),
        "ran_per_day": {
            name: [sum(name in names for names in ran.get(day, {}).values()) for day in days] for name in first_seen
        },
        "week_users": week_users,
        "events": Counter(row["service_version"] for row in in_range),
        "runs": Counter(row["service_version"] for row in in_range if row["event_type"] == "command_execution"),
        "ran": ran,
        "newest_of": newest_of,
        "listed": {name for day in days for names in ran.get(day, {}).values() for name in names}
        | {name for names in week_users.values() for name in names}
        | {row["service_version"] for row in in_range},
    }


def check_every_figure(app, *, filters: Filters, period: stats.Period, limit: int) -> None:
    truth = brute(app, filters=filters, period=period, today=TODAY, limit=limit)
    history = releases.history([app.pk], filters=filters, today=TODAY)
    week = releases.window([app.pk], filters=filters, today=TODAY)
    assert history.order == truth["order"]
    assert history.first_seen == truth["first_seen"]

    # Users per version per day.
    chart = releases.daily_users(history, period=period, version=filters.version)
    assert chart.days == truth["days"]
    assert chart.active == truth["active"]
    if filters.version is None:
        shown = {series.version: series.per_day for series in chart.series if series.version is not None}
        top = sorted(truth["per_version"], key=lambda name: (-sum(truth["per_version"][name]), truth["order"].index(name)))
        assert set(shown) == set(top[: releases.TOP_VERSIONS])
        for name, per_day in shown.items():
            assert per_day == truth["per_version"][name]
        rest = [name for name in top if name not in shown]
        summed = [sum(truth["per_version"][name][i] for name in rest) for i in range(len(chart.days))]
        assert (chart.rest.per_day if chart.rest else [0] * len(chart.days)) == summed
        # A user counts once a day: the stack is the day's active users.
        assert [sum(series.per_day[i] for series in chart.series) for i in range(len(chart.days))] == truth["active"]
    else:
        expected = truth["ran_per_day"].get(filters.version, [0] * len(chart.days))
        assert [series.per_day for series in chart.series] == [expected]

    # The versions table.
    table = releases.version_table([app.pk], history, week, period=period, filters=filters)
    week_users = truth["week_users"]
    listed = truth["listed"] if filters.version is None else truth["listed"] & {filters.version}
    assert [row.version for row in table.rows] == [name for name in truth["order"] if name in listed]
    assert table.window.users == len(week_users)
    for row in table.rows:
        users = sum(row.version in names for names in week_users.values())
        assert row.users == users
        assert row.share == (users * 100 / len(week_users) if week_users else None)
        assert row.first_seen == truth["first_seen"][row.version]
        assert row.behind == truth["order"].index(row.version)
        assert row.events == truth["events"][row.version]
        assert row.runs == truth["runs"][row.version]

    # The rollout of the newest version (or of the filtered one).
    rollout = releases.rollout(history, version=filters.version)
    target = filters.version if filters.version is not None else (truth["order"][0] if truth["order"] else None)
    if target is None or target not in truth["first_seen"]:
        assert rollout is None
    else:
        start = truth["first_seen"][target]
        expected_days = []
        for i in range((TODAY - start).days + 1):
            day = start + timedelta(days=i)
            users_of_day = truth["ran"].get(day, {})
            on_it = sum(target in names for names in users_of_day.values())
            expected_days.append((day, on_it, len(users_of_day)))
        assert [(d.day, d.users, d.active) for d in rollout.days] == expected_days
        for threshold, reached in ((50, rollout.reached_50), (90, rollout.reached_90)):
            first_day = next((day for day, on_it, n in expected_days if n and on_it * 100 >= n * threshold), None)
            assert reached == (None if first_day is None else (first_day - start).days)

    # Users more than `limit` releases behind.
    old = releases.old_versions(history, week, limit=limit, version=filters.version)
    if not truth["order"]:
        assert old is None
        return
    behind = Counter()
    for names in week_users.values():
        newest = truth["newest_of"](names)
        if filters.version is None or newest == filters.version:
            behind[truth["order"].index(newest)] += 1
    assert old.newest == truth["order"][0]
    assert old.users == sum(behind.values())
    assert old.old == sum(n for k, n in behind.items() if k > limit)
    assert [(row.behind, row.users, row.more) for row in old.rows if not row.more] == [
        (k, behind[k], False) for k in range(min(limit, len(truth["order"]) - 1) + 1)
    ]


# --- Random events ---------------------------------------------------------------------------


def moment_near(day_back: int, minutes: int) -> datetime:
    """`minutes` from the UTC midnight that starts the day `day_back` days before TODAY."""
    return start_of_day(TODAY - timedelta(days=day_back)) + timedelta(minutes=minutes)


def with_offset(event: dict, moment: datetime, offset: timedelta) -> dict:
    """The event's timestamp written in a zone `offset` from UTC (the same instant)."""
    local = moment.astimezone(timezone(offset))
    event["timestamp"] = local.isoformat(timespec="milliseconds")
    return event


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(VERSIONS),
        st.integers(min_value=0, max_value=16),  # days back
        # Mostly near midnight, where the zone of the timestamp decides nothing but UTC does.
        st.one_of(st.integers(min_value=-30, max_value=30), st.integers(min_value=0, max_value=24 * 60 - 1)),
        st.sampled_from(OFFSETS),
        st.sampled_from(["linux", "macos"]),
        st.sampled_from(["x86_64", "aarch64"]),
        st.sampled_from([True, False, None]),
        st.sampled_from(["command_execution", "feature_used"]),
    ),
    min_size=0,
    max_size=30,
)
filters_strategy = st.one_of(
    st.just(Filters()),
    st.sampled_from([Filters(os="linux"), Filters(ci=True), Filters(arch="aarch64", ci=False), Filters(os="plan9")]),
    st.sampled_from(VERSIONS).map(lambda version: Filters(version=version)),
    st.sampled_from(VERSIONS).map(lambda version: Filters(os="macos", version=version)),
)
periods_strategy = st.one_of(
    st.tuples(st.integers(min_value=0, max_value=18), st.integers(min_value=0, max_value=18)).map(
        lambda pair: stats.period_of_days(TODAY - timedelta(days=max(pair)), TODAY - timedelta(days=min(pair)))
    ),
    st.sampled_from(["24h", "7d", "30d"]).map(lambda preset: stats.preset_range(preset, now=NOW)),
)


def sdk_events(rows) -> list[dict]:
    events = []
    for user, version, day_back, minutes, offset, os, arch, ci, kind in rows:
        moment = moment_near(day_back, minutes)
        if moment > NOW:
            moment = NOW - timedelta(minutes=1)
        data = {"command": "build", "success": True} if kind == "command_execution" else {"feature": "cache"}
        event = sdk_event(moment, user=user, version=version, os=os, arch=arch, ci=ci, type=kind, data=data)
        events.append(with_offset(event, moment, offset))
    return events


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    first=events_strategy,
    late=events_strategy,
    filters=filters_strategy,
    period=periods_strategy,
    limit=st.integers(min_value=0, max_value=4),
)
def test_every_figure_matches_a_count_over_the_raw_events(org, first, late, filters, period, limit):
    app, _ = make_app(org, name=f"cli-{uuid.uuid4().hex[:8]}")
    if first:
        store(app, *sdk_events(first))
    prepared = stats.with_daily_rollups([app.pk], period)
    check_every_figure(app, filters=filters, period=prepared, limit=limit)
    # Late events for days already read (and cached): the next read sees them.
    if late:
        store(app, *sdk_events(late))
    prepared = stats.with_daily_rollups([app.pk], period)
    check_every_figure(app, filters=filters, period=prepared, limit=limit)


def test_a_timestamp_with_an_offset_counts_on_its_utc_day(app):
    # 23:30 on 8 March in UTC−8 is 07:30 on 9 March UTC; 00:30 on 9 March in UTC+5:30 is 19:00 on 8 March UTC.
    late_evening = datetime(2026, 3, 8, 23, 30, tzinfo=timezone(timedelta(hours=-8)))
    early_morning = datetime(2026, 3, 9, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    store(
        app,
        with_offset(sdk_event(late_evening, user="west", version="1.1.0"), late_evening, timedelta(hours=-8)),
        with_offset(sdk_event(early_morning, user="east", version="1.0.0"), early_morning, timedelta(hours=5, minutes=30)),
    )
    history = releases.history([app.pk], filters=Filters(), today=TODAY)
    assert history.first_seen == {"1.0.0": date(2026, 3, 8), "1.1.0": date(2026, 3, 9)}
    rollout = releases.rollout(history)
    assert [(d.day, d.users, d.active) for d in rollout.days] == [(date(2026, 3, 9), 1, 1), (date(2026, 3, 10), 0, 0)]
    assert rollout.reached_50 == rollout.reached_90 == 0


def test_a_user_on_two_old_versions_counts_once_in_older(app):
    day = NOW - timedelta(days=1)
    store(
        app,
        # Six versions with two users each, then two old ones: "a" ran both of them that day.
        *[sdk_event(day, user=f"u{i}{j}", version=f"2.{i}.0") for i in range(6) for j in range(2)],
        sdk_event(day, user="a", version="1.0.0"),
        sdk_event(day, user="a", version="1.1.0"),
        sdk_event(day, user="d", version="1.0.0"),
    )
    history = releases.history([app.pk], filters=Filters(), today=TODAY)
    chart = releases.daily_users(history, period=stats.period_of_days(day.date(), day.date()))
    assert [series.label for series in chart.series] == [
        "2.5.0", "2.4.0", "2.3.0", "2.2.0", "2.1.0", "2.0.0", "Older versions (2)"
    ]  # fmt: skip
    assert chart.rest.per_day == [2]  # a (under 1.1.0, the newer of the two) and d
    assert chart.active == [14]
    old = releases.old_versions(history, releases.window([app.pk], filters=Filters(), today=TODAY), limit=5)
    # 1.1.0 and 1.0.0 are 6 and 7 releases behind 2.5.0: a and d.
    assert (old.users, old.old) == (14, 2)
    assert [(row.behind, row.users) for row in old.rows] == [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (5, 2)]
    assert old.rows[-1].more


def test_closed_weeks_come_from_the_cache_until_their_events_change(app, django_assert_max_num_queries):
    store(app, *[sdk_event(NOW - timedelta(days=n), user=f"u{n}", version="1.0.0") for n in range(1, 15)])
    first = releases.history([app.pk], filters=Filters(), today=TODAY)
    assert first.active(TODAY - timedelta(days=3)) == 1
    # Read again: the minimum day, the rollup version, the cache, and today's rows.
    with django_assert_max_num_queries(3):
        again = releases.history([app.pk], filters=Filters(), today=TODAY)
    assert again.days == first.days
    # A late event three days back: that week is read again.
    store(app, sdk_event(NOW - timedelta(days=3), user="late", version="1.1.0"))
    later = releases.history([app.pk], filters=Filters(), today=TODAY)
    assert later.active(TODAY - timedelta(days=3)) == 2
    assert later.first_seen["1.1.0"] == TODAY - timedelta(days=3)
    cache.clear()
    assert releases.history([app.pk], filters=Filters(), today=TODAY).days == later.days


# --- The page --------------------------------------------------------------------------------


def page_url(app) -> str:
    return reverse("dashboard:releases", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def test_a_viewer_reads_the_page_and_an_outsider_gets_404(client, app, bob, charlie):
    now = django_timezone.now()
    store(app, sdk_event(now - timedelta(hours=1), user="a", version="1.2.0"), now=now)
    client.force_login(bob)
    response = client.get(page_url(app))
    assert response.status_code == 200
    assert "Active users per version" in response.content.decode()
    assert response.context["table"].rows[0].version == "1.2.0"

    client.force_login(charlie)
    assert client.get(page_url(app)).status_code == 404


def test_the_24_hour_range_counts_users_over_whole_days(client, app, bob):
    now = django_timezone.now()
    store(app, sdk_event(now - timedelta(hours=1), user="a", version="1.2.0"), now=now)
    client.force_login(bob)
    response = client.get(page_url(app), {"range": "24h"})
    assert response.status_code == 200
    assert "Users are counted over the whole UTC days the range touches" in response.content.decode()
    period = response.context["period"]
    touched = {period.start.date(), (period.end - timedelta(microseconds=1)).date()}  # one day from 23:00 UTC, else two
    assert set(response.context["users"].days) == touched
    assert response.context["table"].rows[0].events == 1


def test_the_filters_apply_to_every_figure(client, app, bob):
    now = django_timezone.now()
    store(
        app,
        sdk_event(now - timedelta(hours=1), user="lin", os="linux", version="2.0.0"),
        sdk_event(now - timedelta(hours=1), user="win", os="windows", version="1.0.0"),
        sdk_event(now - timedelta(days=1), user="win", os="windows", version="1.0.0"),
        now=now,
    )
    client.force_login(bob)
    response = client.get(page_url(app), {"range": "7d", "os": "windows"})
    assert response.status_code == 200
    context = response.context
    assert [row.version for row in context["table"].rows] == ["1.0.0"]
    assert context["table"].window.users == 1
    assert context["rollout"].version == "1.0.0"  # the newest version seen on Windows
    assert context["old"].users == 1 and context["old"].old == 0
    assert "OS: windows" in response.content.decode()

    # A version filter picks the version; shares stay shares of everybody.
    response = client.get(page_url(app), {"range": "7d", "version": "1.0.0"})
    table = response.context["table"]
    assert [(row.version, row.users, row.share) for row in table.rows] == [("1.0.0", 1, 50.0)]
    assert response.context["rollout"].version == "1.0.0" and not response.context["rollout"].newest


def test_a_bad_n_is_a_message_on_the_form_not_an_error(client, app, bob):
    now = django_timezone.now()
    store(app, sdk_event(now - timedelta(hours=1), version="1.0.0"), sdk_event(now - timedelta(hours=1), user="b", version="2.0.0"), now=now)
    client.force_login(bob)
    for bad in ("-1", "many", "100000", "1e9", "2.5"):
        response = client.get(page_url(app), {"behind": bad})
        assert response.status_code == 200
        assert 'id="behind-errors"' in response.content.decode()
        assert response.context["old"].limit == releases.DEFAULT_BEHIND
    response = client.get(page_url(app), {"behind": "0"})
    assert response.context["old"].limit == 0 and response.context["old"].old == 1


def test_the_empty_states(client, app, bob):
    client.force_login(bob)
    assert "No events yet" in client.get(page_url(app)).content.decode()

    now = django_timezone.now()
    store(app, sdk_event(now - timedelta(hours=1), version="1.0.0"), now=now)
    nothing = client.get(page_url(app), {"os": "plan9"}).content.decode()
    assert "No users match these filters" in nothing

    single = client.get(page_url(app)).content.decode()
    assert "Only one version has been seen" in single
    assert "It is the only version seen" in single


def test_the_nav_links_to_the_page(client, app, bob):
    client.force_login(bob)
    overview = reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    html = client.get(overview).content.decode()
    # The link keeps the overview's range and filters (dashboard.filter_bar), when it has any.
    assert f'href="{page_url(app)}"' in html or f'href="{page_url(app)}?' in html
