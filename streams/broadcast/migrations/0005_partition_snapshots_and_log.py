"""Partition `broadcast_listenersnapshot` (on `taken_at`) and `broadcast_broadcastlogentry`
(on `timestamp`) by month (PostgreSQL only, SPEC §13).

Converted in place with their rows, like the playback events (see
`echonest_analytics.partitions`); the primary keys become (id, taken_at) and
(id, timestamp). No table has a foreign key to either. Reversible.
SQLite keeps the plain tables.
"""

from django.db import migrations

from echonest_analytics.partitions import table_partition_by_month, table_unpartition

TABLES = ("broadcast_listenersnapshot", "broadcast_broadcastlogentry")


def partition(apps, schema_editor):
    for table in TABLES:
        table_partition_by_month(schema_editor, table=table)


def unpartition(apps, schema_editor):
    for table in TABLES:
        table_unpartition(schema_editor, table=table)


class Migration(migrations.Migration):
    dependencies = [("broadcast", "0004_listener_hours")]

    operations = [migrations.RunPython(partition, unpartition)]
