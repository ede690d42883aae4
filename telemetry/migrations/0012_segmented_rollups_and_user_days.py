"""Segmented rollup dimensions and UserDay (docs/storage.md, Segments).

- Rollup values grow to 400 characters for the segmented dimensions. The
  HourlyCounts view reads the column, so it is dropped and made again around
  the change.
- UserDay: an app's users per UTC day with their version, OS, OS version,
  arch and CI setting, filled here from the events already stored.

Events stored before this migration have no rows in the segmented
dimensions: `manage.py rebuild_rollups` computes them (README, Operations, Upgrades).
"""

import django.db.models.deletion
from django.db import migrations, models

_COUNTS = "app_id, hour, dimension, value, events, succeeded, failed, timed, duration_ms_sum"
CREATE_VIEW = (
    f"CREATE VIEW telemetry_hourlycounts AS "
    f"SELECT id, {_COUNTS} FROM telemetry_hourlyrollup "
    f"UNION ALL SELECT -id, {_COUNTS} FROM telemetry_rollupdelta"
)
DROP_VIEW = "DROP VIEW telemetry_hourlycounts"


def fill_user_days(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    day = "(\"timestamp\" AT TIME ZONE 'UTC')::date" if postgresql else "date(\"timestamp\")"
    ci = "CASE WHEN ci IS NULL THEN '' WHEN ci THEN 'true' ELSE 'false' END"
    schema_editor.execute(
        f"INSERT INTO telemetry_userday (app_id, day, user_id, service_version, os, os_version, arch, ci) "
        f"SELECT DISTINCT app_id, {day}, user_id, service_version, os, os_version, arch, {ci} FROM telemetry_event "
        f"WHERE true ON CONFLICT DO NOTHING"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('organizations', '0001_initial'),
        ('telemetry', '0011_event_keys_and_rollup_deltas'),
    ]

    operations = [
        migrations.RunSQL(DROP_VIEW, CREATE_VIEW),
        migrations.AlterField(
            model_name='dailyrollup',
            name='value',
            field=models.CharField(max_length=400),
        ),
        migrations.AlterField(
            model_name='hourlyrollup',
            name='value',
            field=models.CharField(max_length=400),
        ),
        migrations.AlterField(
            model_name='rollupdelta',
            name='value',
            field=models.CharField(max_length=400),
        ),
        migrations.RunSQL(CREATE_VIEW, DROP_VIEW),
        migrations.CreateModel(
            name='UserDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('user_id', models.CharField(max_length=200)),
                ('service_version', models.CharField(max_length=100)),
                ('os', models.CharField(max_length=100)),
                ('os_version', models.CharField(blank=True, max_length=100)),
                ('arch', models.CharField(blank=True, max_length=100)),
                ('ci', models.CharField(blank=True, max_length=5)),
                ('app', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.app')),
            ],
            options={
                'indexes': [models.Index(fields=['app', 'user_id', 'day'], name='user_day_by_user')],
                'constraints': [models.UniqueConstraint(fields=('app', 'day', 'user_id', 'service_version', 'os', 'os_version', 'arch', 'ci'), name='user_day_once')],
            },
        ),
        migrations.RunPython(fill_user_days, migrations.RunPython.noop),
    ]
