"""Partition the events table by time on PostgreSQL (telemetry.partitions).

The model's state does not change: Django still sees one table. On
PostgreSQL the unique key gains the timestamp (a partitioned table's keys
must contain the partition key); SQLite keeps the plain table.
"""

from django.db import migrations


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from telemetry.partitions import partition_events_table

        partition_events_table(schema_editor)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from telemetry.partitions import unpartition_events_table

        unpartition_events_table(schema_editor)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("telemetry", "0003_rollups")]

    operations = [migrations.RunPython(partition, unpartition)]
