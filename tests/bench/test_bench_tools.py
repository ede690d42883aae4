"""The benchmark scripts measure the real thing: their batches are accepted as
the SDK's are, the seed writes what it says, and every analytics page is timed."""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ingest_load  # noqa: E402
import pages  # noqa: E402
import sdk_events  # noqa: E402
import seed_events  # noqa: E402
from telemetry.models import Event  # noqa: E402

PROTOCOL_SECRET = "kIRV9eC/2+Dvqc4E9ubP9Cjzd0LG2/Dg0OVEfknKBPQ="


def test_the_load_generator_signs_as_the_protocol_test_vector_says():
    signature = sdk_events.sign(PROTOCOL_SECRET, "1732003200", b'{"events":[]}', "550e8400-e29b-41d4-a716-446655440000")

    assert signature == "acb382d7cd11d05778029f528eb2a14ec89cc595b033dd490723c745345a293e"


def test_the_load_generators_events_are_sdk_sized_and_unique():
    factory = sdk_events.BodyFactory(batch_size=100, seed=3)
    first, second = (orjson.loads(factory.body())["events"] for _ in range(2))
    ids = {event["event_id"] for event in first + second}

    assert len(first) == len(second) == 100
    assert len(ids) == 200
    assert 600 <= factory.mean_event_bytes() <= 760  # docs/performance.md: ~680 bytes


def test_the_load_generators_batches_are_accepted_by_the_ingest_endpoint(client, app, secret):
    factory = sdk_events.BodyFactory(batch_size=50, seed=4)
    body = factory.body()
    headers = sdk_events.signed_headers(secret, body, timestamp=int(time.time()), batch_size=50)
    extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items() if name != "Content-Type"}

    response = client.generic(
        "POST", f"/v1/ingest/{app.organization.public_id}/{app.public_id}", body, content_type="application/json", **extra
    )

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 50
    assert Event.objects.filter(app=app).count() == 50


@pytest.mark.django_db(transaction=True)
def test_the_load_generator_counts_what_a_live_server_accepted(live_server, app, secret):
    result = ingest_load.run_load(
        url=live_server.url,
        org_id=app.organization.public_id,
        app_id=app.public_id,
        secret=secret,
        batch_size=10,
        clients=1,  # the live server's in-memory SQLite refuses concurrent writers outright
        duration=None,
        requests=4,
    )

    assert result["statuses"] == {"200": 4}
    assert result["accepted_events"] == 40 == Event.objects.filter(app=app).count()
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]

    assert ingest_load.percentile(values, 0.5) == 50.0
    assert ingest_load.percentile(values, 0.99) == 99.0
    assert ingest_load.percentile([], 0.5) == 0.0


def test_the_seed_writes_realistic_events_inside_the_window(db):
    end = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)

    result = seed_events.seed_events(events=4000, days=14, end=end, progress=lambda *_: None)

    events = Event.objects.filter(app__organization__name=seed_events.DEMO_ORG)
    assert result["events"] == events.count() == 4000
    assert events.values("app").distinct().count() == len(seed_events.DEMO_APPS)
    assert not events.filter(timestamp__lt=end - timedelta(days=14)).exists()
    assert not events.filter(timestamp__gt=end).exists()
    assert 0.05 < events.filter(ci=True).count() / 4000 < 0.3
    assert 0.65 < events.filter(event_type="command_execution").count() / 4000 < 0.9
    assert events.values("user_id").distinct().count() > 100
    assert events.filter(data__success=False).exists()


def test_the_seed_rebuilds_rollups_to_match_the_raw_events(db):
    from telemetry.models import HourlyRollup

    seed_events.seed_events(events=1500, days=3, progress=lambda *_: None)

    totals = HourlyRollup.objects.filter(app__organization__name=seed_events.DEMO_ORG, dimension="total")
    assert sum(totals.values_list("events", flat=True)) == 1500


def test_the_pages_benchmark_times_every_analytics_page_for_each_preset(org, app, signed_post):
    from tests.factories import make_batch

    assert signed_post(app, make_batch(3)).status_code == 200
    client = pages.viewer_client(org)

    targets = pages.targets(org, extra_paths=[])
    results = [pages.time_page(client, path, repeat=1, warmup=0) for _, _, path in targets]

    names = {page.split()[0] for page, _, _ in targets}
    assert names == {"org_overview", "app_overview", "app_events", "event_detail", "properties"}
    assert {preset for page, preset, _ in targets if page == "org_overview"} == set(pages.presets())
    assert all(result["status"] == [200] for result in results), [r["status"] for r in results]


# --- The seed's shape: releases, a planted regression, retention, SDK keys -------------------

SHAPE_END = datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc)
SHAPE_DAYS = 90


