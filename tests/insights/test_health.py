"""Release health and the command page against the raw events they summarise, and regression detection."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from django.utils import timezone
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dashboard import health, segments, stats, versions
from dashboard.filters import Filters
from dashboard.health_views import CommandConverter
from telemetry import rollups, storage
from telemetry.models import DailyActor
from telemetry.periods import DAY, UTC, start_of_day
from telemetry.rollups import bucket_range, duration_bucket
from tests.dashboard.conftest import sdk_event, store


def run(when: datetime, command: str = "build", *, version: str = "1.0.0", success=True, duration=100, exit_code=0,
        flags=None, os: str = "linux", arch: str = "x86_64", ci=False, user: str = "a") -> dict:  # fmt: skip
    """One command run as the SDK sends it; None leaves a data field out."""
    data = {"command": command, "success": success, "duration_ms": duration, "exit_code": exit_code, "flags": flags}
    return sdk_event(when, user=user, data={k: v for k, v in data.items() if v is not None}, os=os, arch=arch, ci=ci, version=version)


def now() -> datetime:
    return timezone.now().replace(microsecond=0)


def prepared(app, first, last) -> stats.Period:
    return stats.with_daily_rollups([app.pk], stats.period_of_days(first, last))


# --- Brute force over raw events --------------------------------------------------------------


def facts(event: dict) -> dict:
    """What one stored event says about its command run, straight from the SDK payload (docs/protocol.md)."""
    data = event["event"]["data"]
    success = data.get("success")
    duration = data.get("duration_ms")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration <= 10**12:
        duration = None
    code = data.get("exit_code")
    if isinstance(code, bool) or not isinstance(code, (int, float)) or (isinstance(code, float) and not code.is_integer()):
        code = ""
    else:
        code = str(int(code)) if -(2**31) <= code <= 2**31 - 1 else ""
    flags = data.get("flags")
    environment = event["environment"]
    return {
        "command": data.get("command") if isinstance(data.get("command"), str) else "",
        "version": event["service"]["version"],
        "os": environment.get("os", ""),
        "arch": environment.get("arch", ""),
        "ci": environment.get("ci"),
        "succeeded": success is True,
        "failed": success is False,
        "duration": None if duration is None else math.floor(duration),
        "exit_code": code,
        "flags": {flag[:64] for flag in flags[:32] if isinstance(flag, str)} if isinstance(flags, list) else set(),
        "day": datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).astimezone(UTC).date(),
    }


def passes(fact: dict, filters: Filters, *, version_too: bool = True) -> bool:
    return (
        (filters.os is None or fact["os"] == filters.os)
        and (filters.arch is None or fact["arch"] == filters.arch)
        and (filters.ci is None or fact["ci"] is filters.ci)
        and (not version_too or filters.version is None or fact["version"] == filters.version)
    )


def nearest_rank(durations: list[int], p: float) -> int:
    ordered = sorted(durations)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def assert_holds(estimate: stats.BucketPercentile | None, durations: list[int], p: float) -> None:
    if not durations:
        assert estimate is None
        return
    exact = nearest_rank(durations, p)
    low, high = bucket_range(duration_bucket(exact))
    assert (estimate.low, estimate.high) == (low, None if high is None else high - 1)
    assert estimate.low <= exact and (estimate.high is None or exact <= estimate.high)
    assert estimate.exact == (estimate.high == estimate.low)
    if estimate.error is not None:
        assert abs(estimate.value - exact) <= estimate.error


def version_order(found: list[dict]) -> list[str]:
    first_seen = {}
    for fact in found:
        first_seen[fact["version"]] = min(first_seen.get(fact["version"], fact["when"]), fact["when"])
    return versions.newest_first(first_seen)


# --- Random runs ----------------------------------------------------------------------------

COMMANDS = ["build", "Build", "git/commit", "a b", "100%", "..", "x~y", "ünï/ç"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0-rc.1", "nightly"]
numbers = st.none() | st.integers(min_value=-5, max_value=10**7) | st.floats(min_value=-1, max_value=1e7, allow_nan=False)
runs_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "command": st.sampled_from(COMMANDS),
            "version": st.sampled_from(VERSIONS),
            "os": st.sampled_from(["linux", "windows"]),
            "arch": st.sampled_from(["x86_64", "aarch64"]),
            "ci": st.sampled_from([True, False, None]),
            "success": st.sampled_from([True, False, None, "yes"]),
            "duration": numbers | st.sampled_from([0, 1, 9, 10, 11, 12]),
            "exit_code": st.none() | st.integers(min_value=-2, max_value=3) | st.sampled_from([255, 1.0, 1.5, "1", True]),
            "flags": st.none() | st.lists(st.sampled_from(["-v", "--release", "--x", "-v"]), max_size=4),
            "days_ago": st.integers(min_value=0, max_value=3),
            "minutes_ago": st.integers(min_value=1, max_value=24 * 60),
        }
    ),
    min_size=1,
    max_size=30,
)
filters_strategy = st.builds(
    Filters,
    version=st.none() | st.sampled_from(VERSIONS),
    os=st.none() | st.sampled_from(["linux", "windows"]),
    arch=st.none() | st.sampled_from(["x86_64"]),
    ci=st.none() | st.booleans(),
)


def seed(app, specs: list[dict]) -> list[dict]:
    """Store the runs (dropping the app's earlier events) and return their facts with their time."""
    storage.delete_app_events(app.pk)
    DailyActor.objects.filter(app=app).delete()
    cache.clear()
    moment = now()
    events, found = [], []
    for spec in specs:
        # Within the last four UTC days, today included (four_days).
        earliest = start_of_day(moment.astimezone(UTC).date() - 3 * DAY)
        when = max(moment - timedelta(days=spec["days_ago"], minutes=spec["minutes_ago"]), earliest)
        event = run(
            when, spec["command"], version=spec["version"], success=spec["success"], duration=spec["duration"],
            exit_code=spec["exit_code"], flags=spec["flags"], os=spec["os"], arch=spec["arch"], ci=spec["ci"],
        )  # fmt: skip
        events.append(event)
        found.append({**facts(event), "when": when})
    store(app, *events, now=moment)
    return found


def four_days(app) -> stats.Period:
    today = now().astimezone(UTC).date()
    return prepared(app, today - 3 * DAY, today)


@hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=runs_strategy, filters=filters_strategy, hourly=st.booleans())
def test_release_health_matches_the_raw_events(app, specs, filters, hourly):
    found = seed(app, specs)
    period = four_days(app)
    assert segments.closed_runs((app.pk,), period)[0], "the closed days are read through the cache"
    if hourly:  # the last 24 hours, counted per hour from the hourly rollups only
        end = stats.floor_to(now(), stats.HOUR) + stats.HOUR
        period = stats.with_daily_rollups([app.pk], stats.Period(start=end - timedelta(hours=24), end=end))
        found = [fact for fact in found if fact["when"] >= period.start]
    for _ in range(2):  # the second read takes the closed days from the cache
        report = health.release_health([app.pk], period=period, filters=filters)

        kept = [fact for fact in found if passes(fact, filters, version_too=False)]
        order = version_order(kept)
        expected_versions = [v for v in order if filters.version is None or v == filters.version]
        assert [version.version for version in report.versions] == expected_versions
        assert report.runs == sum(1 for fact in kept if filters.version is None or fact["version"] == filters.version)
        for version in report.versions:
            mine = [fact for fact in kept if fact["version"] == version.version]
            assert version.runs == len(mine)
            assert {row.command for row in version.commands} == {fact["command"] for fact in mine}
            for row in version.commands:
                runs = [fact for fact in mine if fact["command"] == row.command]
                assert row.outcomes == health.Outcomes(
                    len(runs), sum(fact["succeeded"] for fact in runs), sum(fact["failed"] for fact in runs)
                )
                durations = [fact["duration"] for fact in runs if fact["duration"] is not None]
                assert row.durations.timed == len(durations)
                assert_holds(row.durations.p50, durations, 0.5)
                assert_holds(row.durations.p90, durations, 0.9)
                codes = Counter(fact["exit_code"] for fact in runs if fact["exit_code"])
                top = sorted(codes.items(), key=lambda pair: (-pair[1], int(pair[0])))
                assert list(row.exit_codes) == top[: health.TOP_EXIT_CODES]
                assert row.other_exit_codes == sum(n for _, n in top[health.TOP_EXIT_CODES :])
                older = [v for v in order[order.index(version.version) + 1 :] if any(f["command"] == row.command and f["version"] == v for f in kept)]
                assert row.comparison.previous_version == (older[0] if older else None)


@hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=runs_strategy, filters=filters_strategy, command=st.sampled_from(COMMANDS + ["nothing"]))
def test_the_command_page_matches_the_raw_events(app, specs, filters, command):
    found = seed(app, specs)
    period = four_days(app)
    for _ in range(2):
        detail = health.command_detail([app.pk], period=period, filters=filters, command=command)

        runs = [fact for fact in found if fact["command"] == command and passes(fact, filters)]
        assert detail.empty == (not runs)
        assert detail.outcomes == health.Outcomes(len(runs), sum(f["succeeded"] for f in runs), sum(f["failed"] for f in runs))
        durations = [fact["duration"] for fact in runs if fact["duration"] is not None]
        assert_holds(detail.durations.p50, durations, 0.5)
        assert_holds(detail.durations.p90, durations, 0.9)
        per_day = Counter(fact["day"] for fact in runs)
        failed_per_day = Counter(fact["day"] for fact in runs if fact["failed"])
        assert [(b.start.date(), b.outcomes.runs, b.outcomes.failed) for b in detail.trend] == [
            (start.date(), per_day[start.date()], failed_per_day[start.date()]) for start in period.bucket_starts()
        ]
        platforms = {(row.os, row.arch): row for row in detail.by_platform}
        assert {key: row.outcomes.runs for key, row in platforms.items()} == Counter((f["os"], f["arch"]) for f in runs)
        for (os, arch), row in platforms.items():
            mine = [f["duration"] for f in runs if (f["os"], f["arch"]) == (os, arch) and f["duration"] is not None]
            assert_holds(row.durations.p50, mine, 0.5)
            assert_holds(row.durations.p90, mine, 0.9)
        assert {row.value: row.runs for row in detail.exit_codes} == Counter(f["exit_code"] for f in runs)
        assert {row.value: row.runs for row in detail.flags} == Counter(flag for f in runs for flag in f["flags"])
        everywhere = [f for f in found if f["command"] == command and passes(f, filters, version_too=False)]
        order = version_order(everywhere)
        shown = [v for v in order if filters.version is None or v == filters.version]
        assert [row.version for row in detail.by_version] == shown
        for row in detail.by_version:
            mine = [f for f in everywhere if f["version"] == row.version]
            assert row.outcomes.runs == len(mine) and row.outcomes.failed == sum(f["failed"] for f in mine)
            older = order[order.index(row.version) + 1 :]
            assert row.comparison.previous_version == (older[0] if older else None)


