"""Active users, new and returning users and cohorts (dashboard.activity)
against a brute-force count over the raw Event rows, and the Retention page."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import activity
from dashboard.filters import Filters
from telemetry.lifecycle import delete_events
from telemetry.models import Event
from tests.dashboard.conftest import NOW, sdk_event, store
from tests.factories import make_app

TODAY = NOW.date()  # Tuesday 10 March 2026
UTC = timezone.utc


# --- Brute force over raw events ----------------------------------------------------------------


def active_days(app_ids, filters: Filters, today: date) -> dict[tuple[int, str], set[date]]:
    """Each user's (app, user_id) UTC days with a stored event matching the filters, up to today."""
    rows = Event.objects.filter(app_id__in=app_ids)
    if filters.active:
        rows = rows.filter(filters.q())
    days: dict[tuple[int, str], set[date]] = {}
    for app_id, user_id, moment in rows.values_list("app_id", "user_id", "timestamp"):
        day = moment.astimezone(UTC).date()
        if day <= today:
            days.setdefault((app_id, user_id), set()).add(day)
    return days


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def brute_force(app_ids, first: date, last: date, filters: Filters, today: date) -> dict:
    last = min(last, today)
    days = active_days(app_ids, filters, today)
    seen = {user: min(user_days) for user, user_days in days.items()}

    def active_in(low: date, high: date) -> set:
        return {user for user, user_days in days.items() if any(low <= d <= high for d in user_days)}

    out: dict = {"days": [], "buckets": [], "weekly": [], "daily": []}
    for day in span(first, last):
        dau = len(active_in(day, day))
        wau = len(active_in(day - timedelta(days=6), day))
        mau = len(active_in(day - timedelta(days=29), day))
        out["days"].append((day, dau, wau, mau))
    weekly_buckets = (last - first).days + 1 > activity.DAILY_BUCKETS_UP_TO
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=6 - start.weekday())) if weekly_buckets else start
        new = sum(1 for user in seen if start <= seen[user] <= end)
        out["buckets"].append((start, end, len(active_in(start, end)), new))
        start = end + timedelta(days=1)

    mondays = []
    week = first - timedelta(days=first.weekday())
    while week <= last:
        mondays.append(week)
        week += timedelta(days=7)
    for week in mondays[-activity.WEEKLY_COHORTS :]:
        cohort = {user for user in seen if week <= seen[user] <= week + timedelta(days=6)}
        cells = []
        for k in range(1, activity.WEEKLY_OFFSETS + 1):
            begins = week + timedelta(days=7 * k)
            cells.append(None if begins > today else len(cohort & active_in(begins, begins + timedelta(days=6))))
        out["weekly"].append((week, len(cohort), cells))
    for day in span(max(first, last - timedelta(days=activity.DAILY_COHORTS - 1)), last):
        cohort = {user for user in seen if seen[user] == day}
        cells = []
        for k in range(1, activity.DAILY_OFFSETS + 1):
            later = day + timedelta(days=k)
            cells.append(None if later > today else len(cohort & active_in(later, later)))
        out["daily"].append((day, len(cohort), cells))
    newcomers = [user for user in seen if first <= seen[user] <= last]
    out["one_day"] = (len(newcomers), sum(1 for user in newcomers if len(days[user]) == 1))
    return out


def figures(result: activity.Retention) -> dict:
    """The same shape as brute_force(), read from dashboard.activity's result."""
    return {
        "days": [(d.day, d.dau, d.wau, d.mau) for d in result.days],
        "buckets": [(b.first, b.last, b.active, b.new) for b in result.buckets],
        "weekly": [(c.first, c.size, [cell.users for cell in c.cells]) for c in result.weekly_cohorts],
        "daily": [(c.first, c.size, [cell.users for cell in c.cells]) for c in result.daily_cohorts],
        "one_day": (result.one_day.users, result.one_day.one_day),
    }


