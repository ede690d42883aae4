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
from typing import NamedTuple

from telemetry.models import HourlyRollup
from telemetry.periods import UTC

COMMAND_EVENT_TYPE = "command_execution"  # what the SDK's track_command() sends
# The plain dimensions' values are cut to this (the longest event field is 200);
# segmented values are built from parts cut to PART_LENGTHS, so they fit too.
VALUE_LENGTH = 200
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


# --- Segmented dimensions ---------------------------------------------------------------
#
# The plain dimensions count events by one field at a time. The filter bar
# (version, OS, arch, CI) and the release pages need counts by several at
# once, so these dimensions' values join parts with SEP, in the order listed.
# Each part is cut to its PART_LENGTHS and has SEP replaced by a space, so a
# value always splits back into the same parts and stays short enough to index.
# Command-centred values lead with the command, so a command's rows are the
# values starting with its name and SEP: one prefix match, no value split in SQL.

SEP = "\x1f"
PART_LENGTHS = {
    "version": 64, "os": 64, "arch": 64, "ci": 5, "os_version": 64, "type": 128, "category": 64,
    "command": 128, "bucket": 3, "exit_code": 11, "flag": 64,
}  # fmt: skip
SEGMENT = ("version", "os", "arch", "ci")  # the filter bar's fields, in every segmented value
SEGMENTED_DIMENSIONS = {
    "segment": (*SEGMENT, "os_version"),  # every event
    "seg_type": (*SEGMENT, "type", "category"),  # every event
    "cmd": ("command", *SEGMENT),  # command runs
    "cmd_duration": ("command", *SEGMENT, "bucket"),  # timed command runs
    "cmd_exit": ("command", *SEGMENT, "exit_code"),  # command runs; "" without an integer exit code
    "cmd_flag": ("command", *SEGMENT, "flag"),  # one row per distinct flag of a run
    "version_duration": ("version", "command", "bucket"),  # release health's percentiles, unfiltered
}
MAX_FLAGS = 32  # flags read per run: the first 32 elements of data.flags
EXIT_CODE_RANGE = (-(2**31), 2**31 - 1)


class Segment(NamedTuple):
    """The filter bar's fields of a segmented value, as parts (ci as a bool or None)."""

    version: str
    os: str
    arch: str
    ci: bool | None


def part(name: str, value: str) -> str:
    """A field as a part of a segmented value."""
    return value[: PART_LENGTHS[name]].replace(SEP, " ")


def ci_text(ci: bool | None) -> str:
    return "" if ci is None else ("true" if ci else "false")


def split(dimension: str, value: str) -> dict[str, str]:
    """A segmented dimension's value as {part name: part}."""
    return dict(zip(SEGMENTED_DIMENSIONS[dimension], value.split(SEP)))


def segment_of(parts: dict[str, str]) -> Segment:
    return Segment(parts["version"], parts["os"], parts["arch"], {"true": True, "false": False}.get(parts["ci"]))


def _exit_code(data) -> str:
    code = data.get("exit_code") if isinstance(data, dict) else None
    if isinstance(code, bool) or not isinstance(code, (int, float)):
        return ""
    if isinstance(code, float) and not (math.isfinite(code) and code.is_integer()):
        return ""
    code = int(code)
    return str(code) if EXIT_CODE_RANGE[0] <= code <= EXIT_CODE_RANGE[1] else ""


def _flags(data) -> list[str]:
    flags = data.get("flags") if isinstance(data, dict) else None
    if not isinstance(flags, list):
        return []
    return sorted({part("flag", flag) for flag in flags[:MAX_FLAGS] if isinstance(flag, str)})


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
    ci: bool | None, data, os_version: str = "",
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
        ("ci", ci_text(ci)),
    ]
    segment = SEP.join(
        [part("version", service_version), part("os", os), part("arch", arch), ci_text(ci)]
    )
    values.append(("segment", segment + SEP + part("os_version", os_version)))
    values.append(("seg_type", SEP.join([segment, part("type", event_type), part("category", category)])))
    bucket = str(duration_bucket(duration)) if duration is not None else None
    if command is not None:
        values.append(("command", command))
        run = part("command", command) + SEP + segment
        values.append(("cmd", run))
        values.append(("cmd_exit", run + SEP + _exit_code(data)))
        values.extend(("cmd_flag", run + SEP + flag) for flag in _flags(data))
        if bucket is not None:
            values.append(("cmd_duration", run + SEP + bucket))
            values.append(
                ("version_duration", SEP.join([part("version", service_version), part("command", command), bucket]))
            )
    if bucket is not None:
        values.append(("duration", bucket))
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


