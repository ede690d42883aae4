"""The segmented rollups and UserDay against the raw events they summarise."""

from __future__ import annotations

from datetime import timedelta

from dashboard import segments, stats
from dashboard.filters import Filters
from telemetry.models import UserDay
from tests.dashboard.conftest import NOW, sdk_event, store


def test_segmented_counts_follow_the_filters(app):
    day = stats.period_of_days((NOW - timedelta(days=3)).date(), NOW.date())
    store(
        app,
        sdk_event(NOW - timedelta(days=1), user="a", data={"command": "build", "success": True, "duration_ms": 10,
                                                           "exit_code": 0, "flags": ["--release", "-v", "-v"]}),
        sdk_event(NOW - timedelta(days=1), user="b", os="windows", arch="aarch64",
                  data={"command": "build", "success": False, "duration_ms": 900, "exit_code": 2}),
        sdk_event(NOW - timedelta(days=2), user="b", os="windows", arch="aarch64", version="1.3.0",
                  data={"command": "test", "success": True}),
    )  # fmt: skip
    everything = {(row.parts["command"], row.parts["os"]): row.events for row in segments.counts([app.pk], day, "cmd")}
    assert everything == {("build", "linux"): 1, ("build", "windows"): 1, ("test", "windows"): 1}

    windows = segments.counts([app.pk], day, "cmd", filters=Filters(os="windows", arch="aarch64"))
    assert sorted((row.parts["command"], row.failed) for row in windows) == [("build", 1), ("test", 0)]

    flags = {row.parts["flag"]: row.events for row in segments.counts([app.pk], day, "cmd_flag", prefix="build\x1f")}
    assert flags == {"--release": 1, "-v": 1}
    exits = {row.parts["exit_code"]: row.events for row in segments.counts([app.pk], day, "cmd_exit")}
    assert exits == {"0": 1, "2": 1, "": 1}

    per_day = segments.counts([app.pk], day, "segment", per_bucket=True)
    assert sorted((row.bucket.date(), row.parts["version"]) for row in per_day) == [
        ((NOW - timedelta(days=2)).date(), "1.3.0"),
        ((NOW - timedelta(days=1)).date(), "1.2.0"),
        ((NOW - timedelta(days=1)).date(), "1.2.0"),
    ]

    users = segments.user_days([app.pk], day.start.date(), NOW.date(), filters=Filters(version="1.3.0"))
    assert list(users.values_list("user_id", "os", "ci")) == [("client_b", "windows", "false")]
    assert UserDay.objects.filter(app=app).count() == 3
