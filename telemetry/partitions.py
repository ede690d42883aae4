"""Time partitions of the events table on PostgreSQL.

On PostgreSQL the events table is partitioned by range of `timestamp` (UTC
months by default, or days: CLACKS_PARTITION_INTERVAL), with a DEFAULT
partition catching events outside every range. `ensure_partitions` creates
the coming partitions ahead of time; `drop_expired_partitions` drops a whole
partition once every app with events in it is past its retention, which is
far cheaper than deleting its rows. SQLite keeps a plain table and these
functions do nothing there.

A partitioned table's unique keys must contain the partition key, so the
events table has none of its own: an event id is stored once per app through
EventKey, whose rows are dropped with their partition (telemetry.storage).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings

from telemetry import storage
from telemetry.databases import events_connection
from telemetry.periods import UTC

logger = logging.getLogger(__name__)

TABLE = "telemetry_event"
DEFAULT_PARTITION = f"{TABLE}_default"
_BOUND = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2}) 00:00:00\+00'\) TO \('(\d{4}-\d{2}-\d{2}) 00:00:00\+00'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: date  # inclusive, UTC midnight
    end: date  # exclusive

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time.min, tzinfo=UTC)


def interval_bounds(day: date, interval: str | None = None) -> tuple[date, date]:
    """The [start, end) of the partition interval holding this UTC day."""
    interval = interval or settings.CLACKS_PARTITION_INTERVAL
    if interval == "day":
        return day, day + timedelta(days=1)
    start = day.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def partition_name(start: date) -> str:
    return f"{TABLE}_p{start:%Y%m%d}"


def is_partitioned() -> bool:
    if events_connection.vendor != "postgresql":
        return False
    with events_connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def existing_partitions() -> list[Partition]:
    """The range partitions of the events table, oldest first (the DEFAULT one excluded)."""
    if not is_partitioned():
        return []
    with events_connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        rows = cursor.fetchall()
    partitions = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            partitions.append(Partition(name, date.fromisoformat(match[1]), date.fromisoformat(match[2])))
    return sorted(partitions, key=lambda partition: partition.start)


def ensure_partitions(*, now: datetime, ahead: int = 3) -> list[str]:
    """Create the partitions for the current interval and `ahead` more; returns the new names.

    Events of a range that arrived before its partition existed sit in the
    DEFAULT partition; they are moved into the new partition as it is made."""
    if not is_partitioned():
        return []
    existing = existing_partitions()
    created = []
    start = interval_bounds(now.astimezone(UTC).date())[0]
    for _ in range(ahead + 1):
        start, end = interval_bounds(start)
        if not any(p.start < end and start < p.end for p in existing):  # skip overlaps (interval changed)
            _create_partition(start, end)
            created.append(partition_name(start))
            existing.append(Partition(partition_name(start), start, end))
        start = end
    return created


def _create_partition(start: date, end: date) -> None:
    storage.create_partition(name=partition_name(start), start=start, end=end, default_partition=DEFAULT_PARTITION)
    logger.info("created partition %s", partition_name(start))


def drop_expired_partitions(*, now: datetime) -> list[str]:
    """Drop every partition whose events are all past their app's retention; returns the names.

    Which apps have events in a partition comes from the hourly counts, which
    lose exactly those hours and days with it (telemetry.storage.drop_partition)."""
    from organizations.models import App

    dropped = []
    for partition in existing_partitions():
        if partition.end_at > now:
            break

        def all_expired(app_ids: set[int], partition=partition) -> bool:
            apps = App.objects.select_related("organization").filter(pk__in=app_ids)
            if len(apps) != len(app_ids):
                return False  # an app deleted mid-way: leave it to row deletes
            # An app that archives loses its events through row deletes, after the archive
            # is written (telemetry.archive); the partition goes once it is empty.
            return all(
                not app.effective_archive and _expired(app.effective_retention_days, partition, now=now) for app in apps
            )

        if storage.drop_partition(name=partition.name, start=partition.start, end=partition.end, may_drop=all_expired):
            logger.info("dropped partition %s (every app in it past retention)", partition.name)
            dropped.append(partition.name)
    return dropped


def _expired(retention_days: int | None, partition: Partition, *, now: datetime) -> bool:
    return retention_days is not None and partition.end_at <= now - timedelta(days=retention_days)


# --- Converting the table (used by the migration) -------------------------------------------


def partition_events_table(schema_editor, *, ahead: int = 3) -> None:
    """Turn the plain events table into a partitioned one, keeping every row."""
    execute = schema_editor.execute
    execute(
        f'CREATE TABLE {TABLE}_partitioned (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY) '
        f'PARTITION BY RANGE ("timestamp")'
    )
    execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE}_partitioned DEFAULT")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'SELECT min("timestamp"), max("timestamp") FROM {TABLE}')
        oldest, newest = cursor.fetchone()
    today = datetime.now(UTC).date()
    first = min(oldest.astimezone(UTC).date(), today) if oldest else today
    start, _ = interval_bounds(first)
    last = interval_bounds(today)[0]
    for _ in range(ahead):
        last = interval_bounds(last)[1]
    while start <= last:
        _, end = interval_bounds(start)
        execute(
            f"CREATE TABLE {partition_name(start)} PARTITION OF {TABLE}_partitioned "
            f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
        )
        start = end
    execute(f"INSERT INTO {TABLE}_partitioned SELECT * FROM {TABLE}")
    execute(f"DROP TABLE {TABLE}")
    execute(f"ALTER TABLE {TABLE}_partitioned RENAME TO {TABLE}")
    _add_keys(schema_editor, unique=("app_id", "event_id", '"timestamp"'), primary=("id", '"timestamp"'))
    execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)"
    )


def unpartition_events_table(schema_editor) -> None:
    """The reverse: a plain table again (fails if an event id repeats with another timestamp)."""
    execute = schema_editor.execute
    execute(f"CREATE TABLE {TABLE}_plain (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY)")
    execute(f"INSERT INTO {TABLE}_plain SELECT * FROM {TABLE}")
    execute(f"DROP TABLE {TABLE}")
    execute(f"ALTER TABLE {TABLE}_plain RENAME TO {TABLE}")
    _add_keys(schema_editor, unique=("app_id", "event_id"), primary=("id",))
    execute(f"CREATE INDEX {TABLE}_app_id ON {TABLE} (app_id)")
    execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)"
    )


def _add_keys(schema_editor, *, unique: tuple[str, ...], primary: tuple[str, ...]) -> None:
    execute = schema_editor.execute
    execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY ({', '.join(primary)})")
    # Names as in telemetry.models.Event.Meta, so the schema reads the same.
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT event_once_per_app UNIQUE ({', '.join(unique)})")
    execute(f'CREATE INDEX event_app_time ON {TABLE} (app_id, "timestamp")')
    if schema_editor.connection.features.supports_foreign_keys:  # not on an events server (telemetry.databases)
        execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_app_id_fk FOREIGN KEY (app_id) "
            f"REFERENCES organizations_app (id) DEFERRABLE INITIALLY DEFERRED"
        )
