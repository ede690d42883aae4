"""Every write and delete of event rows and their derived tables goes through here.

docs/storage.md describes the design; in short:

- **Events and their keys.** `store_batch` stores an event at most once per
  app whatever its timestamp: the id goes into EventKey (primary key app,
  event id) and only the ids that were new there become event rows, in one
  statement on PostgreSQL (docs/protocol.md, Idempotency).
- **Rollups off the request path.** A batch appends what it adds to the
  hourly rollups to RollupDelta (rows nobody else updates, so no lock is
  waited for); `fold_rollup_deltas`, run every few seconds by the scheduler,
  moves them into HourlyRollup in one transaction. Reads go through the
  HourlyCounts view, which adds the unfolded rows, so every figure is exact
  whether or not the fold has run. Deletions append negative deltas.
- **Distinct users and sessions** (DailyActor, and UserDay: users with
  their version and platform) are still written by the batch itself: an
  insert that skips known rows, never an update.
- **Caches** (DailyRollup, DailySketch) are written and dropped here too;
  telemetry.daily and telemetry.sketches decide when.
- **Partitions**: the data side of creating and dropping a time partition
  of the events table (telemetry.partitions decides which).
- **Property summaries** (PropertyBlock and its rows): caches of raw events
  per app and UTC day or hour, written whole here (telemetry.property_summaries
  decides when); every deletion of events drops the blocks of their days.

What an event contributes to the rollups is defined in telemetry.rollups.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime

import orjson
from django.db import IntegrityError
from django.db.models import Q, Sum

from telemetry import rollups
from telemetry.databases import events_atomic, events_connection
from telemetry.models import (
    ROLLUP_DIMENSIONS,
    DailyActor,
    DailyRollup,
    DailySketch,
    Event,
    EventKey,
    HourlyCounts,
    HourlyRollup,
    PropertyBlock,
    PropertyKey,
    PropertySplit,
    PropertyType,
    RollupDelta,
    UserDay,
)
from telemetry.periods import DAY, UTC, start_of_day
from telemetry.properties import EXACT, Scope, Summary

logger = logging.getLogger(__name__)

EVENT_TABLE = Event._meta.db_table
KEY_TABLE = EventKey._meta.db_table
ROLLUP_TABLE = HourlyRollup._meta.db_table
DELTA_TABLE = RollupDelta._meta.db_table
COUNTS_VIEW = HourlyCounts._meta.db_table
ACTOR_TABLE = DailyActor._meta.db_table
USER_DAY_TABLE = UserDay._meta.db_table
USER_DAY_COLUMNS = ("user_id", "service_version", "os", "os_version", "arch")  # then ci, as text
DAILY_TABLE = DailyRollup._meta.db_table

# Event columns an ingest row fills, in the order the insert statements list them.
COLUMNS = (
    "event_id",
    "timestamp",
    "schema_version",
    "event_type",
    "category",
    "user_id",
    "session_id",
    "service_name",
    "service_version",
    "service_language",
    "service_language_version",
    "os",
    "os_version",
    "arch",
    "ci",
    "shell",
    "sdk_version",
    "data",
)
_COUNT_FIELDS = ("events", "succeeded", "failed", "timed", "duration_ms_sum")
_COUNTS = ", ".join(_COUNT_FIELDS)
_ADD_COUNTS = ", ".join(f"{name} = r.{name} + excluded.{name}" for name in _COUNT_FIELDS)


# --- Storing a batch ----------------------------------------------------------------


def store_batch(app_pk: int, rows: list[dict], *, received_at: datetime) -> int:
    """Store the rows (telemetry.ingest's validated rows) atomically; returns how
    many events were new. An id the app already has, or one repeated in the
    batch, is stored once (the first occurrence), so a retried batch stores and
    counts nothing twice."""
    unique: dict[str, dict] = {}
    for row in rows:
        unique.setdefault(row["event_id"], row)
    if not unique:
        return 0
    # A fixed order, so two batches sharing ids lock their keys in the same order.
    rows = [unique[event_id] for event_id in sorted(unique)]
    if events_connection.vendor != "postgresql":
        with events_atomic():
            return _store_sqlite(app_pk, rows, received_at)
    # One statement, which autocommit already makes atomic: a transaction around
    # it would add a BEGIN and a COMMIT round trip. Inside a caller's
    # transaction, the savepoint keeps a failure from spoiling it.
    with events_atomic() if events_connection.in_atomic_block else nullcontext():
        return _store_postgresql(app_pk, rows, received_at)


_PG_TYPES = {"event_id": "uuid", "timestamp": "timestamptz", "ci": "boolean", "data": "jsonb"}
_RETURNED = "timestamp, event_type, category, os, os_version, arch, service_version, ci, user_id, session_id, data"


def _store_sql_postgresql(*, derived: bool = True) -> str:
    """The ingest statement; without `derived`, only keys and events (bench/storage_ceiling.py
    times it that way to show what the deltas and daily actors cost)."""
    # The whole batch travels as one jsonb parameter and PostgreSQL pulls the
    # columns out itself: the cheapest idempotent way measured (docs/performance.md).
    # The keys go in first; only the ids that were new there become events, and
    # only those events add to the rollup deltas and daily actors.
    record = ", ".join(f"{name} {_PG_TYPES.get(name, 'text')}" for name in COLUMNS)
    columns = ", ".join(COLUMNS)
    # A JSON null in event.data would come out of the recordset as SQL NULL; keep it JSON.
    selected = ", ".join("COALESCE(b.data, 'null'::jsonb)" if name == "data" else f"b.{name}" for name in COLUMNS)
    return f"""
    WITH batch AS MATERIALIZED (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS x({record})),
    keys AS (
        INSERT INTO {KEY_TABLE} (app_id, event_id, "timestamp")
        SELECT %(app)s, event_id, "timestamp" FROM batch ORDER BY event_id
        ON CONFLICT DO NOTHING RETURNING event_id
    ),
    inserted AS (
        INSERT INTO {EVENT_TABLE} (app_id, received_at, {columns})
        SELECT %(app)s, %(received)s, {selected} FROM batch b JOIN keys k ON k.event_id = b.event_id
        RETURNING {_RETURNED}
    ),
    {rollups.facts_sql("inserted") + "," if derived else ""}
    {f"deltas AS ({_delta_insert_sql()})," if derived else ""}
    {f"actors AS ({_actors_insert_sql('inserted')})," if derived else ""}
    {f"user_days AS ({_user_days_insert_sql('inserted')})," if derived else ""}
    done AS (SELECT 1)
    SELECT count(*) FROM inserted"""


def _delta_insert_sql(sign: str = "") -> str:
    """Append the grouped contributions (a CTE named `contributions`) as rollup deltas."""
    return f"""
    INSERT INTO {DELTA_TABLE} (app_id, hour, dimension, value, {_COUNTS})
    SELECT %(app)s, hour, dimension, value,
           {sign}count(*), {sign}count(*) FILTER (WHERE success), {sign}count(*) FILTER (WHERE NOT success),
           {sign}count(duration), {sign}coalesce(sum(duration), 0)
    FROM contributions GROUP BY hour, dimension, value"""


def _actors_insert_sql(source: str) -> str:
    return f"""
    INSERT INTO {ACTOR_TABLE} (app_id, day, kind, actor)
    SELECT DISTINCT %(app)s, (s.timestamp AT TIME ZONE 'UTC')::date, a.kind, a.actor
    FROM {source} s CROSS JOIN LATERAL (VALUES ('u', s.user_id), ('s', nullif(s.session_id, ''))) AS a(kind, actor)
    WHERE a.actor IS NOT NULL
    ORDER BY 2, 3, 4
    ON CONFLICT DO NOTHING"""


def _user_days_insert_sql(source: str) -> str:
    columns = ", ".join(USER_DAY_COLUMNS)
    return f"""
    INSERT INTO {USER_DAY_TABLE} (app_id, day, {columns}, ci)
    SELECT DISTINCT %(app)s, (s.timestamp AT TIME ZONE 'UTC')::date, {", ".join(f"s.{name}" for name in USER_DAY_COLUMNS)},
           {rollups.ci_text_sql("s.ci")}
    FROM {source} s
    ORDER BY 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT DO NOTHING"""


_STORE_SQL_POSTGRESQL = _store_sql_postgresql()


def _store_postgresql(app_pk: int, rows: list[dict], received_at: datetime) -> int:
    payload = orjson.dumps(
        [{name: orjson.Fragment(row["data"]) if name == "data" else row[name] for name in COLUMNS} for row in rows]
    )
    with events_connection.cursor() as cursor:
        cursor.execute(_STORE_SQL_POSTGRESQL, {"app": app_pk, "received": received_at, "rows": payload.decode()})
        return cursor.fetchone()[0]


def _store_sqlite(app_pk: int, rows: list[dict], received_at: datetime) -> int:
    # The transaction holds SQLite's write lock from its start (IMMEDIATE), so
    # the keys found here cannot change before the inserts. executemany in one
    # transaction is SQLite's fast path (docs/performance.md). Values are adapted
    # the way Django stores them, so the ORM reads them back: a UUID as 32 hex
    # digits, which a validated (lower-case, hyphenated) id gives without parsing.
    ops = events_connection.ops
    keys = [row["event_id"].replace("-", "") for row in rows]
    with events_connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id FROM {KEY_TABLE} WHERE app_id = %s AND event_id IN ({', '.join(['%s'] * len(keys))})",
            [app_pk, *keys],
        )
        seen = {uuid.UUID(value).hex for (value,) in cursor.fetchall()}
        new = [(key, row) for key, row in zip(keys, rows) if key not in seen]
        if not new:
            return 0
        cursor.executemany(
            f'INSERT INTO {KEY_TABLE} (app_id, event_id, "timestamp") VALUES (%s, %s, %s)',
            [(app_pk, key, ops.adapt_datetimefield_value(row["timestamp"])) for key, row in new],
        )
        received = ops.adapt_datetimefield_value(received_at)
        cursor.executemany(
            f"INSERT INTO {EVENT_TABLE} (app_id, received_at, {', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * (len(COLUMNS) + 2))})",
            [
                (
                    app_pk,
                    received,
                    key,
                    ops.adapt_datetimefield_value(row["timestamp"]),
                    *(row[name] for name in COLUMNS[2:-1]),
                    row["data"].decode(),
                )
                for key, row in new
            ],
        )
    deltas, actors, user_days = rollups.new_deltas(), set(), set()
    for _, row in new:
        rollups.add_deltas(
            deltas,
            rollups.event_facts(
                timestamp=row["timestamp"], event_type=row["event_type"], category=row["category"], os=row["os"],
                arch=row["arch"], service_version=row["service_version"], ci=row["ci"], data=row["data_value"],
                os_version=row["os_version"],
            ),
        )
        actors.update(rollups.actor_keys(row["timestamp"], row["user_id"], row["session_id"]))
        user_days.add(_user_day(row["timestamp"], *(row[name] for name in USER_DAY_COLUMNS), row["ci"]))
    _append_deltas(app_pk, deltas)
    _insert_actors(app_pk, actors)
    _insert_user_days(app_pk, user_days)
    return len(new)


def _user_day(timestamp: datetime, *columns) -> tuple:
    """(day, user, version, os, os version, arch, ci text): a UserDay row's key."""
    *names, ci = columns
    return (timestamp.astimezone(UTC).date(), *names, rollups.ci_text(ci))


def _insert_user_days(app_pk: int, user_days: set) -> None:
    if not user_days:
        return
    adapt = events_connection.ops.adapt_datefield_value
    with events_connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {USER_DAY_TABLE} (app_id, day, {', '.join(USER_DAY_COLUMNS)}, ci) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(app_pk, adapt(day), *rest) for day, *rest in sorted(user_days)],
        )