# --- The statistics -----------------------------------------------------------------------


def test_the_two_proportion_test_gives_the_textbook_value():
    # 30 of 100 against 20 of 100: pooled 0.25, z = 0.1 / sqrt(0.25 * 0.75 * 0.02) = 1.63299.
    result = health.two_proportion_test(30, 100, 20, 100)
    assert result.z == pytest.approx(1.632993, abs=1e-6)
    assert result.p_value == pytest.approx(0.051235, abs=1e-6)
    assert health.two_proportion_test(0, 50, 0, 80).p_value == 1.0  # nothing failed: no difference
    assert health.two_proportion_test(20, 100, 30, 100).p_value > 0.9  # fewer failures is no regression


def midrank_u(new: list[int], old: list[int]) -> float:
    """U of `new` from the average ranks of the pooled sample (the textbook definition)."""
    pooled = sorted(new + old)
    rank = {}
    for value in set(pooled):
        first = pooled.index(value) + 1
        last = len(pooled) - pooled[::-1].index(value)
        rank[value] = (first + last) / 2
    return sum(rank[value] for value in new) - len(new) * (len(new) + 1) / 2


@given(
    new=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=25),
    old=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=25),
)
def test_the_rank_sum_test_counts_the_pairs_the_ranks_count(new, old):
    result = health.rank_sum_test(Counter(new), Counter(old))
    n1, n2 = len(new), len(old)
    n = n1 + n2
    ties = sum(t**3 - t for t in Counter(new + old).values())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        assert result.p_value == 1.0
        return
    pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in new for b in old)
    assert pairs == midrank_u(new, old)
    assert result.z == pytest.approx((pairs - n1 * n2 / 2 - 0.5) / math.sqrt(variance))
    assert result.p_value == pytest.approx(0.5 * math.erfc(result.z / math.sqrt(2)))