def assert_matches(app_ids, first: date, last: date, filters: Filters = Filters(), today: date = TODAY) -> activity.Retention:
    expected = brute_force(app_ids, first, last, filters, today)
    result = activity.retention(app_ids, first, last, filters=filters, today=today)
    assert figures(result) == expected
    return result


# --- Random events ------------------------------------------------------------------------------

# Times of day near the UTC midnight that separates two days, and some others.
CLOCK = st.sampled_from([time(0, 0), time(0, 0, 1), time(23, 59, 59), time(23, 30), time(12, 0), time(6, 15)])
# Offsets the SDK may send its timestamps in (hours): the same instant, another local day.
OFFSET = st.sampled_from([0, -8, -5, 1, 5.5, 9, 14, -12])
EVENT = st.tuples(
    st.integers(min_value=0, max_value=7),  # user
    st.integers(min_value=0, max_value=75),  # UTC days before today
    CLOCK,
    OFFSET,
    st.sampled_from(["1.0.0", "2.0.0"]),
    st.sampled_from(["linux", "windows"]),
    st.sampled_from([True, False, None]),  # CI
)


def to_sdk_events(draws) -> list[dict]:
    events = []
    for user, days_back, clock, offset, version, os, ci in draws:
        moment = datetime.combine(TODAY - timedelta(days=days_back), clock, tzinfo=UTC)
        if moment > NOW:
            moment = NOW
        event = sdk_event(moment, user=f"u{user}", version=version, os=os, ci=ci)
        # The same instant written in another time zone, as a client abroad sends it.
        local = moment.astimezone(timezone(timedelta(hours=offset)))
        event["timestamp"] = local.isoformat()
        events.append(event)
    return events


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    draws=st.lists(EVENT, min_size=0, max_size=40),
    first_back=st.integers(min_value=0, max_value=70),
    length=st.integers(min_value=1, max_value=100),
    filter_by=st.sampled_from(
        [Filters(), Filters(version="2.0.0"), Filters(os="windows"), Filters(version="1.0.0", os="linux"), Filters(ci=True)]
    ),
)
def test_every_figure_matches_a_count_over_raw_events(org, draws, first_back, length, filter_by):
    app, _ = make_app(org, name="random")
    if draws:
        store(app, *to_sdk_events(draws))
    first = TODAY - timedelta(days=first_back)
    last = first + timedelta(days=length - 1)
    for probe_days in (0, 10_000):  # one ordered pass, or index look-ups per user-day
        activity.cache.clear()
        with mock.patch.object(activity, "PROBE_DAYS_UP_TO", probe_days):
            assert_matches([app.pk], first, last, filter_by)


@pytest.mark.django_db
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first_batch=st.lists(EVENT, min_size=1, max_size=25),
    late=st.lists(EVENT, min_size=1, max_size=5),
)
def test_late_events_on_closed_days_change_the_cached_figures(org, first_batch, late):
    app, _ = make_app(org, name="late")
    store(app, *to_sdk_events(first_batch))
    first = TODAY - timedelta(days=60)
    assert_matches([app.pk], first, TODAY)
    store(app, *to_sdk_events(late))  # events of earlier days arriving now, into the cache's days
    assert_matches([app.pk], first, TODAY)


TODAY_EVENT = st.tuples(
    st.integers(min_value=0, max_value=9),  # user: some seen before, some new
    st.just(0),
    st.sampled_from([time(0, 0), time(6, 15), time(11, 59)]),
    OFFSET,
    st.sampled_from(["1.0.0", "2.0.0", "3.0.0"]),
    st.sampled_from(["linux", "windows"]),
    st.sampled_from([True, False, None]),
)