def _append_deltas(app_pk: int, deltas: dict[tuple, rollups.Counts]) -> None:
    if not deltas:
        return
    adapt = events_connection.ops.adapt_datetimefield_value
    with events_connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {DELTA_TABLE} (app_id, hour, dimension, value, {_COUNTS}) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(app_pk, adapt(hour), dimension, value, *counts) for (hour, dimension, value), counts in sorted(deltas.items())],
        )


def _insert_actors(app_pk: int, actors: set) -> None:
    if not actors:
        return
    adapt = events_connection.ops.adapt_datefield_value
    with events_connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {ACTOR_TABLE} (app_id, day, kind, actor) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(app_pk, adapt(day), kind, actor) for kind, day, actor in sorted(actors)],
        )


# --- Folding rollup deltas ------------------------------------------------------------

FOLD_CHUNK = 50_000  # delta rows per transaction: a few hundred ms at most


@dataclass(frozen=True)
class FoldResult:
    folded: int  # delta rows moved into HourlyRollup
    oldest: datetime | None  # when the oldest of them was appended: now - oldest is the lag this fold ended


def fold_rollup_deltas(*, chunk: int = FOLD_CHUNK, max_chunks: int = 100) -> FoldResult:
    """Move appended rollup deltas into HourlyRollup, `chunk` rows per transaction,
    until none are left (or max_chunks were moved).

    Crash-safe: each chunk is deleted from RollupDelta and added to HourlyRollup
    in one transaction, so a fold killed part-way leaves the chunk where it was.
    Safe to run concurrently: on PostgreSQL each fold takes rows no other fold
    has locked (SKIP LOCKED) and deleted rows cannot be taken twice; SQLite
    runs one writer at a time. Reads see the same sums before and after."""
    folded, oldest = 0, None
    for _ in range(max_chunks):
        with events_atomic():
            if events_connection.vendor == "postgresql":
                moved, first = _fold_chunk_postgresql(chunk)
            else:
                moved, first = _fold_chunk_sqlite(chunk)
        folded += moved
        if first is not None and (oldest is None or first < oldest):
            oldest = first
        if moved < chunk:
            break
    return FoldResult(folded=folded, oldest=oldest)