def test_the_rank_sum_test_sees_a_shift_and_not_its_absence():
    slow = health.rank_sum_test({10: 20, 11: 40, 12: 20}, {9: 20, 10: 40, 11: 20})
    same = health.rank_sum_test({10: 20, 11: 40, 12: 20}, {10: 20, 11: 40, 12: 20})
    assert slow.p_value < 0.0001
    assert same.p_value > 0.5
    assert health.rank_sum_test({5: 40}, {5: 40}).p_value == 1.0


# --- Regressions on planted data ----------------------------------------------------------


def outcome_runs(when, version, *, runs: int, failed: int, command: str = "build", duration=100, **fields) -> list[dict]:
    return [
        run(when, command, version=version, success=index >= failed, duration=duration, **fields)
        for index in range(runs)
    ]


def comparison(app, command: str = "build", version: str = "1.1.0") -> health.Comparison:
    today = now().astimezone(UTC).date()
    report = health.release_health([app.pk], period=prepared(app, today - 2 * DAY, today))
    rows = {(row.version, row.command): row for version in report.versions for row in version.commands}
    return rows[(version, command)].comparison


def test_a_planted_rise_in_failures_is_flagged(app):
    when = now() - timedelta(days=1)
    store(app, *outcome_runs(when, "1.0.0", runs=200, failed=10), *outcome_runs(when, "1.1.0", runs=200, failed=30), now=now())
    found = comparison(app)
    assert [r.kind for r in found.regressions] == ["failures"]
    regression = found.regressions[0]
    assert (regression.previous_version, regression.before, regression.after) == ("1.0.0", 5.0, 15.0)
    assert regression.test.p_value < health.SIGNIFICANCE


def test_the_same_failure_rate_is_not_flagged(app):
    when = now() - timedelta(days=1)
    store(app, *outcome_runs(when, "1.0.0", runs=200, failed=10), *outcome_runs(when, "1.1.0", runs=300, failed=15), now=now())
    found = comparison(app)
    assert found.previous_version == "1.0.0" and found.regressions == () and found.not_tested == ()


def test_a_failure_rise_needs_thirty_runs_with_an_outcome_in_each_version(app):
    when = now() - timedelta(days=1)
    # 29 runs reporting success in 1.0.0 (plus runs without the flag, which do not count), all failing in 1.1.0.
    store(
        app, *outcome_runs(when, "1.0.0", runs=29, failed=0), *[run(when, version="1.0.0", success=None) for _ in range(20)],
        *outcome_runs(when, "1.1.0", runs=40, failed=40), now=now(),
    )  # fmt: skip
    found = comparison(app)
    assert found.regressions == ()
    assert found.not_tested == ("failures: fewer than 30 runs reporting success in 1.0.0",)

    store(app, *outcome_runs(when, "1.0.0", runs=1, failed=0), now=now())  # the 30th
    assert [r.kind for r in comparison(app).regressions] == ["failures"]


def test_a_significant_rise_below_two_points_is_not_flagged():
    # 1.0 % -> 2.9 % over 20,000 runs each is significant (z ≈ 9.6) but under the minimum effect.
    found = health.compare(
        outcomes=health.Outcomes(20000, 19420, 580), durations=health.NO_DURATIONS, previous_version="1.0.0",
        previous_outcomes=health.Outcomes(20000, 19800, 200), previous_durations=health.NO_DURATIONS,
    )  # fmt: skip
    assert found.regressions == ()
    exactly_two = health.compare(
        outcomes=health.Outcomes(20000, 19400, 600), durations=health.NO_DURATIONS, previous_version="1.0.0",
        previous_outcomes=health.Outcomes(20000, 19800, 200), previous_durations=health.NO_DURATIONS,
    )  # fmt: skip
    assert [r.kind for r in exactly_two.regressions] == ["failures"]  # 1 % -> 3 %: the minimum, met exactly


def test_a_planted_slowdown_is_flagged_and_the_same_durations_are_not(app):
    when = now() - timedelta(days=1)
    store(
        app,
        *[run(when, version="1.0.0", duration=1000 + 10 * i) for i in range(60)],
        *[run(when, version="1.1.0", duration=2000 + 20 * i) for i in range(60)],
        *[run(when, "test", version="1.0.0", duration=1000 + 10 * i) for i in range(60)],
        *[run(when, "test", version="1.1.0", duration=1000 + 10 * i) for i in range(60)],
        now=now(),
    )
    slower = comparison(app)
    assert [r.kind for r in slower.regressions] == ["duration"]
    assert slower.regressions[0].after >= 1.5 * slower.regressions[0].before
    assert comparison(app, "test").regressions == ()