@pytest.mark.django_db
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first_batch=st.lists(EVENT, min_size=0, max_size=25),
    batches=st.lists(st.lists(TODAY_EVENT, min_size=1, max_size=6), min_size=1, max_size=3),
    filter_by=st.sampled_from([Filters(), Filters(version="3.0.0"), Filters(os="windows")]),
)
def test_todays_figures_grow_with_todays_events(org, first_batch, batches, filter_by):
    app, _ = make_app(org, name="today")
    if first_batch:
        store(app, *to_sdk_events(first_batch))
    first = TODAY - timedelta(days=40)
    assert_matches([app.pk], first, TODAY, filter_by)
    for batch in batches:  # new users today, and users already counted today on another version or OS
        store(app, *to_sdk_events(batch))
        assert_matches([app.pk], first, TODAY, filter_by)


def test_todays_figures_drop_an_erased_user(app):
    store(app, sdk_event(NOW - timedelta(days=2), user="a"), sdk_event(NOW, user="a"), sdk_event(NOW, user="b"))
    first = TODAY - timedelta(days=6)
    assert assert_matches([app.pk], first, TODAY).latest.dau == 2
    delete_events(Event.objects.filter(app=app, user_id="client_b"))
    store(app, sdk_event(NOW, user="a", version="9.9.9"))  # one row gone, one row added
    assert assert_matches([app.pk], first, TODAY).latest.dau == 1


def test_a_user_is_counted_per_app(org):
    one, _ = make_app(org, name="one")
    two, _ = make_app(org, name="two")
    store(one, sdk_event(NOW - timedelta(days=3), user="same"))
    store(two, sdk_event(NOW - timedelta(days=1), user="same"))
    result = assert_matches([one.pk, two.pk], TODAY - timedelta(days=6), TODAY)
    assert result.one_day.users == 2  # the same user_id in two apps is two users


def test_a_user_seen_once_and_the_week_boundary(app):
    sunday = date(2026, 3, 8)  # the week of Monday 2 March ends
    store(
        app,
        # Sunday 23:30 in New York is Monday 04:30 UTC: a user of Monday's week.
        {**sdk_event(NOW, user="abroad"), "timestamp": "2026-03-08T23:30:00-05:00"},
        sdk_event(datetime.combine(sunday, time(23, 59, 59), tzinfo=UTC), user="sunday"),
        sdk_event(datetime.combine(sunday + timedelta(days=1), time(0, 0), tzinfo=UTC), user="sunday"),
        sdk_event(datetime.combine(sunday - timedelta(days=6), time(9), tzinfo=UTC), user="once"),
    )
    result = assert_matches([app.pk], date(2026, 3, 2), TODAY)
    weeks = {cohort.first: cohort for cohort in result.weekly_cohorts}
    # "sunday" and "once" were first seen in the week of 2 March; "abroad" on Monday 9 March.
    assert weeks[date(2026, 3, 2)].size == 2
    assert weeks[date(2026, 3, 9)].size == 1
    first_cell = weeks[date(2026, 3, 2)].cells[0]
    assert (first_cell.users, first_cell.share, first_cell.partial) == (1, 50.0, True)  # this week is not over
    assert weeks[date(2026, 3, 2)].cells[1].users is None  # next week has not begun: blank, not 0 %
    assert (result.one_day.users, result.one_day.one_day) == (3, 2)
    monday = next(day for day in result.days if day.day == sunday + timedelta(days=1))
    assert (monday.dau, monday.wau, monday.mau) == (2, 2, 3)  # "once" (2 March) is 8 days back


def test_stickiness_is_dau_over_mau(app):
    store(app, *(sdk_event(NOW - timedelta(days=back), user=f"u{back}") for back in range(4)), sdk_event(NOW, user="u1"))
    latest = activity.retention([app.pk], TODAY - timedelta(days=6), TODAY, today=TODAY).latest
    assert (latest.dau, latest.mau, latest.stickiness, latest.partial) == (2, 4, 50.0, True)