def _part_sql(name: str, expression: str) -> str:
    return f"replace(left({expression}, {PART_LENGTHS[name]}), chr(31), ' ')"


_CI_SQL = "CASE WHEN {0} IS NULL THEN '' WHEN {0} THEN 'true' ELSE 'false' END"


def ci_text_sql(column: str) -> str:
    """ci_text() in SQL."""
    return _CI_SQL.format(column)


_SEGMENT_SQL = " || chr(31) || ".join(
    [_part_sql("version", "f.service_version"), _part_sql("os", "f.os"), _part_sql("arch", "f.arch"),
     _CI_SQL.format("f.ci")]
)  # fmt: skip

# From rows with the Event columns (a CTE or subquery named by {source}), the
# rollup contributions: one row per event and dimension (and flag). Mirrors event_facts().
#
# `parts` is fenced twice with OFFSET 0, which keeps PostgreSQL from pulling a
# subquery up into its reader (that would paste a column's expression wherever
# the column is used): the segment is computed once per event, and the run
# (command and segment) once, though four values hold it. Flags join the same
# lateral list, so `parts` is read once and never spooled to a temporary store.
# Together about 2.5 us less PostgreSQL CPU per event (docs/storage.md, Segments).
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
           -- Exit codes and flags are only read from command runs (cmd_exit, cmd_flag).
           CASE WHEN s.event_type = '{COMMAND_EVENT_TYPE}' AND jsonb_typeof(s.data -> 'exit_code') = 'number'
                     AND (s.data -> 'exit_code')::numeric = floor((s.data -> 'exit_code')::numeric)
                     AND (s.data -> 'exit_code')::numeric BETWEEN {EXIT_CODE_RANGE[0]} AND {EXIT_CODE_RANGE[1]}
                THEN (s.data -> 'exit_code')::numeric::bigint::text ELSE '' END AS exit_code,
           CASE WHEN s.event_type = '{COMMAND_EVENT_TYPE}' AND jsonb_typeof(s.data -> 'flags') = 'array'
                THEN s.data -> 'flags' END AS flags,
           s.event_type, s.category, s.os, s.os_version, s.arch, s.service_version, s.ci
    FROM {{source}} s
),
parts AS (
    SELECT f.*, {_part_sql("command", "f.command")} || chr(31) || f.segment AS run
    FROM (SELECT f.*, {_SEGMENT_SQL} AS segment, width_bucket(f.duration, {{bounds}})::text AS bucket
          FROM facts f OFFSET 0) f
    OFFSET 0
),
contributions AS (
    SELECT p.hour, d.dimension, d.value, p.success, p.duration
    FROM parts p
    CROSS JOIN LATERAL (
        VALUES
        ('total', ''), ('type', p.event_type), ('category', p.category), ('os', p.os),
        ('arch', p.arch), ('version', p.service_version),
        ('ci', {_CI_SQL.format("p.ci")}),
        ('command', p.command),
        ('duration', p.bucket),
        ('segment', p.segment || chr(31) || {_part_sql("os_version", "p.os_version")}),
        ('seg_type', p.segment || chr(31) || {_part_sql("type", "p.event_type")} || chr(31)
                     || {_part_sql("category", "p.category")}),
        ('cmd', p.run),
        ('cmd_exit', p.run || chr(31) || p.exit_code),
        ('cmd_duration', p.run || chr(31) || p.bucket),
        ('version_duration', {_part_sql("version", "p.service_version")} || chr(31)
                             || {_part_sql("command", "p.command")} || chr(31) || p.bucket)
        UNION ALL
        -- One row per distinct flag among the first MAX_FLAGS elements that are strings.
        SELECT DISTINCT 'cmd_flag', p.run || chr(31) || {_part_sql("flag", "e.v #>> '{{}}'")}
        FROM jsonb_array_elements(p.flags) WITH ORDINALITY AS e(v, i)
        WHERE p.command IS NOT NULL AND e.i <= {MAX_FLAGS} AND jsonb_typeof(e.v) = 'string'
    ) AS d(dimension, value)
    WHERE d.value IS NOT NULL
)"""


def facts_sql(source: str) -> str:
    """The CTEs `facts` and `contributions` (hour, dimension, value, success,
    duration per event and dimension) over `source`: a CTE name or a subquery
    with the Event columns."""
    return _FACTS_SQL.format(source=source, bounds=_BOUNDS_SQL)