def slowdown(new: health.Durations, old: health.Durations, runs: int = 100) -> health.Comparison:
    return health.compare(
        outcomes=health.Outcomes(runs, runs, 0), durations=new, previous_version="1.0.0",
        previous_outcomes=health.Outcomes(100, 100, 0), previous_durations=old,
    )  # fmt: skip


def test_a_slowdown_needs_thirty_timed_runs_and_a_p50_shown_a_fifth_higher():
    old = health.durations_of({duration_bucket(1000): 100})
    same = health.durations_of({duration_bucket(1000): 60, duration_bucket(1000) + 1: 40})  # p50 still in 1000's bucket
    up = health.durations_of({duration_bucket(1000) + 1: 100})  # the next bucket: its middle is 25 % higher
    assert health.rank_sum_test(same.histogram, old.histogram).p_value < health.SIGNIFICANCE
    assert slowdown(same, old).regressions == ()
    assert up.p50.value >= 1.2 * old.p50.value
    assert [r.kind for r in slowdown(up, old).regressions] == ["duration"]

    # The minimum effect, met exactly or missed by half a millisecond (p50s made by hand, same histograms).
    at = lambda ms: stats.BucketPercentile(low=int(ms), high=int(ms) if ms == int(ms) else int(ms) + 1)  # noqa: E731
    base = replace(old, p50=at(100))
    assert [r.kind for r in slowdown(replace(up, p50=at(120)), base).regressions] == ["duration"]
    assert slowdown(replace(up, p50=at(119.5)), base).regressions == ()

    few = health.durations_of({duration_bucket(1000) + 3: 29})
    found = slowdown(few, old, runs=29)
    assert found.regressions == ()
    assert "durations: fewer than 30 timed runs in this version" in found.not_tested
    thirty = health.durations_of({duration_bucket(1000) + 3: 30})
    assert [r.kind for r in slowdown(thirty, old, runs=30).regressions] == ["duration"]


def test_the_previous_version_is_the_next_older_one_that_ran_the_command(app):
    when = now() - timedelta(days=1)
    store(
        app,
        *outcome_runs(when, "1.0.0", runs=100, failed=2),
        *outcome_runs(when, "1.1.0", runs=100, failed=2, command="other"),  # 1.1.0 never ran build
        *outcome_runs(when, "1.2.0-rc.1", runs=100, failed=20),
        now=now(),
    )
    found = comparison(app, version="1.2.0-rc.1")
    assert found.previous_version == "1.0.0"
    assert [r.kind for r in found.regressions] == ["failures"]
    assert comparison(app, command="other").previous_version is None


def test_the_newest_versions_regressions_are_those_of_the_newest_version_only(app):
    when = now() - timedelta(days=1)
    store(
        app,
        *outcome_runs(when, "1.0.0", runs=100, failed=0),
        *outcome_runs(when, "1.1.0", runs=100, failed=30),  # regressed, but not the newest
        *outcome_runs(when, "1.2.0", runs=100, failed=30),
        *outcome_runs(when, "1.2.0", runs=100, failed=0, command="deploy"),
        now=now(),
    )
    today = now().astimezone(UTC).date()
    newest = health.newest_regressions([app.pk], period=prepared(app, today - 2 * DAY, today))
    assert newest.version == "1.2.0" and newest.commands == []

    store(app, *outcome_runs(when, "1.3.0", runs=100, failed=0), *outcome_runs(when, "1.3.0", runs=100, failed=40, command="deploy"), now=now())
    newest = health.newest_regressions([app.pk], period=prepared(app, today - 2 * DAY, today))
    assert newest.version == "1.3.0"
    assert [row.command for row in newest.commands] == ["deploy"]


# --- Pages ----------------------------------------------------------------------------------


def health_url(app) -> str:
    return reverse("dashboard:release_health", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def overview_url(app) -> str:
    return reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def command_url(app, command: str) -> str:
    return reverse(
        "dashboard:command_detail", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id, "command": command}
    )


