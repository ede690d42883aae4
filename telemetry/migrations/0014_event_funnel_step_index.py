"""The index funnels read on PostgreSQL (dashboard.funnels; docs/insights.md, Funnels).

(app_id, event_type, step name, user_id, timestamp), the step name being
telemetry.models.STEP_NAME_SQL, written out here as it was when this
migration was made. It gives each user's first event of a funnel step after
a moment in one probe, and the users' first events of a step in a range by
reading that step's entries only. SQLite gets no index: its funnels read the
(app, timestamp) index.

Ingest goes on while it is built: each time partition's index is built
CONCURRENTLY and attached to the partitioned index `event_funnel_step`
(which the partitions made later get by themselves), so this migration runs
outside a transaction. Run again after an interruption, it drops what an
interrupted concurrent build left invalid and carries on.
"""

from django.db import migrations

STEP_NAME_SQL = (
    "CASE WHEN event_type = 'command_execution' AND jsonb_typeof(data -> 'command') = 'string' "
    "THEN left(data ->> 'command', 201) "
    "WHEN event_type = 'feature_used' AND jsonb_typeof(data -> 'feature') = 'string' "
    "THEN left(data ->> 'feature', 201) END"
)
NAME = "event_funnel_step"
COLUMNS = f'(app_id, event_type, ({STEP_NAME_SQL}), user_id, "timestamp")'


def _rows(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        (kind,) = _rows(cursor, "SELECT relkind FROM pg_class WHERE oid = 'telemetry_event'::regclass")[0]
        if kind != "p":  # not partitioned
            _drop_if_invalid(cursor, NAME)
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON telemetry_event {COLUMNS}")
            return
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON ONLY telemetry_event {COLUMNS}")
        partitions = _rows(
            cursor,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry_event'::regclass ORDER BY c.relname",
        )
        attached = {
            name
            for (name,) in _rows(
                cursor,
                "SELECT t.relname FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
                "JOIN pg_class t ON t.oid = x.indrelid WHERE i.inhparent = %s::regclass",
                [NAME],
            )
        }
        for (partition,) in partitions:
            if partition in attached:
                continue  # made with its partition after the parent index existed, or by an earlier run
            index = f"{partition}_funnel_step"[:63]
            _drop_if_invalid(cursor, index)
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {partition} {COLUMNS}")
            cursor.execute(f"ALTER INDEX {NAME} ATTACH PARTITION {index}")


def _drop_if_invalid(cursor, index):
    invalid = _rows(
        cursor, "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%s) AND NOT indisvalid", [index]
    )
    if invalid:
        cursor.execute(f"DROP INDEX CONCURRENTLY {index}")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ('telemetry', '0013_properties'),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
