"""dashboard.segments.counts against a brute-force count over the raw events.

The brute force builds each segmented value from the event's fields as
docs/storage.md (Segments) lays them out, without telemetry.rollups'
event_facts, and sums the events of the period in Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta, timezone

import pytest
from django.core.cache import cache
from django.utils import timezone as django_timezone
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from dashboard import segments, stats
from dashboard.filters import Filters
from telemetry import ingest, rollups, storage
from telemetry.models import Event
from tests.dashboard.conftest import sdk_event, store
from tests.rollups import strategies

UTC = timezone.utc
SEP = rollups.SEP
# Real time: today's hours are read from the hourly counts, closed days from daily rollups.
NOW = django_timezone.now().replace(second=0, microsecond=0)
HOUR = NOW.replace(minute=0)
LENGTHS = {"version": 64, "os": 64, "arch": 64, "ci": 5, "os_version": 64, "type": 128, "category": 64,
           "command": 128, "bucket": 3, "exit_code": 11, "flag": 64}  # fmt: skip
LAYOUTS = {
    "segment": ("version", "os", "arch", "ci", "os_version"),
    "seg_type": ("version", "os", "arch", "ci", "type", "category"),
    "cmd": ("command", "version", "os", "arch", "ci"),
    "cmd_duration": ("command", "version", "os", "arch", "ci", "bucket"),
    "cmd_exit": ("command", "version", "os", "arch", "ci", "exit_code"),
    "cmd_flag": ("command", "version", "os", "arch", "ci", "flag"),
    "version_duration": ("version", "command", "bucket"),
}


def test_the_layouts_are_the_documented_ones():
    assert rollups.SEGMENTED_DIMENSIONS == LAYOUTS
    assert rollups.PART_LENGTHS == LENGTHS


def cut(name: str, text: str) -> str:
    return text[: LENGTHS[name]].replace(SEP, " ")


def run_of(event: Event) -> dict | None:
    """A command run's command, outcome, duration, exit code and flags; None for other events."""
    if event.event_type != "command_execution":
        return None
    data = event.data if isinstance(event.data, dict) else {}
    command = data.get("command")
    success = data.get("success")
    duration = data.get("duration_ms")
    timed = type(duration) in (int, float) and 0 <= duration <= 10**12
    code = data.get("exit_code")
    whole = type(code) is int or (type(code) is float and math.isfinite(code) and code == int(code))
    flags = data.get("flags")
    return {
        "command": command[:200] if isinstance(command, str) else "",
        "success": success if isinstance(success, bool) else None,
        "duration": math.floor(duration) if timed else None,
        "exit_code": str(int(code)) if whole and -(2**31) <= code < 2**31 else "",
        "flags": {cut("flag", f) for f in flags[:32] if isinstance(f, str)} if isinstance(flags, list) else set(),
    }


def values_of(event: Event, dimension: str) -> list[str]:
    run = run_of(event)
    fields = {
        "version": event.service_version, "os": event.os, "arch": event.arch, "os_version": event.os_version,
        "ci": {True: "true", False: "false", None: ""}[event.ci], "type": event.event_type, "category": event.category,
    }  # fmt: skip
    if run is None and dimension not in ("segment", "seg_type"):
        return []
    if run is not None:
        fields.update(command=run["command"], exit_code=run["exit_code"])
        if run["duration"] is not None:
            fields["bucket"] = str(rollups.duration_bucket(run["duration"]))
        elif "bucket" in LAYOUTS[dimension]:
            return []
    flags = sorted(run["flags"]) if dimension == "cmd_flag" else [None]
    return [
        SEP.join(flag if name == "flag" else fields[name] if name in ("ci", "bucket", "exit_code") else cut(name, fields[name])
                 for name in LAYOUTS[dimension])
        for flag in flags
    ]  # fmt: skip


def passes(event: Event, filters: Filters) -> bool:
    """The filters compare the first characters a part keeps (docs/storage.md, Segments)."""
    for name, column in (("version", "service_version"), ("os", "os"), ("arch", "arch")):
        wanted = getattr(filters, name)
        if wanted is not None and cut(name, wanted) != cut(name, getattr(event, column)):
            return False
    return filters.ci is None or filters.ci == event.ci


def brute_force(app, period, dimension, filters, per_bucket, prefix) -> dict:
    sums = defaultdict(lambda: [0, 0, 0, 0, 0])
    for event in Event.objects.filter(app=app, timestamp__gte=period.start, timestamp__lt=period.end):
        if not passes(event, filters):
            continue
        run = run_of(event) or {"success": None, "duration": None}
        bucket = stats.floor_to(event.timestamp, period.bucket_size) if per_bucket else None
        for value in values_of(event, dimension):
            if prefix is not None and not value.startswith(prefix):
                continue
            counts = sums[(bucket, value)]
            counts[0] += 1
            counts[1] += run["success"] is True
            counts[2] += run["success"] is False
            if run["duration"] is not None:
                counts[3] += 1
                counts[4] += run["duration"]
    return {key: tuple(counts) for key, counts in sums.items()}


