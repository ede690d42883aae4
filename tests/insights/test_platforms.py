"""The platforms page: OS × arch and OS versions against the raw events, and the page itself."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from dashboard import platforms, stats
from dashboard.filters import Filters
from dashboard.platform_views import OS_VERSIONS_SHOWN, PLATFORMS_SHOWN
from tests.dashboard.conftest import store
from tests.factories import iso
from tests.insights import raw_truth as raw
from tests.insights.test_filtered_pages import HYPOTHESIS, event_from, event_specs, filter_sets, page_text, periods, seed


@HYPOTHESIS
@given(specs=st.lists(event_specs, max_size=40), filters=filter_sets, period=periods(), prepared=st.booleans())
def test_platform_figures_are_the_raw_events_counted(org, specs, filters, period, prepared):
    apps = seed(org, specs)
    app_ids = [app.pk for app in apps]
    if prepared:
        period = stats.with_daily_rollups(app_ids, period)
    rows = raw.events(app_ids)
    in_period = raw.within(rows, period.start, period.end, filters)
    on_days = raw.on_days(rows, *raw.days_of(period.start, period.end), filters)

    result = platforms.platforms(app_ids, period=period, filters=filters)

    got = {
        (row.os, row.arch): (
            row.users, row.events, row.runs, row.succeeded, row.failed,
            {version.os_version: (version.users, version.events) for version in row.os_versions},
        )
        for row in result.rows
    }  # fmt: skip
    assert got == raw.platform_figures(in_period, on_days)
    assert result.users == raw.distinct_users(on_days)
    assert result.events == len(in_period)
    assert result.runs == len(raw.commands(in_period))
    # Most users first, then most events.
    assert [(-row.users, -row.events) for row in result.rows] == sorted((-row.users, -row.events) for row in result.rows)
    for row in result.rows:
        reported = row.succeeded + row.failed
        assert row.failure_rate == (row.failed * 100 / reported if reported else None)


def test_the_cut_says_what_it_left_out():
    rows = [
        platforms.PlatformRow(
            os=f"os{i}", arch="x86_64", users=20 - i, events=100 + i, runs=10, succeeded=9, failed=1,
            os_versions=[platforms.OSVersionRow(str(v), 1, 10) for v in range(i)],
        )
        for i in range(6)
    ]  # fmt: skip
    everything = platforms.Platforms(rows=rows, users=50, events=sum(r.events for r in rows), runs=60, succeeded=54, failed=6)

    shown = platforms.cut(everything, platforms=4, os_versions=3)

    assert [row.os for row in shown.rows] == ["os0", "os1", "os2", "os3"]
    assert shown.hidden == platforms.Tail(count=2, events=104 + 105, runs=20)
    assert shown.total == 6 and shown.events == everything.events and shown.users == 50
    assert [len(row.os_versions) for row in shown.rows] == [0, 1, 2, 3]
    assert shown.rows[3].hidden_os_versions is None
    assert platforms.cut(everything, platforms=6, os_versions=4).rows[5].hidden_os_versions == platforms.Tail(1, 10, 0)
    assert platforms.cut(everything, platforms=None, os_versions=None) == everything


# --- The page ---------------------------------------------------------------------------------


def platforms_url(app) -> str:
    return reverse("dashboard:platforms", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def spec(**fields) -> dict:
    base = {
        "minutes_back": 0, "user": "a", "session": "s", "type": "command_execution", "category": "usage",
        "os": "linux", "arch": "x86_64", "os_version": "", "ci": False, "version": "1.2.0", "command": "build",
        "success": True, "duration": 100,
    }  # fmt: skip
    return base | fields


@pytest.fixture
def seeded(app):
    now = timezone.now()

    def at(minutes, **fields):
        return event_from(spec(**fields)) | {"timestamp": iso(now - timedelta(minutes=minutes))}

    store(
        app,
        at(5, user="a", os_version="22.04"),
        at(6, user="a", os_version="22.04", success=False),
        at(7, user="b", os_version="24.04"),
        at(8, user="b", os_version="24.04", type="feature_used", command=None, success=None),
        at(9, user="c", os="macos", arch="aarch64", os_version="14.2", ci=True),
        at(10, user="d", os="windows", arch="x86_64", os_version="11", success=False),
        now=now,
    )
    return now


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_members_read_the_platforms_page(client, request, app, seeded, who):
    client.force_login(request.getfixturevalue(who))

    response = client.get(platforms_url(app))

    assert response.status_code == 200
    page = page_text(response)
    assert "linux x86_64 2 4 3 33.3%" in page  # users, events, runs, failure rate
    assert "22.04 1 2 —" in page and "24.04 1 2 —" in page  # OS versions: users, events
    assert "macos aarch64 1 1 1 0%" in page
    assert "windows x86_64 1 1 1 100%" in page
    assert "All platforms 4 6 5 40%" in page
    assert "Every platform seen is listed." in page
    assert "a user seen on two platforms counts in both rows and once in the total" in page
    assert 'aria-current="page">Platforms</a>' in response.content.decode()


def test_an_outsider_gets_404_and_a_visitor_is_sent_to_log_in(client, charlie, app, seeded):
    assert client.get(platforms_url(app)).status_code == 302
    client.force_login(charlie)
    response = client.get(platforms_url(app), {"os": "linux"})
    assert response.status_code == 404
    assert "my-cli" not in page_text(response)


def test_clicking_a_platform_filters_the_page_by_its_os_and_arch(client, alice, app, seeded):
    client.force_login(alice)

    html = client.get(platforms_url(app), {"range": "24h", "ci": "false"}).content.decode()
    link = re.search(r'<a href="\?([^"]*)" title="Only events from windows on x86_64">', html)
    assert link
    query = link[1].replace("&amp;", "&")
    assert query == "range=24h&os=windows&arch=x86_64&ci=false"

    response = client.get(platforms_url(app) + "?" + query)
    page = page_text(response)
    assert "Showing only OS: windows × (remove) Arch: x86_64 × (remove) CI: Not CI × (remove)" in page
    assert "All platforms 1 1 1 100%" in page
    assert "linux" not in page.split("Showing only")[1]
    # The row of the platform already filtered by is not a link again; other pages keep the view.
    assert 'title="Only events from windows on x86_64"' not in response.content.decode()
    assert "?range=24h&amp;os=windows&amp;arch=x86_64&amp;ci=false" in response.content.decode()


def test_the_long_tail_is_summed_and_shown_on_demand(client, alice, app, monkeypatch):
    now = timezone.now()
    events = [
        event_from(spec(user=f"u{i}-{j}", os=f"os-{i:02d}", os_version=f"v{j}")) | {"timestamp": iso(now - timedelta(minutes=1))}
        for i in range(PLATFORMS_SHOWN + 3)
        for j in range(1 if i else OS_VERSIONS_SHOWN + 2)
    ]
    store(app, *events, now=now)
    client.force_login(alice)

    page = page_text(client.get(platforms_url(app)))
    total = PLATFORMS_SHOWN + 3
    assert f"3 more platforms — 3 3 Show all {total} platforms" in page
    assert f"Showing the {PLATFORMS_SHOWN} platforms with the most users of {total}" in page
    assert "2 more OS versions with 2 events: show all" in page
    assert "os-17" not in page.split("Operating system and architecture")[1]

    page = page_text(client.get(platforms_url(app), {"all": "1"}))
    assert "os-17" in page and "more platforms" not in page and "more OS versions" not in page
    assert f"Showing all {total} platforms and every OS version." in page
    assert f"All platforms {len(events)} {len(events)} {len(events)} 0%" in page


def test_the_filter_bar_keeps_show_all(client, alice, app, seeded):
    client.force_login(alice)
    html = client.get(platforms_url(app), {"all": "1", "os": "linux"}).content.decode()
    assert '<input type="hidden" name="all" value="1">' in html
    assert 'href="?range=30d&amp;os=linux&amp;all=1"' in html


def test_no_matching_events_is_a_message(client, alice, app, seeded):
    client.force_login(alice)
    page = page_text(client.get(platforms_url(app), {"os": "plan9"}))
    assert "No matching events in this range" in page

    page = page_text(client.get(platforms_url(app), {"range": "custom", "start": "2026-01-01", "end": "2026-01-03"}))
    assert "No events in this range" in page
    assert "Custom range: 1 Jan – 3 Jan 2026 (UTC days)." in page


def test_an_app_without_events_explains_the_sdk(client, alice, app):
    client.force_login(alice)
    assert "No events yet" in page_text(client.get(platforms_url(app)))


def test_a_bad_range_is_a_message_not_an_error(client, alice, app, seeded):
    client.force_login(alice)
    response = client.get(platforms_url(app), {"range": "custom", "start": "2026-03-10", "end": "2026-03-01", "ci": "maybe"})
    assert response.status_code == 200
    assert "The end date is before the start date." in page_text(response)
    assert "Showing last 7 days instead." in page_text(response)


def test_filters_reach_the_user_counts(app, seeded):
    period = stats.with_daily_rollups([app.pk], stats.preset_range("24h", now=seeded))
    result = platforms.platforms([app.pk], period=period, filters=Filters(ci=True))
    assert [(row.os, row.users, row.events) for row in result.rows] == [("macos", 1, 1)]
    assert result.users == 1


def test_closed_days_are_read_once_and_again_when_they_change(app, django_assert_max_num_queries):
    now = timezone.now()

    def at(when, user, os="linux"):
        return event_from(spec(user=user, os=os)) | {"timestamp": iso(when)}

    def prepared():
        return stats.with_daily_rollups([app.pk], stats.preset_range("7d", now=now))

    store(app, at(now - timedelta(days=2), "a"), at(now - timedelta(minutes=1), "b"), now=now)
    first = platforms.platforms([app.pk], period=prepared())
    assert (first.users, first.events) == (2, 2)

    # Again: the closed days come from the cache, only today is read (two rollup sums and UserDay).
    period = prepared()
    with django_assert_max_num_queries(3):
        again = platforms.platforms([app.pk], period=period)
    assert again == first

    # A late event on a closed day and one today: both counted on the next view.
    store(app, at(now - timedelta(days=3), "c"), at(now - timedelta(minutes=1), "d", os="macos"), now=now)
    later = platforms.platforms([app.pk], period=prepared())
    assert (later.users, later.events) == (4, 4)
    assert [(row.os, row.users) for row in later.rows] == [("linux", 3), ("macos", 1)]
    assert later == platforms.platforms([app.pk], period=stats.preset_range("7d", now=now))
