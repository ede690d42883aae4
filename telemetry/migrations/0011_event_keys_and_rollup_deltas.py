"""Exact idempotency and rollups off the request path (docs/storage.md).

- EventKey: one row per stored event, primary key (app, event id). It
  replaces the events table's own unique key, which on PostgreSQL had to hold
  the timestamp (partitioned table) and so let an id be stored twice.
  Existing events get their keys here (where an id was already stored twice
  with two timestamps, both rows stay; the key holds one of them).
- RollupDelta: what ingest and deletions add to HourlyRollup, appended and
  folded in by the scheduler.
- HourlyCounts: a view adding the unfolded deltas to HourlyRollup, read by
  every page.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

_COUNTS = "app_id, hour, dimension, value, events, succeeded, failed, timed, duration_ms_sum"
CREATE_VIEW = (
    f"CREATE VIEW telemetry_hourlycounts AS "
    f"SELECT id, {_COUNTS} FROM telemetry_hourlyrollup "
    f"UNION ALL SELECT -id, {_COUNTS} FROM telemetry_rollupdelta"
)
DROP_VIEW = "DROP VIEW telemetry_hourlycounts"


def fill_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(
                'INSERT INTO telemetry_eventkey (app_id, event_id, "timestamp") '
                'SELECT DISTINCT ON (app_id, event_id) app_id, event_id, "timestamp" FROM telemetry_event '
                'ORDER BY app_id, event_id, "timestamp" ON CONFLICT DO NOTHING'
            )
            cursor.execute('CREATE INDEX eventkey_time_brin ON telemetry_eventkey USING brin ("timestamp")')
        else:
            cursor.execute(
                'INSERT OR IGNORE INTO telemetry_eventkey (app_id, event_id, "timestamp") '
                'SELECT app_id, event_id, "timestamp" FROM telemetry_event ORDER BY id'
            )


def drop_keys_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS eventkey_time_brin")


_EVENT_KEY = models.UniqueConstraint(fields=["app", "event_id"], name="event_once_per_app")


def drop_event_unique_key(apps, schema_editor):
    schema_editor.remove_constraint(apps.get_model("telemetry", "Event"), _EVENT_KEY)


def restore_event_unique_key(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # What migration 0004 made: a partitioned table's keys hold the timestamp.
        schema_editor.execute(
            'ALTER TABLE telemetry_event ADD CONSTRAINT event_once_per_app UNIQUE (app_id, event_id, "timestamp")'
        )
    else:
        schema_editor.add_constraint(apps.get_model("telemetry", "Event"), _EVENT_KEY)


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
        ("telemetry", "0010_scheduled_jobs"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                ("pk", models.CompositePrimaryKey("app_id", "event_id", blank=True, editable=False, primary_key=True, serialize=False)),
                ("app", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="organizations.app")),
                ("event_id", models.UUIDField()),
                ("timestamp", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="RollupDelta",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("app", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="organizations.app")),
                ("dimension", models.CharField(max_length=16)),
                ("value", models.CharField(max_length=200)),
                ("events", models.BigIntegerField(default=0)),
                ("succeeded", models.BigIntegerField(default=0)),
                ("failed", models.BigIntegerField(default=0)),
                ("timed", models.BigIntegerField(default=0)),
                ("duration_ms_sum", models.BigIntegerField(default=0)),
                ("hour", models.DateTimeField()),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "indexes": [models.Index(fields=["app", "dimension", "hour"], name="rollupdelta_key")],
            },
        ),
        migrations.CreateModel(
            name="HourlyCounts",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("app", models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="organizations.app")),
                ("dimension", models.CharField(max_length=16)),
                ("value", models.CharField(max_length=200)),
                ("events", models.BigIntegerField(default=0)),
                ("succeeded", models.BigIntegerField(default=0)),
                ("failed", models.BigIntegerField(default=0)),
                ("timed", models.BigIntegerField(default=0)),
                ("duration_ms_sum", models.BigIntegerField(default=0)),
                ("hour", models.DateTimeField()),
            ],
            options={"db_table": "telemetry_hourlycounts", "managed": False},
        ),
        migrations.RunSQL(CREATE_VIEW, DROP_VIEW),
        migrations.RunPython(fill_keys, drop_keys_index),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveConstraint(model_name="event", name="event_once_per_app")],
            database_operations=[migrations.RunPython(drop_event_unique_key, restore_event_unique_key)],
        ),
    ]