def test_a_viewer_reads_both_pages_and_an_outsider_gets_404(client, app, bob, charlie):
    store(app, run(now() - timedelta(hours=1), "deploy"), now=now())
    client.force_login(bob)
    page = client.get(health_url(app))
    assert page.status_code == 200
    assert command_url(app, "deploy") in page.content.decode()
    help_text = page.content.decode()
    assert "how a regression is found" in help_text
    assert "one-sided two-proportion z-test" in help_text and "Mann–Whitney U" in help_text
    assert "p&nbsp;&lt;&nbsp;0.01" in help_text and "at least 30 runs" in help_text and "at least 2 percentage points" in help_text
    assert client.get(command_url(app, "deploy")).status_code == 200

    client.force_login(charlie)
    assert client.get(health_url(app)).status_code == 404
    assert client.get(command_url(app, "deploy")).status_code == 404
    client.logout()
    assert client.get(health_url(app)).status_code == 302


def test_the_filters_apply_to_every_figure_of_the_command_page(client, app, bob):
    when = now() - timedelta(hours=1)
    store(
        app,
        *[run(when, "deploy", os="windows", success=False, exit_code=3, flags=["--force"]) for _ in range(3)],
        *[run(when, "deploy", os="linux", exit_code=0, flags=["-v"]) for _ in range(5)],
        now=now(),
    )
    client.force_login(bob)
    page = client.get(command_url(app, "deploy"), {"range": "24h", "os": "windows"})
    assert page.status_code == 200
    detail = page.context["detail"]
    assert detail.outcomes == health.Outcomes(3, 0, 3)
    assert [(row.value, row.runs) for row in detail.exit_codes] == [("3", 3)]
    assert [(row.value, row.runs) for row in detail.flags] == [("--force", 3)]
    assert [(row.os, row.outcomes.runs) for row in detail.by_platform] == [("windows", 3)]
    assert 'id="command-runs">3<' in page.content.decode()

    page = client.get(health_url(app), {"range": "24h", "os": "linux"})
    [version] = page.context["report"].versions
    assert [(row.command, row.outcomes.runs, row.exit_codes) for row in version.commands] == [("deploy", 5, (("0", 5),))]


ODD_NAMES = [
    "git/commit", "a b", "100%", "what?", "#hash", "..", ".", "a/../b", "./x", "x~y", "~.", "~~", "new\nline",
    "ünï/ç", "trailing/", "/leading", "a//b", "<script>", "tab\there", "&amp;",
]  # fmt: skip


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_command_names_have_a_page_of_their_own(client, app, bob, name):
    store(app, run(now() - timedelta(hours=1), name), run(now() - timedelta(hours=1), "plain"), now=now())
    client.force_login(bob)
    url = command_url(app, name)
    assert CommandConverter().to_python(CommandConverter().to_url(name)) == name
    listing = client.get(health_url(app), {"range": "24h"}).content.decode()
    assert f'href="{escape(url)}?range=24h"' in listing
    page = client.get(url, {"range": "24h"})
    assert page.status_code == 200
    assert page.context["command"] == name
    assert page.context["detail"].outcomes.runs == 1


def test_a_long_command_name_is_read_as_the_rollups_keep_it(client, app, bob):
    name = "x" * 300
    store(app, run(now() - timedelta(hours=1), name), now=now())
    client.force_login(bob)
    kept = rollups.part("command", name[:200])
    assert len(kept) == 128
    page = client.get(command_url(app, name), {"range": "24h"})
    assert page.status_code == 200 and page.context["detail"].outcomes.runs == 1
    assert command_url(app, kept) in client.get(health_url(app), {"range": "24h"}).content.decode()


@pytest.mark.parametrize("path", ["nothing-like-it", "%00", "a%00b", "%1F", "build%1F1.0.0", "%FF%FE", "~x", "a/~b"])
def test_an_unknown_or_impossible_command_is_an_empty_page_or_a_404_never_an_error(client, app, bob, path):
    store(app, run(now() - timedelta(hours=1), "build"), now=now())
    client.force_login(bob)
    base = command_url(app, "placeholder").removesuffix("placeholder/")
    page = client.get(f"{base}{path}/", {"range": "24h"})
    if path.startswith("~") or "/~" in path:  # not a name the links write
        assert page.status_code == 404
        return
    assert page.status_code == 200
    assert page.context["detail"] is None or page.context["detail"].empty
    assert "No runs of" in page.content.decode()