def shape_generator(seed: int = 1, *, events: int = 80_000, users: int = 1000):
    app = seed_events.AppPlan(pk=1, name="forge", events=events, users=users)
    plan = seed_events.SeedPlan(apps=[app], days=SHAPE_DAYS, end=SHAPE_END, seed=seed)
    return plan, seed_events.Generator(plan, app)


@functools.cache
def shape_rows() -> tuple[dict, ...]:
    """One app's seeded events as dicts (90 days, 80,000 events, 1,000 users)."""
    plan, generator = shape_generator()
    names = seed_events.COLUMNS
    rows = []
    for _, count, seed in plan.units:
        for row in generator.rows(count, seed):
            event = dict(zip(names, row))
            event["day"] = datetime.fromisoformat(event["timestamp"]).date()
            event["data"] = orjson.loads(event["data"])
            rows.append(event)
    return tuple(rows)


def release_order() -> list[str]:
    return [version for version, _ in seed_events.RELEASES]


def at_least(version: str, release: str) -> bool:
    """Whether a release version is `release` or newer (the pre-release and nightly are not)."""
    order = release_order()
    return version in order and order.index(version) >= order.index(release)


def failures_and_durations(rows) -> dict[tuple[str, str], tuple[int, int, list[int]]]:
    """(command, version) -> (runs, failed, sorted durations)."""
    runs: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0, []])
    for event in rows:
        if event["event_type"] == "command_execution":
            entry = runs[(event["data"]["command"], event["service_version"])]
            entry[0] += 1
            entry[1] += event["data"]["success"] is False
            entry[2].append(event["data"]["duration_ms"])
    return {key: (n, failed, sorted(durations)) for key, (n, failed, durations) in runs.items()}


def two_proportion_z(failed: int, runs: int, failed_before: int, runs_before: int) -> float:
    pooled = (failed + failed_before) / (runs + runs_before)
    if pooled in (0.0, 1.0):
        return 0.0
    spread = math.sqrt(pooled * (1 - pooled) * (1 / runs + 1 / runs_before))
    return (failed / runs - failed_before / runs_before) / spread


def test_the_seed_is_the_same_for_the_same_seed_but_for_event_ids():
    def rows(seed: int) -> list[tuple]:
        plan, generator = shape_generator(seed, events=3000, users=80)
        _, count, unit_seed = plan.units[0]
        return [row[:1] + row[2:] for row in generator.rows(count, unit_seed)]

    assert rows(5) == rows(5)
    assert rows(5) != rows(6)