def test_an_app_without_events_has_empty_figures(app):
    result = activity.retention([app.pk], TODAY - timedelta(days=29), TODAY, today=TODAY)
    assert not result.has_users
    assert all(cohort.size == 0 and all(cell.share is None for cell in cohort.cells) for cohort in result.weekly_cohorts)
    assert result.one_day.share is None


# --- The page ---------------------------------------------------------------------------------


def page_url(app, **query) -> str:
    url = reverse("dashboard:retention", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def visible_text(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def stat_value(response, name: str) -> str:
    match = re.search(rf'id="stat-{name}">.*?<p class="stat-value">(.*?)</p>', response.content.decode(), flags=re.S)
    assert match, f"no {name} figure on the page"
    return match[1].strip()


@pytest.fixture
def live_events(app):
    """Users a and b today, a and c yesterday, d 20 days ago (on Windows), stored now."""
    now = django_timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    earlier_today = now - min(timedelta(minutes=5), (now - midnight) / 2)
    store(
        app,
        sdk_event(earlier_today, user="a"),
        sdk_event(earlier_today, user="b", os="windows"),
        sdk_event(now - timedelta(days=1), user="a"),
        sdk_event(now - timedelta(days=1), user="c"),
        sdk_event(now - timedelta(days=20), user="d", os="windows"),
        now=now,
    )


@pytest.mark.parametrize("preset", ["24h", "7d", "30d", "90d"])
def test_a_viewer_reads_the_figures(client, bob, app, live_events, preset):
    client.force_login(bob)
    response = client.get(page_url(app, range=preset))
    assert response.status_code == 200
    assert re.search(r"<h1>\s*Retention\s*</h1>", response.content.decode())
    assert (stat_value(response, "dau"), stat_value(response, "wau"), stat_value(response, "mau")) == ("2", "3", "4")
    assert stat_value(response, "stickiness") == "50%"
    page = visible_text(response)
    for words in ("Weekly cohorts", "Daily cohorts", "Seen on one day only", "anonymous user_id", "sessions play no part"):
        assert words in page
    assert 'aria-current="page">Retention</a>' in response.content.decode()


def test_charlie_gets_404(client, charlie, app, live_events):
    client.force_login(charlie)
    response = client.get(page_url(app))
    assert response.status_code == 404
    assert "my-cli" not in visible_text(response)


def test_the_filters_apply_to_every_figure(client, alice, app, live_events):
    client.force_login(alice)
    response = client.get(page_url(app, range="30d", os="windows"))
    assert (stat_value(response, "dau"), stat_value(response, "mau")) == ("1", "2")
    page = visible_text(response)
    assert "First seen is computed after the filters" in page
    assert "OS: windows" in page


def test_an_app_without_events_shows_how_to_set_up_the_sdk(client, alice, app):
    client.force_login(alice)
    response = client.get(page_url(app))
    assert response.status_code == 200
    assert "No events yet" in visible_text(response)


def test_a_range_without_users_says_so(client, alice, app, live_events):
    client.force_login(alice)
    response = client.get(page_url(app, range="custom", start="2025-01-01", end="2025-01-31"))
    assert response.status_code == 200
    assert "No users in this range" in visible_text(response)
    response = client.get(page_url(app, range="7d", os="plan9"))
    assert "No users in this range" in visible_text(response)


def test_bad_input_is_a_message_not_an_error(client, alice, app, live_events):
    client.force_login(alice)
    response = client.get(page_url(app, range="custom", start="2026-13-45", end="yesterday", ci="maybe", version="x" * 500))
    assert response.status_code == 200
    assert "Showing the default range instead." in visible_text(response)
    assert stat_value(response, "dau") == "2"


def test_a_long_range_counts_new_users_per_week(client, alice, app, live_events):
    client.force_login(alice)
    today = django_timezone.now().date()
    response = client.get(page_url(app, range="custom", start=(today - timedelta(days=200)).isoformat(), end=today.isoformat()))
    assert response.status_code == 200
    assert "New and returning users per week (UTC)" in visible_text(response)
