"""The analytics pages under the filter bar: every figure against a brute-force
count of the raw events, and the pages' links, chips and shared URLs."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import filtered_stats, stats
from dashboard.filters import Filters
from telemetry.periods import DAY
from tests.dashboard.conftest import NOW, store
from tests.factories import iso, make_app, make_event
from tests.insights import raw_truth as raw
from tests.queries import capture_queries

VERSIONS = ["1.0.0", "1.1.0", "2.0.0-rc.1"]
OSES = ["linux", "macos", ""]
ARCHES = ["x86_64", "aarch64", ""]
OS_VERSIONS = ["", "22.04", "14.2"]
_names = itertools.count()


def event_from(spec: dict) -> dict:
    """An SDK event from a drawn spec."""
    environment = {"os": spec["os"], "shell": "bash"}
    if spec["arch"]:
        environment["arch"] = spec["arch"]
    if spec["os_version"]:
        environment["os_version"] = spec["os_version"]
    if spec["ci"] is not None:
        environment["ci"] = spec["ci"]
    data = {}
    if spec["command"] is not None:
        data["command"] = spec["command"]
    if spec["success"] is not None:
        data["success"] = spec["success"]
    if spec["duration"] is not None:
        data["duration_ms"] = spec["duration"]
    body = {"type": spec["type"], "data": data}
    if spec["category"] is not None:
        body["category"] = spec["category"]
    event = make_event(
        timestamp=iso(NOW - timedelta(minutes=spec["minutes_back"])),
        user_id=f"client_{spec['user']}",
        service={"name": "my-cli", "version": spec["version"], "language": "rust"},
        environment=environment,
        event=body,
    )
    if spec["session"] is None:
        del event["session_id"]
    else:
        event["session_id"] = spec["session"]
    return event


event_specs = st.fixed_dictionaries(
    {
        "minutes_back": st.integers(0, 17 * 24 * 60),
        "user": st.sampled_from("abcde"),
        "session": st.sampled_from([None, "s1", "s2", "s3"]),
        "type": st.sampled_from(["command_execution", "command_execution", "feature_used", "custom"]),
        "category": st.sampled_from([None, "usage", "library"]),
        "os": st.sampled_from(OSES),
        "arch": st.sampled_from(ARCHES),
        "os_version": st.sampled_from(OS_VERSIONS),
        "ci": st.sampled_from([None, True, False]),
        "version": st.sampled_from(VERSIONS),
        "command": st.sampled_from([None, "build", "test"]),
        "success": st.sampled_from([None, True, False]),
        "duration": st.one_of(st.none(), st.integers(0, 200_000), st.floats(0, 5_000, allow_nan=False)),
        "app": st.integers(0, 1),
    }
)
filter_sets = st.builds(
    Filters,
    version=st.sampled_from([None, *VERSIONS, "9.9.9"]),
    os=st.sampled_from([None, *OSES]),
    arch=st.sampled_from([None, *ARCHES]),
    ci=st.sampled_from([None, True, False]),
)


@st.composite
def periods(draw) -> stats.Period:
    kind = draw(st.sampled_from(["24h", "7d", "custom"]))
    if kind != "custom":
        return stats.preset_range(kind, now=NOW)
    first = NOW.date() - timedelta(days=draw(st.integers(0, 12)))
    return stats.period_of_days(first, min(NOW.date(), first + timedelta(days=draw(st.integers(0, 8)))))


def seed(org, specs) -> list:
    """Two new apps with the drawn events (each example gets apps of its own)."""
    apps = [make_app(org, name=f"cli-{next(_names)}")[0] for _ in range(2)]
    for index, app in enumerate(apps):
        mine = [event_from(spec) for spec in specs if spec["app"] == index]
        if mine:
            store(app, *mine)
    return apps


HYPOTHESIS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@HYPOTHESIS
@given(specs=st.lists(event_specs, max_size=40), filters=filter_sets, period=periods(), prepared=st.booleans())
def test_filtered_figures_are_the_raw_events_counted(org, specs, filters, period, prepared):
    apps = seed(org, specs)
    app_ids = [app.pk for app in apps]
    if prepared:
        period = stats.with_daily_rollups(app_ids, period)
    rows = raw.events(app_ids)
    now_rows = raw.within(rows, period.start, period.end, filters)
    before_rows = raw.within(rows, period.previous.start, period.previous.end, filters)
    now_days, before_days = raw.days_of(period.start, period.end), raw.days_of(period.previous.start, period.previous.end)

    # Totals: events of the period and the one before; users and sessions over their whole UTC days.
    summary = filtered_stats.summary(app_ids, period=period, filters=filters, session_limit=10**6)
    assert (summary.events.current, summary.events.previous) == (len(now_rows), len(before_rows))
    assert (summary.users.current, summary.users.previous) == (
        raw.distinct_users(raw.on_days(rows, *now_days, filters)),
        raw.distinct_users(raw.on_days(rows, *before_days, filters)),
    )
    assert (summary.sessions.current, summary.sessions.previous) == (
        raw.distinct_sessions(raw.on_days(rows, *now_days, filters)),
        raw.distinct_sessions(raw.on_days(rows, *before_days, filters)),
    )
    assert not summary.users.estimated
    # Past the limit (events of any kind on those days) sessions are not counted.
    stored_on_days = len(raw.on_days(rows, before_days[0], now_days[1], Filters()))
    at_limit = filtered_stats.summary(app_ids, period=period, filters=filters, session_limit=stored_on_days)
    assert at_limit.sessions == summary.sessions
    if stored_on_days:
        past = filtered_stats.summary(app_ids, period=period, filters=filters, session_limit=stored_on_days - 1)
        assert past.sessions is None

    # The time series.
    buckets = filtered_stats.events_over_time(app_ids, period=period, filters=filters)
    expected = raw.per_bucket(now_rows, period.bucket_size)
    assert [bucket.start for bucket in buckets] == period.bucket_starts()
    assert {bucket.start: bucket.count for bucket in buckets if bucket.count} == dict(expected)

    # Breakdowns, every value (limit high enough to show them all).
    columns = {"event_type": "event_type", "category": "category", "os": "os", "arch": "arch",
               "service_version": "service_version", "ci": "ci"}  # fmt: skip
    breakdowns = filtered_stats.breakdowns(app_ids, period=period, filters=filters, limit=100)
    for breakdown in breakdowns:
        truth = raw.breakdown_counts(now_rows, columns[breakdown.dimension])
        if breakdown.dimension == "ci":
            truth = {{"true": True, "false": False, "": None}[value]: n for value, n in truth.items()}
        assert {row.value: row.count for row in breakdown.rows} == dict(truth), breakdown.dimension
        assert breakdown.total == len(now_rows) and breakdown.other == 0

    # Commands: outcomes, durations, the most run.
    runs = raw.commands(now_rows)
    commands = filtered_stats.command_stats(app_ids, period=period, filters=filters)
    durations = [d for d in map(raw.duration, runs) if d is not None]
    assert commands.runs == len(runs)
    assert commands.succeeded == sum(1 for event in runs if raw.success(event) is True)
    assert commands.with_outcome == sum(1 for event in runs if raw.success(event) is not None)
    assert commands.timed == len(durations)
    assert [commands.p50_ms, commands.p90_ms, commands.p99_ms] == raw.percentiles(durations)

    top = filtered_stats.top_commands(app_ids, period=period, filters=filters, limit=100)
    truth = {}
    for name in {raw.command(event) for event in runs}:
        mine = [event for event in runs if raw.command(event) == name]
        timed = [d for d in map(raw.duration, mine) if d is not None]
        truth[name or "(none)"] = (
            len(mine),
            sum(1 for event in mine if raw.success(event) is True),
            sum(1 for event in mine if raw.success(event) is False),
            sum(timed) / len(timed) if timed else None,
        )
    got = {row.command: (row.runs, row.succeeded, row.failed, row.avg_ms) for row in top}
    assert got.keys() == truth.keys()
    for name, (n, ok, failed, mean) in truth.items():
        assert got[name][:3] == (n, ok, failed)
        assert got[name][3] == pytest.approx(mean) if mean is not None else got[name][3] is None

    # A page reads each source once and shares it between the figures: the same answers.
    reads = filtered_stats.Reads(app_ids, filters)
    assert filtered_stats.events_over_time(app_ids, period=period, filters=filters, reads=reads) == buckets
    assert filtered_stats.summary(app_ids, period=period, filters=filters, session_limit=10**6, reads=reads) == summary
    assert filtered_stats.breakdowns(app_ids, period=period, filters=filters, limit=100, reads=reads) == breakdowns
    assert filtered_stats.command_stats(app_ids, period=period, filters=filters, reads=reads) == commands
    assert filtered_stats.top_commands(app_ids, period=period, filters=filters, limit=100, reads=reads) == top

    # The organization's apps: each one's matching events and users.
    activity = filtered_stats.app_activity(apps, period=period, filters=filters)
    for row in activity:
        assert row.events == len([event for event in now_rows if event.app_id == row.app.pk])
        mine = [event for event in raw.on_days(rows, *now_days, filters) if event.app_id == row.app.pk]
        assert row.users == raw.distinct_users(mine)


@HYPOTHESIS
@given(specs=st.lists(event_specs, max_size=30), period=periods())
def test_without_filters_the_filtered_reads_agree_with_the_plain_ones(org, specs, period):
    apps = seed(org, specs)
    app_ids = [app.pk for app in apps]
    period = stats.with_daily_rollups(app_ids, period)
    nothing = Filters()

    plain, filtered = stats.summary(app_ids, period=period), filtered_stats.summary(app_ids, period=period, filters=nothing)
    assert filtered.events == plain.events
    if not plain.users.estimated:
        assert filtered.users == plain.users
    assert filtered_stats.events_over_time(app_ids, period=period, filters=nothing) == stats.events_over_time(
        app_ids, period=period
    )
    assert filtered_stats.breakdowns(app_ids, period=period, filters=nothing) == stats.breakdowns(app_ids, period=period)
    assert filtered_stats.command_stats(app_ids, period=period, filters=nothing) == stats.command_stats(
        app_ids, period=period
    )
    assert filtered_stats.top_commands(app_ids, period=period, filters=nothing) == stats.top_commands(
        app_ids, period=period
    )


def test_filter_values_with_like_and_glob_characters_match_only_themselves(app):
    # The segmented rollups are filtered in the database by LIKE (PostgreSQL) or
    # GLOB (SQLite) patterns: their wildcards in a value must stay literal.
    names = ["1.0_0", "1.0x0", "1%0", "1*0", "1?0", "1[0]", "1\\0", "1.0.0"]
    store(app, *[event_from({
        "minutes_back": 60, "user": name, "session": None, "type": "custom", "category": None, "os": "linux",
        "arch": "x86_64", "os_version": "", "ci": None, "version": name, "command": None, "success": None,
        "duration": None,
    }) for name in names])  # fmt: skip
    period = stats.preset_range("24h", now=NOW)
    for name in names:
        assert filtered_stats.event_total([app.pk], period=period, filters=Filters(version=name)) == 1, name
    assert filtered_stats.event_total([app.pk], period=period, filters=Filters(version="1_0_0")) == 0
    assert filtered_stats.event_total([app.pk], period=period, filters=Filters(version="1.0.0", os="Linux")) == 0


# --- The pages -------------------------------------------------------------------------------


@pytest.fixture
def seeded(app):
    """Recent events: linux/x86_64 on 1.2.0 and macos/aarch64 on 1.3.0 (in CI)."""
    from django.utils import timezone

    now = timezone.now()

    def event(minutes, *, os, arch, version, ci, user, success=True, type="command_execution"):
        return event_from({
            "minutes_back": 0, "user": user, "session": f"s-{user}", "type": type, "category": "usage", "os": os,
            "arch": arch, "os_version": "", "ci": ci, "version": version, "command": "build", "success": success,
            "duration": 100,
        }) | {"timestamp": iso(now - timedelta(minutes=minutes))}  # fmt: skip

    store(
        app,
        event(10, os="linux", arch="x86_64", version="1.2.0", ci=False, user="a"),
        event(20, os="linux", arch="x86_64", version="1.2.0", ci=False, user="a", success=False),
        event(30, os="linux", arch="x86_64", version="1.2.0", ci=False, user="b", type="feature_used"),
        event(40, os="macos", arch="aarch64", version="1.3.0", ci=True, user="c"),
        now=now,
    )
    return now


def page_text(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def app_url(app, name: str = "app_overview") -> str:
    return reverse(f"dashboard:{name}", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def org_url(org) -> str:
    return reverse("dashboard:org_overview", kwargs={"org_id": org.public_id})


def test_a_filtered_overview_counts_only_matching_events(client, bob, app, seeded):
    client.force_login(bob)

    page = page_text(client.get(app_url(app), {"range": "24h", "os": "linux"}))

    assert "Events 3" in page and "Users 2" in page and "Sessions 2" in page
    assert "Showing only OS: linux × (remove)" in page
    assert "Only events with OS linux are counted" in page
    assert "Share linux 3 100%" in page  # the OS breakdown
    assert "macos" not in page.split("Showing only")[1]  # filtered out of every figure after the bar


def test_clicking_a_breakdown_row_adds_its_filter_and_keeps_the_others(client, alice, app, seeded):
    client.force_login(alice)

    html = client.get(app_url(app), {"range": "24h", "ci": "true"}).content.decode()
    link = re.search(r'<a href="\?([^"]*)" title="Only events with architecture aarch64">', html)
    assert link, "the arch breakdown row links to its filter"
    query = link[1].replace("&amp;", "&")
    assert query == "range=24h&arch=aarch64&ci=true"

    page = page_text(client.get(app_url(app) + "?" + query))
    assert "Events 1" in page and "Users 1" in page
    assert "Showing only Arch: aarch64 × (remove) CI: CI × (remove)" in page
    # Version and OS rows link too; event types go to the explorer with the range and filters.
    assert 'title="Only events with service version 1.3.0"' in html
    assert "/events/?range=24h&amp;ci=true&amp;type=command_execution" in html


def test_a_shared_url_shows_another_member_the_same_view(client, alice, bob, app, seeded):
    url = app_url(app) + "?range=24h&version=1.2.0&ci=false"
    client.force_login(alice)
    seen_by_alice = page_text(client.get(url))
    client.force_login(bob)
    response = client.get(url)
    html = response.content.decode()

    def analytics(text: str) -> str:  # from the filter bar on: the navigation differs by role
        # The time the page was drawn ("as of … at 17:54:08 UTC") may tick between the two views.
        return re.sub(r"\d\d:\d\d:\d\d", "hh:mm:ss", text[text.index("Last 24 hours Last 7 days") :])

    assert analytics(page_text(response)) == analytics(seen_by_alice)
    assert "Events 3" in seen_by_alice
    assert '<option value="1.2.0" selected>' in html and '<option value="false" selected>' in html
    # Links to the other analytics pages carry the same view.
    assert app_url(app, "platforms") + "?range=24h&amp;version=1.2.0&amp;ci=false" in html
    assert app_url(app, "app_events") + "?range=24h&amp;version=1.2.0&amp;ci=false" in html


def test_an_outsider_gets_404_on_filtered_pages(client, charlie, app, seeded):
    client.force_login(charlie)
    for url in (app_url(app), app_url(app, "app_events"), org_url(app.organization)):
        assert client.get(url, {"os": "linux"}).status_code == 404


def test_the_organization_page_filters_its_apps_table(client, bob, org, app, seeded):
    quiet, _ = make_app(org, name="quiet-cli")
    client.force_login(bob)

    page = page_text(client.get(org_url(org), {"range": "24h", "os": "macos"}))

    assert "my-cli 1 1" in page
    assert "quiet-cli 0 0 never" in page
    assert "Latest event (any)" in page


def test_sessions_past_the_scan_limit_are_not_counted_and_the_page_says_so(client, alice, app, seeded, monkeypatch):
    monkeypatch.setattr(filtered_stats, "SESSION_SCAN_LIMIT", 3)
    client.force_login(alice)

    page = page_text(client.get(app_url(app), {"range": "24h", "os": "linux"}))

    assert "Sessions — Not counted under filters when the days of the range hold over 3 events." in page
    assert "Users 2" in page


def test_a_filter_matching_nothing_says_so(client, alice, app, seeded):
    client.force_login(alice)

    page = page_text(client.get(app_url(app), {"range": "24h", "os": "plan9"}))

    assert "No matching events in this range" in page
    assert "No event in this range has OS plan9." in page


def test_the_explorer_filters_raw_events_by_the_bar_and_keeps_its_own_fields(client, alice, app, seeded):
    client.force_login(alice)

    def rows(query):
        return len(re.findall(r'/events/[0-9a-f-]{36}/"', client.get(app_url(app, "app_events"), query).content.decode()))

    assert rows({}) == 4  # any time, no filter
    assert rows({"os": "linux"}) == 3
    assert rows({"os": "linux", "type": "feature_used"}) == 1
    assert rows({"arch": "aarch64", "ci": "true"}) == 1
    assert rows({"range": "24h", "version": "1.3.0"}) == 1
    html = client.get(app_url(app, "app_events"), {"os": "linux", "type": "feature_used"}).content.decode()
    # The bar keeps the explorer's field; the explorer's form keeps the bar's filter.
    assert '<input type="hidden" name="type" value="feature_used">' in html
    assert '<input type="hidden" name="os" value="linux">' in html
    assert 'href="?type=feature_used" aria-current="true">Any time</a>' in html.replace("os=linux&amp;", "")


def test_filtered_page_queries_do_not_grow_with_apps(client, alice, org, app, seeded):
    client.force_login(alice)
    urls = [org_url(org) + "?os=linux&range=30d", app_url(app) + "?os=linux&ci=false", app_url(app, "platforms") + "?arch=x86_64"]

    def counts():
        for url in urls:
            assert client.get(url).status_code == 200
        result = []
        for url in urls:
            with capture_queries() as captured:
                client.get(url)
            result.append(len(captured))
        return result

    before = counts()
    for i in range(4):
        other, _ = make_app(org, name=f"more-{i}")
        store(other, event_from({
            "minutes_back": 5, "user": "z", "session": "s", "type": "custom", "category": None, "os": "linux",
            "arch": "x86_64", "os_version": "", "ci": False, "version": "1.0.0", "command": None, "success": None,
            "duration": None,
        }))  # fmt: skip
    assert counts() == before


def test_days_of_a_range_are_utc_days(app):
    # An event at 23:30 UTC the day before a one-day range is outside it, whatever the server's zone.
    day = NOW.date() - DAY
    spec = {"minutes_back": 0, "user": "late", "session": "s", "type": "custom", "category": None, "os": "linux",
            "arch": "x86_64", "os_version": "", "ci": None, "version": "1.0.0", "command": None, "success": None,
            "duration": None}  # fmt: skip
    from datetime import datetime, timezone

    late = datetime.combine(day - DAY, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=23, minutes=30)
    store(app, event_from(spec) | {"timestamp": iso(late)})
    period = stats.with_daily_rollups([app.pk], stats.period_of_days(day, day))
    summary = filtered_stats.summary([app.pk], period=period, filters=Filters(os="linux"))
    assert (summary.events.current, summary.events.previous) == (0, 1)
    assert (summary.users.current, summary.users.previous) == (0, 1)
