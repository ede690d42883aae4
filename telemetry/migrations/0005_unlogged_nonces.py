"""Keep the record of used nonces out of PostgreSQL's write-ahead log.

Every ingest request inserts a nonce; as a logged table that costs a disk
flush per request. A crash empties an UNLOGGED table, which lets a request
captured in the last ten minutes be replayed once afterwards; its events are
then duplicates by event id, so nothing is stored twice.
"""

from django.db import migrations


def unlog(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE telemetry_usednonce SET UNLOGGED")


def log(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE telemetry_usednonce SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_partition_events")]

    operations = [migrations.RunPython(unlog, log)]