def test_the_command_page_of_build_does_not_count_Build(client, app, bob):
    store(app, run(now() - timedelta(hours=1), "build"), run(now() - timedelta(hours=1), "Build"), run(now() - timedelta(hours=1), "Build"), now=now())
    client.force_login(bob)
    assert client.get(command_url(app, "build"), {"range": "24h"}).context["detail"].outcomes.runs == 1
    assert client.get(command_url(app, "Build"), {"range": "24h"}).context["detail"].outcomes.runs == 2


def test_an_app_without_runs_shows_an_empty_state(client, app, bob):
    client.force_login(bob)
    page = client.get(health_url(app))
    assert page.status_code == 200
    assert "No events yet" in page.content.decode()
    store(app, sdk_event(now() - timedelta(hours=1), type="feature_used", data={"feature": "x"}), now=now())
    assert "No command runs" in client.get(health_url(app)).content.decode()


def test_bad_range_and_filter_values_are_messages_not_errors(client, app, bob):
    store(app, run(now() - timedelta(hours=1)), now=now())
    client.force_login(bob)
    for query in (
        {"range": "custom", "start": "2026-13-01"}, {"ci": "maybe", "version": "x" * 500}, {"start": "3000-01-01"},
        {"version": "\x00", "os": "\x00", "arch": "a\x1fb"},
    ):  # fmt: skip
        assert client.get(health_url(app), query).status_code == 200
        assert client.get(command_url(app, "build"), query).status_code == 200
        assert client.get(overview_url(app), query).status_code == 200
    assert Filters.from_query({"version": "\x00", "os": "linux\x00"}) == Filters()  # never sent to the database


def test_the_overview_lists_the_newest_versions_regressions_in_a_few_queries(client, app, bob):
    when = now() - timedelta(days=1)
    store(
        app, *outcome_runs(when, "1.0.0", runs=100, failed=1), *outcome_runs(when, "1.1.0", runs=100, failed=1),
        *outcome_runs(when, "1.1.0", runs=100, failed=2, command="a/b"), now=now(),
    )  # fmt: skip
    overview = reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    client.force_login(bob)
    page = client.get(overview)
    assert page.context["regressions"].version == "1.1.0"
    assert "Regressions in" not in page.content.decode()

    store(app, *outcome_runs(when, "1.2.0", runs=100, failed=1), *outcome_runs(when, "1.2.0", runs=100, failed=30, command="a/b"), now=now())
    html = client.get(overview).content.decode()
    assert 'Regressions in <span class="version">1.2.0</span>' in html
    assert f'href="{command_url(app, "a/b")}?range=7d"' in html

    # What the panel costs: its two dimensions' closed days once, then only the current day's hours.
    cache.clear()
    period = stats.with_daily_rollups([app.pk], stats.preset_range("7d", now=timezone.now()))
    with CaptureQueriesContext(connection) as cold:
        health.newest_regressions([app.pk], period=period)
    with CaptureQueriesContext(connection) as warm:
        assert [row.command for row in health.newest_regressions([app.pk], period=period).commands] == ["a/b"]
    assert len(cold) <= 6 and len(warm) <= 2


def test_the_overview_reads_nothing_more_without_command_runs(client, app, bob):
    store(app, sdk_event(now() - timedelta(hours=1), type="feature_used", data={"feature": "x"}), now=now())
    client.force_login(bob)
    page = client.get(reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id}))
    assert page.status_code == 200 and "regressions" not in page.context


def test_the_overviews_panel_follows_the_filter_bar(client, app, bob):
    when = now() - timedelta(days=1)
    store(
        app,
        *outcome_runs(when, "1.0.0", runs=100, failed=1, os="linux"), *outcome_runs(when, "1.1.0", runs=100, failed=30, os="linux"),
        *outcome_runs(when, "1.0.0", runs=100, failed=1, os="windows"), *outcome_runs(when, "1.1.0", runs=100, failed=1, os="windows"),
        now=now(),
    )  # fmt: skip
    overview = reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    client.force_login(bob)
    linux = client.get(overview, {"os": "linux"})
    assert [row.command for row in linux.context["regressions"].commands] == ["build"]
    assert f'href="{command_url(app, "build")}?range=7d&amp;os=linux"' in linux.content.decode()
    windows = client.get(overview, {"os": "windows"})
    assert windows.context["regressions"].version == "1.1.0" and windows.context["regressions"].commands == []
    assert "Regressions in" not in windows.content.decode()