def test_the_planted_regression_shows_in_its_version_and_nowhere_else():
    runs = failures_and_durations(shape_rows())
    regression, order = seed_events.REGRESSION, release_order()
    compared = []
    for command in {command for command, _ in runs}:
        seen = [version for version in order if runs.get((command, version), (0,))[0] >= 200]
        for before, version in zip(seen, seen[1:]):
            n, failed, durations = runs[(command, version)]
            n0, failed0, durations0 = runs[(command, before)]
            z = two_proportion_z(failed, n, failed0, n0)
            slower = durations[n // 2] / durations0[n0 // 2]
            compared.append((command, before, version, round(z, 1), round(slower, 2)))

    planted = [row for row in compared if row[0] == regression.command and row[2] == regression.version]
    fixed = [row for row in compared if row[0] == regression.command and row[2] == regression.fixed_in]
    others = [row for row in compared if row not in planted + fixed]
    assert len(planted) == len(fixed) == 1 and len(others) > 40, compared
    assert planted[0][3] > 4.5 and planted[0][4] > 1.35, planted  # fails more often and runs slower
    assert fixed[0][3] < -4.5 and fixed[0][4] < 1 / 1.35, fixed  # and the next release fixes both
    assert all(abs(z) < 3.5 and 0.75 < slower < 1.33 for *_, z, slower in others), others


def test_a_release_is_adopted_gradually_and_old_versions_keep_users():
    users_on: dict = defaultdict(dict)  # day -> {user: version}
    for event in shape_rows():
        users_on[event["day"]][event["user_id"]] = (event["service_version"], event["ci"])
    released = (SHAPE_END - timedelta(days=dict(seed_events.RELEASES)["1.4.0"])).date()

    def share(day_offset: int, test) -> float:
        versions = users_on[released + timedelta(days=day_offset)].values()
        return sum(1 for version, ci in versions if test(version, ci)) / len(versions)

    newest = [share(offset, lambda version, _: at_least(version, "1.4.0")) for offset in (1, 7, 21, 33)]
    assert newest[0] < 0.4 and newest[0] < newest[1] < newest[2] < 0.95, newest
    assert newest[3] < 0.95  # a month on, some users are still behind
    last_day = max(users_on)
    # Months-old versions keep users; CI machines stay pinned to them.
    assert share((last_day - released).days, lambda version, _: not at_least(version, "1.3.0")) > 0.03
    assert {version for version, ci in users_on[last_day].values() if ci == "t"} & {"1.0.0", "1.1.0", "1.1.1", "1.2.0"}
    pre_release = {e["user_id"] for e in shape_rows() if e["service_version"] == seed_events.PRE_RELEASE[0]}
    nightly = {e["user_id"] for e in shape_rows() if e["service_version"] == seed_events.NIGHTLY}
    everyone = {e["user_id"] for e in shape_rows()}
    assert 3 <= len(pre_release) <= 0.06 * len(everyone)
    assert 2 <= len(nightly) <= 10


def test_new_users_arrive_every_day_and_their_activity_decays():
    days_of: dict[str, set] = defaultdict(set)
    for event in shape_rows():
        days_of[event["user_id"]].add(event["day"])
    first_day = min(min(days) for days in days_of.values())
    last_day = max(max(days) for days in days_of.values())
    firsts = {min(days) for days in days_of.values()}
    assert all(first_day + timedelta(days=n) in firsts for n in range((last_day - first_day).days))

    # Users first seen in weeks 2 to 5 of the window (week 1 holds every earlier user too).
    week = lambda day: (day - first_day).days // 7  # noqa: E731
    cohort = [days for days in days_of.values() if 1 <= week(min(days)) <= 4]
    active_after = [
        sum(1 for days in cohort if any(week(day) == week(min(days)) + k for day in days)) / len(cohort)
        for k in (1, 3, 6)
    ]
    assert len(cohort) > 100
    assert 0.6 > active_after[0] > active_after[1] > active_after[2] > 0.05, active_after  # a core stays
    seen_once = sum(1 for days in days_of.values() if len(days) == 1) / len(days_of)
    assert 0.2 < seen_once < 0.6


def test_events_carry_the_keys_of_their_type():
    rows = shape_rows()
    commands = [e["data"] for e in rows if e["event_type"] == "command_execution"]
    features = [e["data"] for e in rows if e["event_type"] == "feature_used"]
    custom = [e["data"] for e in rows if e["event_type"] == seed_events.CUSTOM_EVENT]

    assert all({"command", "flags", "exit_code", "duration_ms", "success"} <= data.keys() for data in commands)
    assert all((data["exit_code"] == 0) == data["success"] for data in commands)
    assert {data["exit_code"] for data in commands} == {0, 1, 2, 101, 130}
    assert all(isinstance(flag, str) for data in commands for flag in data["flags"])
    build_flags = {flag for data in commands if data["command"] == "build" for flag in data["flags"]}
    assert {"--release", "--locked"} <= build_flags
    assert all("subcommand" in data for data in commands if data["command"] == "deploy")
    assert not any("subcommand" in data for data in commands if data["command"] == "fmt")

    own_keys = {key for *_, key in seed_events.FEATURES}
    assert all({"feature", "method", "success"} < data.keys() for data in features)
    assert all(len(data.keys() & own_keys) == 1 for data in features)

    assert all(isinstance(data[key], float) for data in custom for key in ("bytes", "files", "elapsed_ms"))
    assert {data["registry"] for data in custom} == {name for name, *_ in seed_events.REGISTRIES}
    mirrors = Counter(data["mirror"] for data in custom if "mirror" in data)
    assert 0.7 < sum(mirrors.values()) / len(custom) < 0.95
    assert len(mirrors) > 100 and mirrors.most_common(1)[0][1] < 0.2 * len(custom)  # a long tail


def test_a_seeded_run_feeds_what_the_insight_pages_read(db):
    from dashboard import segments, stats
    from telemetry.models import UserDay
    from telemetry.rollups import SEP

    end = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    seed_events.seed_events(events=30_000, days=70, end=end, progress=lambda *_: None)

    demo = Event.objects.filter(app__organization__name=seed_events.DEMO_ORG)
    app_ids = list(demo.values_list("app", flat=True).distinct())
    period = stats.period_of_days((end - timedelta(days=69)).date(), end.date())
    regression = seed_events.REGRESSION
    runs: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in segments.counts(app_ids, period, "cmd", prefix=regression.command + SEP):
        version = row.parts["version"] if row.parts["version"] == regression.version else "others"
        for index, n in enumerate((row.events, row.failed, row.timed, row.duration_ms_sum)):
            runs[version][index] += n
    planted, others = runs[regression.version], runs["others"]
    assert planted[0] > 30 and others[0] > 300, dict(runs)
    assert planted[1] / planted[0] > 2 * others[1] / others[0], dict(runs)
    assert planted[3] / planted[2] > 1.25 * others[3] / others[2], dict(runs)  # mean durations

    versions = set(UserDay.objects.filter(app_id__in=app_ids).values_list("service_version", flat=True))
    assert {seed_events.PRE_RELEASE[0], seed_events.NIGHTLY, "1.5.1"} <= versions
    assert not UserDay.objects.filter(app_id__in=app_ids, os_version="").exists()
    download = Event.objects.filter(app_id__in=app_ids, event_type=seed_events.CUSTOM_EVENT).first()
    assert isinstance(download.data["bytes"], float) and isinstance(download.data["registry"], str)
    build = Event.objects.filter(app_id__in=app_ids, event_type="command_execution", data__command="build").first()
    assert isinstance(build.data["flags"], list) and isinstance(build.data["exit_code"], int)


# --- bench/pages.py: the insight pages, missing pages, the server's memory ---------------------


def test_the_pages_benchmark_times_each_insight_page_at_each_range_and_filtered(org, app, signed_post):
    from tests.factories import make_batch

    assert signed_post(app, make_batch(3)).status_code == 200
    said = []

    targets = pages.insight_targets(org, [app], report=said.append)

    names = {page for page, _, _ in targets}
    expected = {f"{page} {app.name}" for page, _, _ in pages.INSIGHT_PAGES}
    assert expected <= names
    for name in expected:
        labels = [label for page, label, _ in targets if page == name]
        assert labels == [*pages.INSIGHT_RANGES, "90d linux/x86_64"]
    assert all(path.startswith(f"/orgs/{org.public_id}/apps/{app.public_id}/") for _, _, path in targets)
    properties = [path for page, label, path in targets if page.startswith("properties") and label == "30d"]
    assert properties == [
        f"/orgs/{org.public_id}/apps/{app.public_id}/properties/?range=30d&type=download_finished&key=bytes&split=registry"
    ]
    filtered = [path for _, label, path in targets if label.startswith("90d ")]
    assert len(filtered) == len(names) and all("?range=90d" in path and path.endswith("&os=linux&arch=x86_64") for path in filtered)
    try:
        from dashboard.models import Funnel
    except ImportError:
        assert said == ["  funnels: skipped (no dashboard.models.Funnel model)"]
        assert not any(page.startswith("funnel") for page in names)
    else:
        funnel = Funnel.objects.get(app=app)
        assert [step["name"] for step in funnel.steps] == ["init", "build", "deploy"]
        assert f"funnel {app.name}" in names


def test_a_page_that_answers_404_is_reported_missing_and_not_timed(org, app):
    client = pages.viewer_client(org)

    result = pages.time_page(client, f"/orgs/{org.public_id}/apps/{app.public_id}/no-such-page/", repeat=5, warmup=1)

    assert result["missing"] is True and result["status"] == [404]
    assert "p95_ms" not in result


def test_the_server_memory_is_read_for_the_processes_holding_its_listening_socket():
    import multiprocessing
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    context = multiprocessing.get_context("fork")
    ready, stop = context.Event(), context.Event()
    # A worker as gunicorn forks it: a child process holding the master's socket.
    worker = context.Process(target=lambda: (ready.set(), stop.wait(30)))
    worker.start()
    try:
        assert ready.wait(10)
        master, workers = pages.server_processes(port)
        sizes = pages.memory(workers + [master])
    finally:
        stop.set()
        worker.join(10)
        listener.close()

    assert (master, workers) == (os.getpid(), [worker.pid])
    assert all(0 < rss <= peak for rss, peak in sizes.values()) and set(sizes) == {master, worker.pid}
    assert "RSS total" in pages.describe_memory("before", sizes)


def test_the_pages_benchmark_prints_each_insight_page_and_the_memory_around_the_run(org, app, signed_post, capsys):
    import argparse

    from tests.factories import make_batch

    assert signed_post(app, make_batch(3)).status_code == 200
    args = argparse.Namespace(
        insight_app=[], only=["releases", "health"], path=[], repeat=1, warmup=0, cold_cache=False, late_events=False,
        slow_queries=False,
    )

    rows, memory = pages.run(org, 3, args, url=None, before=None)

    out = capsys.readouterr().out
    assert {row["page"] for row in rows} == {f"releases {app.name}", f"health {app.name}"}
    assert len(rows) == 2 * (len(pages.INSIGHT_RANGES) + 1)
    for row in rows:  # timed, or said to be missing: never a crash
        assert row.get("missing") or row["status"] == [200], row
        line = next(line for line in out.splitlines() if line.strip().startswith(row["page"]) and row["range"] in line)
        assert ("missing (404" in line) == bool(row.get("missing"))
    assert "memory before: RSS total" in out and "memory after : RSS total" in out
    assert list(memory["after_mib"]) == [str(os.getpid())]
