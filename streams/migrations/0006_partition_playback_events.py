"""Partition `streams_playbackevent` by month on `occurred_at` (PostgreSQL only, SPEC §13).

The table is converted in place with its rows: a partitioned copy (months from the oldest row or the
previous month to the next one, plus a default partition) is filled, the old table dropped, and the
ids, identity sequence, foreign keys and indexes (the BRIN on occurred_at among them)
recreated under their names; the primary key becomes (id, occurred_at). No table has a
foreign key to this one. Reversible: going back copies the rows into one plain table.
The copy rewrites the whole table, so on a large table plan the migration's time.
SQLite keeps the plain table.
"""

from django.db import migrations

from echonest_analytics.partitions import table_partition_by_month, table_unpartition

TABLE = "streams_playbackevent"


def partition(apps, schema_editor):
    table_partition_by_month(schema_editor, table=TABLE)


def unpartition(apps, schema_editor):
    table_unpartition(schema_editor, table=TABLE)


class Migration(migrations.Migration):
    dependencies = [("streams", "0005_playback_event_stream_unconstrained")]

    operations = [migrations.RunPython(partition, unpartition)]