_UPSERT_ROLLUPS = f"""
    INSERT INTO {ROLLUP_TABLE} AS r (app_id, hour, dimension, value, {_COUNTS})
    SELECT app_id, hour, dimension, value, {", ".join(f"sum({name})" for name in _COUNT_FIELDS)}
    FROM {{source}}
    GROUP BY app_id, hour, dimension, value
    -- Key order: two folds lock shared rows in the same order.
    ORDER BY app_id, dimension, hour, value
    ON CONFLICT (app_id, dimension, hour, value) DO UPDATE SET {_ADD_COUNTS}"""


def _fold_chunk_postgresql(chunk: int) -> tuple[int, datetime | None]:
    # DELETE … RETURNING takes exactly the rows it adds: a row appended while
    # this runs is either in both or in neither. The chunk's ids are read once,
    # into an array: as `id IN (SELECT …)`, statistics taken while the table was
    # nearly empty (after a fold) make the planner re-run the locking subquery
    # for every row (a nested-loop semi join), and a large backlog, such as a
    # rebuild's, then took minutes per chunk instead of about a second.
    sql = f"""
    WITH moved AS (
        DELETE FROM {DELTA_TABLE} WHERE id = ANY(ARRAY(
            SELECT id FROM {DELTA_TABLE} ORDER BY id LIMIT %(chunk)s FOR UPDATE SKIP LOCKED
        ))
        RETURNING app_id, hour, dimension, value, {_COUNTS}, created_at
    ),
    upserted AS ({_UPSERT_ROLLUPS.format(source="moved")} RETURNING r.id, r.events)
    SELECT (SELECT count(*) FROM moved), (SELECT min(created_at) FROM moved),
           (SELECT coalesce(array_agg(id), '{{}}') FROM upserted WHERE events = 0)"""
    with events_connection.cursor() as cursor:
        cursor.execute(sql, {"chunk": chunk})
        moved, oldest, empty = cursor.fetchone()
        if empty:
            # Hours whose events were all deleted: no row rather than a row of zeros.
            cursor.execute(f"DELETE FROM {ROLLUP_TABLE} WHERE id = ANY(%s) AND events = 0", [empty])
    return moved, oldest