def read(app, period, dimension, filters, per_bucket, prefix) -> dict:
    rows = segments.counts([app.pk], period, dimension, filters=filters, per_bucket=per_bucket, prefix=prefix)
    found = {}
    for row in rows:
        value = SEP.join(row.parts[name] for name in LAYOUTS[dimension])
        assert (row.bucket, value) not in found
        found[(row.bucket, value)] = (row.events, row.succeeded, row.failed, row.timed, row.duration_ms_sum)
    return found


PERIODS = {
    "24 hours": lambda: stats.preset_range("24h", now=NOW),
    "48 hours to the hour": lambda: stats.Period(HOUR - timedelta(hours=47), HOUR + timedelta(hours=1)),
    "4 whole days": lambda: stats.period_of_days((NOW - timedelta(days=3)).date(), NOW.date()),
    "3 closed days": lambda: stats.period_of_days((NOW - timedelta(days=3)).date(), (NOW - timedelta(days=1)).date()),
    "61 hours to the hour": lambda: stats.Period(HOUR - timedelta(hours=60), HOUR + timedelta(hours=1)),
}
few_events = st.builds(
    lambda minutes, user, version, os, arch, ci, command, success, duration, exit_code, flags, event_type: sdk_event(
        NOW - timedelta(minutes=minutes), user=user, version=version,
        os=os, arch=arch, ci=ci, type=event_type,
        data={"command": command, "success": success, "duration_ms": duration, "exit_code": exit_code, "flags": flags},
    ),
    st.integers(0, 80 * 60), st.sampled_from("ab"), st.sampled_from(["1.2.0", "1.3.0", "v" * 64 + "x", "v" * 64 + "y"]),
    st.sampled_from(["linux", "Linux", "windows", ""]), st.sampled_from(["x86_64", "a" + SEP + "b", "a b"]),
    st.sampled_from([True, False, None]), st.sampled_from(["build", "Build", "test", "b%_", 5]),
    st.sampled_from([True, False, None]), st.sampled_from([3, 250.5, 10_000, None]), st.sampled_from([0, 1, 2.0, "x"]),
    st.lists(st.sampled_from(["-v", "--release", "-V"]), max_size=3),
    st.sampled_from(["command_execution", "command_execution", "feature_used"]),
)  # fmt: skip
queries = st.fixed_dictionaries({
    "dimension": st.sampled_from(sorted(LAYOUTS)),
    "period": st.sampled_from(sorted(PERIODS)),
    "daily": st.booleans(),
    "per_bucket": st.booleans(),
    "filters": st.fixed_dictionaries({}, optional={
        "version": st.sampled_from(["1.2.0", "v" * 64 + "x", "2.0.0"]), "os": st.sampled_from(["linux", "", "windows"]),
        "arch": st.sampled_from(["x86_64", "a b"]), "ci": st.booleans(),
    }),
    "prefix": st.none() | st.sampled_from(["build" + SEP, "Build" + SEP, "b", "1.2.0" + SEP, "b%_" + SEP, "", "v"]),
})  # fmt: skip


def check(app, query):
    cache.clear()
    period = PERIODS[query["period"]]()
    if query["daily"]:
        period = stats.with_daily_rollups([app.pk], period)
    filters = Filters(**query["filters"])
    if filters.active and query["dimension"] == "version_duration":
        with pytest.raises(ValueError):
            segments.counts([app.pk], period, query["dimension"], filters=filters)
        return
    arguments = (period, query["dimension"], filters, query["per_bucket"], query["prefix"])
    assert read(app, *arguments) == brute_force(app, *arguments), query


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(few_events, min_size=1, max_size=25),
    deleted=st.integers(0, 5),
    fold=st.booleans(),
    asked=st.lists(queries, min_size=1, max_size=6),
)
def test_counts_equal_a_brute_force_count_of_the_events(app, events, deleted, fold, asked):
    storage.delete_app_events(app.pk)
    store(app, *events, now=NOW)
    pks = sorted(Event.objects.filter(app=app).values_list("pk", flat=True))
    storage.delete_events(app.pk, pks[:deleted])  # negative deltas, summing some values to zero
    if fold:
        storage.fold_rollup_deltas()
    for query in asked:
        check(app, query)


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(strategies.events(now=NOW), min_size=1, max_size=12), asked=st.lists(queries, min_size=1, max_size=4))
def test_counts_equal_a_brute_force_count_on_hostile_fields(app, events, asked):
    storage.delete_app_events(app.pk)
    batch = ingest.validate_events(events, now=NOW)
    assert not batch.errors, batch.errors
    storage.store_batch(app.pk, batch.rows, received_at=NOW)
    for query in asked:
        check(app, query)


def test_a_prefix_is_matched_with_its_case_and_its_wildcard_characters(app):
    store(
        app,
        sdk_event(NOW, data={"command": "build"}),
        sdk_event(NOW, data={"command": "Build"}),
        sdk_event(NOW, data={"command": "b%_"}),
        sdk_event(NOW, data={"command": "bxy"}),
        now=NOW,
    )
    period = stats.preset_range("24h", now=NOW)

    def commands(prefix):
        return sorted(row.parts["command"] for row in segments.counts([app.pk], period, "cmd", prefix=prefix))

    assert commands("build" + SEP) == ["build"]
    assert commands("Build" + SEP) == ["Build"]
    assert commands("b%_") == ["b%_"]
    assert commands("B") == ["Build"]
