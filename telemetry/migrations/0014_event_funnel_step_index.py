"""The index funnels read on PostgreSQL (dashboard.funnels, docs/insights.md, Funnels).

(app_id, event_type, step name, user_id, timestamp), the step name being
telemetry.models.STEP_NAME_SQL, written out here as it was when this
migration was made. It gives each user's first event of a funnel step after
a moment in one probe, and the users' first events of a step in a range by
reading that step's entries only. SQLite gets no index: its funnels read the
(app, timestamp) index.

Building it reads every stored event once and blocks ingest meanwhile (a
partitioned table's index cannot be built CONCURRENTLY): about a minute per
ten million events (docs/insights.md, Funnels).
"""

from django.db import migrations

STEP_NAME_SQL = (
    "CASE WHEN event_type = 'command_execution' AND jsonb_typeof(data -> 'command') = 'string' "
    "THEN left(data ->> 'command', 201) "
    "WHEN event_type = 'feature_used' AND jsonb_typeof(data -> 'feature') = 'string' "
    "THEN left(data ->> 'feature', 201) END"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX event_funnel_step ON telemetry_event (app_id, event_type, ({STEP_NAME_SQL}), user_id, "timestamp")'
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS event_funnel_step")


class Migration(migrations.Migration):

    dependencies = [
        ('telemetry', '0012_segmented_rollups_and_user_days'),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
