"""What one event contributes to the pre-aggregated analytics.

Every event contributes to one HourlyRollup row per dimension (its UTC hour,
the dimension, its value there) and to DailyActor rows for its user and
session. telemetry.storage writes them (ingest appends deltas, deletions
subtract, rebuilds recompute); this module only says what the numbers are.

It is defined twice, once in Python (`event_facts`, for SQLite and for
deletions) and once in SQL (`facts_sql`, for PostgreSQL); tests hold the two
to the same answers.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from datetime import date, datetime

from telemetry.models import HourlyRollup
from telemetry.periods import UTC

COMMAND_EVENT_TYPE = "command_execution"  # what the SDK's track_command() sends
VALUE_LENGTH = HourlyRollup._meta.get_field("value").max_length
# Durations outside this range (negative, or over ~31 years) are not timings.
MAX_DURATION_MS = 10**12


def _duration_bounds() -> tuple[int, ...]:
    """Histogram bucket edges in whole ms, about 25 % apart: percentiles read
    from it are within ~12 % of the exact value."""
    bounds, edge = [1], 1.0
    while bounds[-1] < MAX_DURATION_MS:
        edge *= 1.25
        if math.ceil(edge) > bounds[-1]:
            bounds.append(math.ceil(edge))
    return tuple(bounds)


DURATION_BOUNDS = _duration_bounds()


def duration_bucket(duration_ms: int) -> int:
    """Index of the bucket holding the duration: the number of edges <= it
    (the same as PostgreSQL's width_bucket over DURATION_BOUNDS)."""
    return bisect.bisect_right(DURATION_BOUNDS, duration_ms)


def bucket_range(index: int) -> tuple[int, int | None]:
    """[low, high) of a duration bucket in ms; high is None for the last one."""
    low = 0 if index == 0 else DURATION_BOUNDS[index - 1]
    high = DURATION_BOUNDS[index] if index < len(DURATION_BOUNDS) else None
    return low, high


# --- What one event contributes ---------------------------------------------------------


def _command_facts(event_type: str, data) -> tuple[str | None, bool | None, int | None]:
    """(command name, success, whole-ms duration) of a command event; Nones otherwise."""
    if event_type != COMMAND_EVENT_TYPE:
        return None, None, None
    if not isinstance(data, dict):
        return "", None, None
    command = data.get("command")
    # Command runs without a name are counted under "" rather than left out.
    command = command[:VALUE_LENGTH] if isinstance(command, str) else ""
    success = data.get("success")
    success = success if isinstance(success, bool) else None
    duration = data.get("duration_ms")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration <= MAX_DURATION_MS:
        duration = None
    else:
        duration = math.floor(duration)
    return command, success, duration


def event_facts(
    *, timestamp: datetime, event_type: str, category: str, os: str, arch: str, service_version: str,
    ci: bool | None, data,
) -> tuple[datetime, list[tuple[str, str]], bool | None, int | None]:
    """(UTC hour, [(dimension, value)], success, duration) for one event."""
    hour = timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    command, success, duration = _command_facts(event_type, data)
    values = [
        ("total", ""),
        ("type", event_type),
        ("category", category),
        ("os", os),
        ("arch", arch),
        ("version", service_version),
        ("ci", "" if ci is None else ("true" if ci else "false")),
    ]
    if command is not None:
        values.append(("command", command))
    if duration is not None:
        values.append(("duration", str(duration_bucket(duration))))
    return hour, values, success, duration


Counts = list[int]  # events, succeeded, failed, timed, duration_ms_sum


def add_deltas(deltas: dict, facts, sign: int = 1) -> None:
    hour, values, success, duration = facts
    for dimension, value in values:
        counts = deltas[(hour, dimension, value)]
        counts[0] += sign
        counts[1] += sign * (success is True)
        counts[2] += sign * (success is False)
        if duration is not None:
            counts[3] += sign
            counts[4] += sign * duration


def new_deltas() -> dict[tuple, Counts]:
    return defaultdict(lambda: [0, 0, 0, 0, 0])


def actor_keys(timestamp: datetime, user_id: str, session_id: str) -> list[tuple[str, date, str]]:
    day = timestamp.astimezone(UTC).date()
    keys = [("u", day, user_id)]
    if session_id:
        keys.append(("s", day, session_id))
    return keys


# --- The same in SQL, for PostgreSQL ---------------------------------------------------------

_BOUNDS_SQL = "ARRAY[" + ",".join(map(str, DURATION_BOUNDS)) + "]::bigint[]"

# From rows with the Event columns (a CTE or subquery named by {source}), the
# rollup contributions: one row per event and dimension. Mirrors event_facts().
_FACTS_SQL = f"""
facts AS (
    SELECT date_trunc('hour', s.timestamp, 'UTC') AS hour,
           CASE WHEN s.event_type = '{COMMAND_EVENT_TYPE}' AND jsonb_typeof(s.data -> 'success') = 'boolean'
                THEN (s.data ->> 'success')::boolean END AS success,
           -- float8, as Python reads JSON numbers, so both paths floor the same value.
           CASE WHEN s.event_type = '{COMMAND_EVENT_TYPE}' AND jsonb_typeof(s.data -> 'duration_ms') = 'number'
                     AND (s.data ->> 'duration_ms')::float8 BETWEEN 0 AND {MAX_DURATION_MS}
                THEN floor((s.data ->> 'duration_ms')::float8)::bigint END AS duration,
           CASE WHEN s.event_type = '{COMMAND_EVENT_TYPE}'
                THEN CASE WHEN jsonb_typeof(s.data -> 'command') = 'string'
                          THEN left(s.data ->> 'command', {VALUE_LENGTH}) ELSE '' END END AS command,
           s.event_type, s.category, s.os, s.arch, s.service_version, s.ci
    FROM {{source}} s
),
contributions AS (
    SELECT f.hour, d.dimension, d.value, f.success, f.duration
    FROM facts f
    CROSS JOIN LATERAL (VALUES
        ('total', ''), ('type', f.event_type), ('category', f.category), ('os', f.os),
        ('arch', f.arch), ('version', f.service_version),
        ('ci', CASE WHEN f.ci IS NULL THEN '' WHEN f.ci THEN 'true' ELSE 'false' END),
        ('command', f.command),
        ('duration', width_bucket(f.duration, {_BOUNDS_SQL})::text)
    ) AS d(dimension, value)
    WHERE d.value IS NOT NULL
)"""


def facts_sql(source: str) -> str:
    """The CTEs `facts` and `contributions` (hour, dimension, value, success,
    duration per event and dimension) over `source`: a CTE name or a subquery
    with the Event columns."""
    return _FACTS_SQL.format(source=source)
