"""Partition `analytics_event` by month on `occurred_at` (PostgreSQL only, SPEC §13).

Converted in place with its rows, like the playback events (see
`echonest_analytics.partitions`); the primary key becomes (id, occurred_at). A
partitioned table cannot hold a unique index without its partition key, so the uuids
move to `analytics_event_key` (uuid primary key, kept in step by triggers) and
`analytics_event` keeps a plain index on uuid. No table has a foreign key to this one.
Reversible: going back restores one plain table with its unique uuid constraint.
SQLite keeps the plain table.
"""

from django.db import migrations

from echonest_analytics.partitions import table_partition_by_month, table_unpartition

TABLE = "analytics_event"


def partition(apps, schema_editor):
    table_partition_by_month(schema_editor, table=TABLE)


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table=TABLE)


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_user_activity")]

    operations = [migrations.RunPython(partition, unpartition)]
