"""Pre-aggregated analytics, kept exactly in step with the events table.

Every event contributes to one HourlyRollup row per dimension (its UTC hour,
the dimension, its value there) and to DailyActor rows for its user and
session. Three paths keep them right:

- ingest adds what a batch really inserted (telemetry.ingest.store_batch:
  on PostgreSQL inside the insert statement itself, elsewhere from the rows
  known to be new), so duplicates never count twice;
- `delete_events` removes events and subtracts exactly what it removed;
- `rebuild` recomputes an app's rollups from raw events, and must give the
  same numbers as the incremental path (a test checks it on both databases).

Two caches are derived from these for long ranges: daily sums of the hourly
rows (telemetry.daily) and daily sketches of DailyActor (telemetry.sketches).
Every deletion here drops both for the days it touches.

What an event contributes is defined twice, once in Python (`event_facts`, for
SQLite) and once in SQL (`_FACTS_SQL`, for PostgreSQL); tests hold the two to
the same answers.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.db import connection, transaction

from telemetry import daily, sketches
from telemetry.models import ROLLUP_DIMENSIONS, DailyActor, Event, HourlyRollup

UTC = dt_timezone.utc
COMMAND_EVENT_TYPE = "command_execution"  # what the SDK's track_command() sends
DIMENSIONS = ROLLUP_DIMENSIONS
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


# --- SQL for PostgreSQL ---------------------------------------------------------------------

_BOUNDS_SQL = "ARRAY[" + ",".join(map(str, DURATION_BOUNDS)) + "]::bigint[]"

# From rows with the Event columns (a CTE named by {source}), the rollup
# contributions: one row per event and dimension. Mirrors event_facts().
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

_ROLLUP_TABLE = HourlyRollup._meta.db_table
_ACTOR_TABLE = DailyActor._meta.db_table
_EVENT_TABLE = Event._meta.db_table


def _rollup_upsert_sql(sign: str = "") -> str:
    """Add (or with sign '-', subtract) the grouped contributions into the rollup table.
    Rows go in key order so concurrent batches lock shared rows in the same order."""
    return f"""
    INSERT INTO {_ROLLUP_TABLE} AS r (app_id, hour, dimension, value, events, succeeded, failed, timed, duration_ms_sum)
    SELECT %(app)s, hour, dimension, value,
           {sign}count(*), {sign}count(*) FILTER (WHERE success), {sign}count(*) FILTER (WHERE NOT success),
           {sign}count(duration), {sign}coalesce(sum(duration), 0)
    FROM contributions GROUP BY hour, dimension, value ORDER BY hour, dimension, value
    ON CONFLICT (app_id, dimension, hour, value) DO UPDATE SET
        events = r.events + excluded.events, succeeded = r.succeeded + excluded.succeeded,
        failed = r.failed + excluded.failed, timed = r.timed + excluded.timed,
        duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum"""


_ACTORS_SQL = f"""
    INSERT INTO {_ACTOR_TABLE} (app_id, day, kind, actor)
    SELECT DISTINCT %(app)s, (s.timestamp AT TIME ZONE 'UTC')::date, a.kind, a.actor
    FROM {{source}} s CROSS JOIN LATERAL (VALUES ('u', s.user_id), ('s', nullif(s.session_id, ''))) AS a(kind, actor)
    WHERE a.actor IS NOT NULL
    ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING"""


def postgresql_insert_with_rollups(insert_sql: str) -> str:
    """Wrap an INSERT INTO events ... (without RETURNING) so the same statement
    also adds the rows it really inserted to the rollups. Its one result row
    is the number of events inserted."""
    returning = "timestamp, event_type, category, os, arch, service_version, ci, user_id, session_id, data"
    return f"""
    WITH inserted AS ({insert_sql} RETURNING {returning}),
    {_FACTS_SQL.format(source="inserted")},
    rolled AS ({_rollup_upsert_sql()}),
    actors AS ({_ACTORS_SQL.format(source="inserted")})
    SELECT count(*) FROM inserted"""


# --- Ingest, on databases without data-modifying CTEs ---------------------------------------


def add_rows(app_pk: int, rows: Iterable[dict]) -> None:
    """Add newly inserted events (ingest row dicts with parsed `data_value`) to the rollups."""
    deltas, actors = new_deltas(), set()
    for row in rows:
        add_deltas(
            deltas,
            event_facts(
                timestamp=row["timestamp"], event_type=row["event_type"], category=row["category"], os=row["os"],
                arch=row["arch"], service_version=row["service_version"], ci=row["ci"], data=row["data_value"],
            ),
        )
        actors.update(actor_keys(row["timestamp"], row["user_id"], row["session_id"]))
    _apply_deltas(app_pk, deltas)
    _insert_actors(app_pk, actors)


def _apply_deltas(app_pk: int, deltas: dict[tuple, Counts]) -> None:
    if not deltas:
        return
    adapt = connection.ops.adapt_datetimefield_value
    sql = f"""
        INSERT INTO {_ROLLUP_TABLE} AS r (app_id, hour, dimension, value, events, succeeded, failed, timed, duration_ms_sum)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (app_id, dimension, hour, value) DO UPDATE SET
            events = r.events + excluded.events, succeeded = r.succeeded + excluded.succeeded,
            failed = r.failed + excluded.failed, timed = r.timed + excluded.timed,
            duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum"""
    params = [(app_pk, adapt(hour), dimension, value, *counts) for (hour, dimension, value), counts in sorted(deltas.items())]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _insert_actors(app_pk: int, actors: set) -> None:
    if not actors:
        return
    adapt = connection.ops.adapt_datefield_value
    sql = f"INSERT INTO {_ACTOR_TABLE} (app_id, day, kind, actor) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(app_pk, adapt(day), kind, actor) for kind, day, actor in sorted(actors)])


# --- Deleting events --------------------------------------------------------------------------


def delete_events(app_pk: int, event_pks: list[int]) -> int:
    """Delete these events of the app and subtract them from the rollups, atomically.

    Every deletion of events (retention, erasure) goes through here so the
    rollups stay exact. Callers pass bounded batches of primary keys."""
    if not event_pks:
        return 0
    with transaction.atomic():
        events = list(
            Event.objects.filter(app_id=app_pk, pk__in=event_pks).values_list(
                "pk", "timestamp", "event_type", "category", "os", "arch", "service_version", "ci",
                "user_id", "session_id", "data",
            )
        )
        if not events:
            return 0
        deltas, actors = new_deltas(), set()
        for _pk, timestamp, event_type, category, os, arch, version, ci, user_id, session_id, data in events:
            add_deltas(
                deltas,
                event_facts(timestamp=timestamp, event_type=event_type, category=category, os=os, arch=arch,
                            service_version=version, ci=ci, data=data),
                sign=-1,
            )
            actors.update(actor_keys(timestamp, user_id, session_id))
        deleted, _ = Event.objects.filter(app_id=app_pk, pk__in=[row[0] for row in events]).delete()
        _apply_deltas(app_pk, deltas)
        _drop_empty_rollups(app_pk, {hour for hour, _, _ in deltas})
        _drop_actors_without_events(app_pk, actors)
        days = {day for _, day, _ in actors}
        sketches.forget(app_pk, days)
        daily.forget(app_pk, days)
    return deleted


def _drop_empty_rollups(app_pk: int, hours: set[datetime]) -> None:
    HourlyRollup.objects.filter(app_id=app_pk, hour__in=sorted(hours), events=0).delete()


def _drop_actors_without_events(app_pk: int, actors: set) -> None:
    """Forget a user or session on a day once none of its events that day remain."""
    by_day: dict[tuple[str, date], set[str]] = defaultdict(set)
    for kind, day, actor in actors:
        by_day[(kind, day)].add(actor)
    for (kind, day), names in sorted(by_day.items()):
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        column = "user_id" if kind == "u" else "session_id"
        remaining = set(
            Event.objects.filter(
                app_id=app_pk, timestamp__gte=start, timestamp__lt=start + timedelta(days=1),
                **{f"{column}__in": sorted(names)},
            ).values_list(column, flat=True)
        )
        gone = names - remaining
        if gone:
            DailyActor.objects.filter(app_id=app_pk, kind=kind, day=day, actor__in=sorted(gone)).delete()


# --- Rebuilding from raw events ----------------------------------------------------------------


def rebuild(app_pk: int, *, chunk_size: int = 5000) -> None:
    """Recompute the app's rollups from its raw events (replacing what is there)."""
    with transaction.atomic():
        HourlyRollup.objects.filter(app_id=app_pk).delete()
        DailyActor.objects.filter(app_id=app_pk).delete()
        sketches.forget(app_pk)
        daily.forget(app_pk)
        if connection.vendor == "postgresql":
            source = f"(SELECT * FROM {_EVENT_TABLE} WHERE app_id = %(app)s)"
            with connection.cursor() as cursor:
                cursor.execute(f"WITH {_FACTS_SQL.format(source=source)} {_rollup_upsert_sql()}", {"app": app_pk})
                cursor.execute(_ACTORS_SQL.format(source=source), {"app": app_pk})
            return
        deltas, actors = new_deltas(), set()
        rows = Event.objects.filter(app_id=app_pk).values_list(
            "timestamp", "event_type", "category", "os", "arch", "service_version", "ci", "user_id", "session_id", "data"
        )
        for timestamp, event_type, category, os, arch, version, ci, user_id, session_id, data in rows.iterator(chunk_size):
            add_deltas(
                deltas,
                event_facts(timestamp=timestamp, event_type=event_type, category=category, os=os, arch=arch,
                            service_version=version, ci=ci, data=data),
            )
            actors.update(actor_keys(timestamp, user_id, session_id))
        _apply_deltas(app_pk, deltas)
        _insert_actors(app_pk, actors)