def _fold_chunk_sqlite(chunk: int) -> tuple[int, datetime | None]:
    # SQLite has one writer at a time and this transaction holds the lock from
    # its start, so the rows up to `last` cannot change under it.
    with events_connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), max(id), min(created_at) FROM "
            f"(SELECT id, created_at FROM {DELTA_TABLE} ORDER BY id LIMIT %s)",
            [chunk],
        )
        moved, last, oldest = cursor.fetchone()
        if not moved:
            return 0, None
        source = f"(SELECT * FROM {DELTA_TABLE} WHERE id <= %s)"
        # "WHERE true": SQLite's parser needs it before ON CONFLICT in INSERT … SELECT.
        cursor.execute(_UPSERT_ROLLUPS.format(source=source).replace("GROUP BY", "WHERE true GROUP BY"), [last])
        cursor.execute(
            f"DELETE FROM {ROLLUP_TABLE} WHERE events = 0 AND (app_id, dimension, hour, value) IN "
            f"(SELECT app_id, dimension, hour, value FROM {DELTA_TABLE} WHERE id <= %s)",
            [last],
        )
        cursor.execute(f"DELETE FROM {DELTA_TABLE} WHERE id <= %s", [last])
    return moved, _as_datetime(oldest)


def _as_datetime(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(value)  # SQLite's CURRENT_TIMESTAMP text, in UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def unfolded_deltas() -> tuple[int, datetime | None]:
    """How many delta rows wait to be folded, and when the oldest was appended."""
    with events_connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(created_at) FROM {DELTA_TABLE}")
        count, oldest = cursor.fetchone()
    return count, _as_datetime(oldest)


# --- Deleting events ----------------------------------------------------------------------


def delete_events(app_pk: int, event_pks: list[int]) -> int:
    """Delete these events of the app, with their keys, and take them out of the
    rollups, atomically; returns how many were deleted.

    Every deletion of single events (retention, erasure) goes through here so
    the rollups stay exact. Callers pass bounded batches of primary keys."""
    if not event_pks:
        return 0
    with events_atomic():
        events = list(
            Event.objects.filter(app_id=app_pk, pk__in=event_pks).values_list(
                "pk", "event_id", "timestamp", "event_type", "category", "os", "os_version", "arch",
                "service_version", "ci", "user_id", "session_id", "data",
            )
        )
        if not events:
            return 0
        deltas, actors, user_days = rollups.new_deltas(), set(), set()
        for (
            _pk, _id, timestamp, event_type, category, os, os_version, arch, version, ci, user_id, session_id, data,
        ) in events:  # fmt: skip
            rollups.add_deltas(
                deltas,
                rollups.event_facts(timestamp=timestamp, event_type=event_type, category=category, os=os, arch=arch,
                                    service_version=version, ci=ci, data=data, os_version=os_version),
                sign=-1,
            )
            actors.update(rollups.actor_keys(timestamp, user_id, session_id))
            user_days.add(_user_day(timestamp, user_id, version, os, os_version, arch, ci))
        deleted, _ = Event.objects.filter(app_id=app_pk, pk__in=[row[0] for row in events]).delete()
        EventKey.objects.filter(app_id=app_pk, event_id__in=[row[1] for row in events]).delete()
        _append_deltas(app_pk, deltas)
        _drop_actors_without_events(app_pk, actors)
        _drop_user_days_without_events(app_pk, user_days)
        days = {day for _, day, _ in actors}
        forget_sketches(app_pk, days)
        forget_daily_rollups(app_pk, days)
        forget_property_blocks(app_pk, days)
    return deleted


def _drop_actors_without_events(app_pk: int, actors: set) -> None:
    """Forget a user or session on a day once none of its events that day remain."""
    by_day: dict[tuple[str, date], set[str]] = defaultdict(set)
    for kind, day, actor in actors:
        by_day[(kind, day)].add(actor)
    for (kind, day), names in sorted(by_day.items()):
        start = start_of_day(day)
        column = "user_id" if kind == "u" else "session_id"
        remaining = set(
            Event.objects.filter(
                app_id=app_pk, timestamp__gte=start, timestamp__lt=start + DAY, **{f"{column}__in": sorted(names)}
            ).values_list(column, flat=True)
        )
        gone = names - remaining
        if gone:
            DailyActor.objects.filter(app_id=app_pk, kind=kind, day=day, actor__in=sorted(gone)).delete()


def _drop_user_days_without_events(app_pk: int, user_days: set) -> None:
    """Forget a user's version and platform on a day once none of its events that day remain."""
    by_day: dict[date, set[tuple]] = defaultdict(set)
    for day, *rest in user_days:
        by_day[day].add(tuple(rest))
    for day, keys in sorted(by_day.items()):
        start = start_of_day(day)
        remaining = {
            (*names, rollups.ci_text(ci))
            for *names, ci in Event.objects.filter(
                app_id=app_pk, timestamp__gte=start, timestamp__lt=start + DAY,
                user_id__in=sorted({key[0] for key in keys}),
            ).values_list(*USER_DAY_COLUMNS, "ci").distinct()
        }  # fmt: skip
        gone = keys - remaining
        if not gone:
            continue
        # By primary key: one condition per key, OR-ed, is an expression SQLite
        # refuses past 1,000 terms (a retention batch through a busy day).
        doomed = [
            pk
            for pk, *key in UserDay.objects.filter(
                app_id=app_pk, day=day, user_id__in=sorted({key[0] for key in gone})
            ).values_list("pk", *USER_DAY_COLUMNS, "ci")
            if tuple(key) in gone
        ]
        UserDay.objects.filter(pk__in=doomed).delete()


def delete_app_events(app_pk: int, *, batch_size: int = 5000) -> int:
    """Delete every event of the app and everything derived from them; returns how many events went.

    Events go in bounded batches so a big app never holds one huge transaction
    (and its locks) for minutes. Disable the app first so nothing arrives meanwhile."""
    deleted = 0
    while True:
        with events_atomic(), events_connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {EVENT_TABLE} WHERE id IN (SELECT id FROM {EVENT_TABLE} WHERE app_id = %s LIMIT %s)",
                [app_pk, batch_size],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            break
    with events_atomic():
        for model in (EventKey, RollupDelta, HourlyRollup, DailyActor, UserDay, DailySketch, DailyRollup):
            model.objects.filter(app_id=app_pk).delete()
        forget_property_blocks(app_pk)
    return deleted


# --- Rebuilding from raw events ------------------------------------------------


def rebuild_derived(app_pk: int, *, chunk_size: int = 5000) -> None:
    """Recompute everything derived from the app's raw events (their keys, the
    hourly rollups of every dimension, daily actors and user days), replacing what is there, and drop the
    caches built on them. For events loaded around ingest (a bulk seed, a
    restore) and for checking the incremental path."""
    with events_atomic():
        for model in (EventKey, RollupDelta, HourlyRollup, DailyActor, UserDay):
            model.objects.filter(app_id=app_pk).delete()
        forget_sketches(app_pk)
        forget_daily_rollups(app_pk)
        forget_property_blocks(app_pk)
        with events_connection.cursor() as cursor:
            # The first of an id's events keeps the key, as ingest would have had it.
            cursor.execute(
                f'INSERT INTO {KEY_TABLE} (app_id, event_id, "timestamp") '
                f'SELECT app_id, event_id, "timestamp" FROM {EVENT_TABLE} WHERE app_id = %s ORDER BY id '
                f"ON CONFLICT DO NOTHING",
                [app_pk],
            )
        if events_connection.vendor == "postgresql":
            source = f"(SELECT * FROM {EVENT_TABLE} WHERE app_id = %(app)s)"
            with events_connection.cursor() as cursor:
                cursor.execute(
                    f"WITH {rollups.facts_sql(source)}, deltas AS ({_delta_insert_sql()}) SELECT 1", {"app": app_pk}
                )
                cursor.execute(_actors_insert_sql(source), {"app": app_pk})
                cursor.execute(_user_days_insert_sql(source), {"app": app_pk})
        else:
            deltas, actors, user_days = rollups.new_deltas(), set(), set()
            rows = Event.objects.filter(app_id=app_pk).values_list(
                "timestamp", "event_type", "category", "os", "os_version", "arch", "service_version", "ci", "user_id",
                "session_id", "data",
            )
            for timestamp, event_type, category, os, os_version, arch, version, ci, user_id, session_id, data in (
                rows.iterator(chunk_size)
            ):
                rollups.add_deltas(
                    deltas,
                    rollups.event_facts(timestamp=timestamp, event_type=event_type, category=category, os=os, arch=arch,
                                        service_version=version, ci=ci, data=data, os_version=os_version),
                )
                actors.update(rollups.actor_keys(timestamp, user_id, session_id))
                user_days.add(_user_day(timestamp, user_id, version, os, os_version, arch, ci))
            _append_deltas(app_pk, deltas)
            _insert_actors(app_pk, actors)
            _insert_user_days(app_pk, user_days)
    # The rebuilt counts went in as deltas (one per key); fold them now rather than leave them to the scheduler.
    fold_rollup_deltas()


def vacuum_rollup_deltas() -> None:
    """PostgreSQL: reclaim the dead rows and index entries of the delta table. A
    rebuild pushes every rollup row of an app through it once; until autovacuum
    gets there, each read of the (nearly empty) table walks those dead entries,
    tens of milliseconds a page at 10 M events (docs/storage.md)."""
    if events_connection.vendor != "postgresql" or events_connection.in_atomic_block:
        return
    with events_connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {DELTA_TABLE}")


# --- Derived caches: daily rollups and sketches -------------------------------------------


def _day_sql() -> str:
    if events_connection.vendor == "postgresql":
        return "(hour AT TIME ZONE 'UTC')::date"
    return "date(hour)"  # SQLite keeps UTC datetimes as ISO text


def replace_daily_rollups(stale: dict[int, Iterable[date]]) -> None:
    """(Re)build the daily rollups of these apps' days from their hourly counts
    (folded or not), replacing what is there: one delete and one insert whatever
    the number of apps."""
    stale = {app_id: sorted(set(days)) for app_id, days in stale.items() if days}
    if not stale:
        return
    adapt_day = events_connection.ops.adapt_datefield_value
    adapt_moment = events_connection.ops.adapt_datetimefield_value
    dimension_list = ", ".join(["%s"] * len(ROLLUP_DIMENSIONS))
    # Per app: its hour range, then the exact days; `dimension IN (every dimension)`
    # lets PostgreSQL walk rollup_key (app, dimension, hour) one dimension at a time.
    per_app = " OR ".join(
        f"(app_id = %s AND hour >= %s AND hour < %s AND {_day_sql()} IN ({', '.join(['%s'] * len(days))}))"
        for days in stale.values()
    )
    sql = f"""
        INSERT INTO {DAILY_TABLE} AS d (app_id, day, dimension, value, {_COUNTS})
        SELECT app_id, {_day_sql()}, dimension, value, {", ".join(f"sum({name})" for name in _COUNT_FIELDS)}
        FROM {COUNTS_VIEW}
        WHERE dimension IN ({dimension_list}) AND ({per_app})
        GROUP BY app_id, {_day_sql()}, dimension, value
        HAVING sum(events) <> 0
        ON CONFLICT (app_id, dimension, day, value) DO UPDATE SET
            {", ".join(f"{name} = excluded.{name}" for name in _COUNT_FIELDS)}"""
    params = list(ROLLUP_DIMENSIONS)
    for app_id, days in stale.items():
        params += [app_id, adapt_moment(start_of_day(days[0])), adapt_moment(start_of_day(days[-1]) + DAY)]
        params += [adapt_day(day) for day in days]
    doomed = Q()
    for app_id, days in stale.items():
        doomed |= Q(app_id=app_id, day__in=days)
    with events_atomic():
        DailyRollup.objects.filter(doomed).delete()
        with events_connection.cursor() as cursor:
            cursor.execute(sql, params)


def forget_daily_rollups(app_id: int, days: Iterable[date] | None = None) -> None:
    """Drop the app's daily rollups of these days (all of them when None): their hours changed."""
    rows = DailyRollup.objects.filter(app_id=app_id)
    if days is not None:
        rows = rows.filter(day__in=sorted(set(days)))
    rows.delete()


def save_sketches(sketches: Sequence) -> None:
    """Store telemetry.sketches.Sketch tuples, replacing the same app, kind and day."""
    DailySketch.objects.bulk_create(
        [DailySketch(**sketch._asdict()) for sketch in sketches],
        update_conflicts=True,
        unique_fields=["app", "kind", "day"],
        update_fields=["actors", "events", "sketch", "built_at"],
    )


def forget_sketches(app_id: int, days: Iterable[date] | None = None) -> None:
    """Drop the app's sketches of these days (all of them when None): their events changed."""
    rows = DailySketch.objects.filter(app_id=app_id)
    if days is not None:
        rows = rows.filter(day__in=sorted(set(days)))
    rows.delete()


# --- Property summaries (telemetry.properties) ------------------------------------------

_PROPERTY_BATCH = 1000  # rows per INSERT when storing a block


def replace_property_block(app_pk: int, *, span: str, start: datetime, built_at: datetime, summary: Summary) -> bool:
    """Store the summary of the app's events in the span (PropertyBlock.DAY or
    HOUR) starting at `start`, replacing the one there, in one transaction;
    False when a concurrent build of the same block stored its own first
    (both summarised the same events, or the newer one is found stale)."""
    with events_atomic():
        _delete_property_blocks(PropertyBlock.objects.filter(app_id=app_pk, span=span, start=start))
        try:
            with events_atomic():
                block = PropertyBlock.objects.create(
                    app_id=app_pk, span=span, start=start, built_at=built_at, events=summary.events,
                    folded_events=summary.folded_events, other_type_events=summary.other_type_events,
                )  # fmt: skip
        except IntegrityError:
            return False
        common = {"app_id": app_pk, "block_id": block.pk}
        PropertyType.objects.bulk_create(
            [
                PropertyType(**common, **_scope(row.scope), event_type=row.event_type, events=row.events,
                             keys_seen=row.keys_seen, keys_kept=row.keys_kept)
                for row in summary.types
            ],
            batch_size=_PROPERTY_BATCH,
        )  # fmt: skip
        PropertyKey.objects.bulk_create(
            [
                PropertyKey(
                    **common, **_scope(row.scope), event_type=row.event_type, path=row.path, json_type=row.json_type,
                    events=row.figures.events,
                    number_sum=_decimal_text(row.figures.total) if row.json_type == "number" else "",
                    histogram={str(bucket): n for bucket, n in sorted(row.figures.histogram.items())},
                    values=dict(sorted(row.figures.values.items())),
                    other_values=row.figures.other_values, long_values=row.figures.long_values,
                )
                for row in summary.keys
            ],
            batch_size=_PROPERTY_BATCH,
        )  # fmt: skip
        PropertySplit.objects.bulk_create(
            [
                PropertySplit(
                    **common, **_scope(row.scope), event_type=row.event_type, number_path=row.number_path,
                    split_path=row.split_path,
                    values=[
                        [value, figures.events, _decimal_text(figures.total),
                         {str(bucket): n for bucket, n in sorted(figures.histogram.items())}]
                        for value, figures in sorted(row.values.items(), key=lambda item: (item[0] is None, item[0] or ""))
                    ],
                )
                for row in summary.splits
            ],
            batch_size=_PROPERTY_BATCH,
        )  # fmt: skip
    return True


def _decimal_text(number) -> str:
    """An exact sum as short text: 1E+300 rather than 301 digits (the same value)."""
    return str(number.normalize(EXACT))


def _scope(scope: Scope) -> dict:
    if scope is None:
        return {"whole": True}
    version, os, arch, ci = scope
    return {"whole": False, "service_version": version, "os": os, "arch": arch, "ci": ci}


def forget_property_blocks(app_pk: int, days: Iterable[date] | None = None) -> None:
    """Drop the app's property summaries (day and hour blocks) of these UTC days, all of them when None: their events changed."""
    blocks = PropertyBlock.objects.filter(app_id=app_pk)
    if days is not None:
        which = Q()
        for day in sorted(set(days)):
            which |= Q(start__gte=start_of_day(day), start__lt=start_of_day(day) + DAY)
        if not which:
            return
        blocks = blocks.filter(which)
    _delete_property_blocks(blocks)


def forget_property_hours(app_pk: int, *, before: datetime) -> int:
    """Drop the app's hour blocks that start before `before` (day blocks replace them); returns how many went."""
    return _delete_property_blocks(PropertyBlock.objects.filter(app_id=app_pk, span=PropertyBlock.HOUR, start__lt=before))


def _delete_property_blocks(blocks) -> int:
    """Delete these blocks and their rows: the rows first (through their (app, block) index), then the blocks."""
    by_app: dict[int, list[int]] = defaultdict(list)
    for pk, app_id in blocks.values_list("pk", "app_id"):
        by_app[app_id].append(pk)
    for app_id, ids in sorted(by_app.items()):
        for first in range(0, len(ids), _PROPERTY_BATCH):
            chunk = ids[first : first + _PROPERTY_BATCH]
            for model in (PropertyType, PropertyKey, PropertySplit):
                model.objects.filter(app_id=app_id, block_id__in=chunk).delete()
            PropertyBlock.objects.filter(pk__in=chunk).delete()
    return sum(len(ids) for ids in by_app.values())


# --- Time partitions (PostgreSQL) ------------------------------------------------------------


def create_partition(*, name: str, start: date, end: date, default_partition: str) -> None:
    """Create the events partition [start, end) and move into it the events of
    that range that arrived before it existed (they sat in the DEFAULT partition)."""
    lower, upper = f"{start.isoformat()} 00:00:00+00", f"{end.isoformat()} 00:00:00+00"
    with events_atomic(), events_connection.cursor() as cursor:
        # Ingest waits for the moment this takes: rows must not reach the DEFAULT
        # partition for this range between the move and the attach.
        cursor.execute(f"LOCK TABLE {EVENT_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {EVENT_TABLE} INCLUDING DEFAULTS)")
        cursor.execute(
            f'WITH moved AS (DELETE FROM {default_partition} WHERE "timestamp" >= %s AND "timestamp" < %s RETURNING *) '
            f"INSERT INTO {name} SELECT * FROM moved",
            [lower, upper],
        )
        cursor.execute(f"ALTER TABLE {EVENT_TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper])


def drop_partition(*, name: str, start: date, end: date, may_drop: Callable[[set[int]], bool]) -> bool:
    """Drop the events partition [start, end) with everything derived from its
    events (their keys, and the rollups, deltas, actors and caches of those
    hours and days), if `may_drop` says yes for the apps that have events in
    it; returns whether it was dropped.

    Ingest waits while this runs, so no event can land in the partition
    between the decision and the drop."""
    start_at, end_at = start_of_day(start), start_of_day(end)
    with events_atomic(), events_connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {EVENT_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        app_ids = set(
            HourlyCounts.objects.filter(dimension="total", hour__gte=start_at, hour__lt=end_at)
            .values("app_id").annotate(events=Sum("events")).filter(events__gt=0).values_list("app_id", flat=True)
        )  # fmt: skip
        if not may_drop(app_ids):
            return False
        # Every event of these hours lives in this partition, so whatever was
        # derived from the hours and days of its range goes, whichever the app.
        for model in (HourlyRollup, RollupDelta):
            model.objects.filter(hour__gte=start_at, hour__lt=end_at).delete()
        for model in (DailyActor, UserDay, DailySketch, DailyRollup):
            model.objects.filter(day__gte=start, day__lt=end).delete()
        _delete_property_blocks(PropertyBlock.objects.filter(start__gte=start_at, start__lt=end_at))
        cursor.execute(f'DELETE FROM {KEY_TABLE} WHERE "timestamp" >= %s AND "timestamp" < %s', [start_at, end_at])
        # Run deferred foreign-key checks now: a table with pending ones cannot be dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {EVENT_TABLE} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
    return True
