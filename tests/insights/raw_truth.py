"""Brute-force figures over raw Event rows, for comparing with the rollup-based reads.

Everything here reads the stored events one by one in Python and counts them
the plainest way: no rollups, no UserDay, no SQL aggregates.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

from dashboard.filters import Filters
from telemetry.models import Event
from telemetry.rollups import COMMAND_EVENT_TYPE, MAX_DURATION_MS, bucket_range, duration_bucket

UTC = timezone.utc


def events(app_ids) -> list[Event]:
    return list(Event.objects.filter(app_id__in=list(app_ids)))


def passes(event: Event, filters: Filters) -> bool:
    """The filter bar's meaning, on one event (values here are short: no part is cut)."""
    wanted = {"service_version": filters.version, "os": filters.os, "arch": filters.arch, "ci": filters.ci}
    return all(value is None or getattr(event, column) == value for column, value in wanted.items())


def within(rows, start: datetime, end: datetime, filters: Filters) -> list[Event]:
    return [event for event in rows if start <= event.timestamp < end and passes(event, filters)]


def days_of(start: datetime, end: datetime) -> tuple[date, date]:
    return start.astimezone(UTC).date(), (end.astimezone(UTC) - timedelta(microseconds=1)).date()


def on_days(rows, first: date, last: date, filters: Filters) -> list[Event]:
    return [event for event in rows if first <= event.timestamp.astimezone(UTC).date() <= last and passes(event, filters)]


def distinct_users(rows) -> int:
    return len({event.user_id for event in rows})


def distinct_sessions(rows) -> int:
    return len({event.session_id for event in rows if event.session_id})


def success(event: Event) -> bool | None:
    value = event.data.get("success") if isinstance(event.data, dict) else None
    return value if isinstance(value, bool) else None


def duration(event: Event) -> int | None:
    value = event.data.get("duration_ms") if isinstance(event.data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_DURATION_MS:
        return None
    return math.floor(value)


def command(event: Event) -> str:
    value = event.data.get("command") if isinstance(event.data, dict) else None
    return value if isinstance(value, str) else ""


def commands(rows) -> list[Event]:
    return [event for event in rows if event.event_type == COMMAND_EVENT_TYPE]


def percentiles(durations: list[int]) -> list[float | None]:
    """Nearest-rank p50/p90/p99, reported as the middle of the histogram bucket holding that rank."""
    if not durations:
        return [None, None, None]
    ordered = sorted(durations)
    result = []
    for p in (0.5, 0.9, 0.99):
        value = ordered[max(1, math.ceil(p * len(ordered))) - 1]
        low, high = bucket_range(duration_bucket(value))
        result.append(float(low) if high is None else (low + high - 1) / 2)
    return result


def ci_text(ci: bool | None) -> str:
    return "" if ci is None else ("true" if ci else "false")


def breakdown_counts(rows, column: str) -> Counter:
    if column == "ci":
        return Counter(ci_text(event.ci) for event in rows)
    return Counter(getattr(event, column) for event in rows)


def per_bucket(rows, step: timedelta) -> Counter:
    counts = Counter()
    for event in rows:
        moment = event.timestamp.astimezone(UTC)
        if step == timedelta(hours=1):
            counts[moment.replace(minute=0, second=0, microsecond=0)] += 1
        else:
            counts[moment.replace(hour=0, minute=0, second=0, microsecond=0)] += 1
    return counts


def platform_figures(rows_in_period, rows_on_days) -> dict:
    """{(os, arch): (users, events, runs, succeeded, failed, {os_version: (users, events)})}
    for the platforms with events in the period; users over the whole days."""
    result = {}
    by_platform = defaultdict(list)
    for event in rows_in_period:
        by_platform[(event.os, event.arch)].append(event)
    for key, rows in by_platform.items():
        day_rows = [event for event in rows_on_days if (event.os, event.arch) == key]
        runs = commands(rows)
        versions = {}
        for os_version in {event.os_version for event in rows}:
            versions[os_version] = (
                distinct_users([event for event in day_rows if event.os_version == os_version]),
                sum(1 for event in rows if event.os_version == os_version),
            )
        result[key] = (
            distinct_users(day_rows),
            len(rows),
            len(runs),
            sum(1 for event in runs if success(event) is True),
            sum(1 for event in runs if success(event) is False),
            versions,
        )
    return result
