"""Index PlaybackEvent.occurred_at for retention and date browsing.

PostgreSQL gets a BRIN index: events arrive roughly in time order, so a block-range
summary finds old rows at almost no cost per insert (a B-tree on occurred_at doubled
the cost of the hot-path COPY). Other databases get a plain B-tree.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX event_time_brin ON streams_playbackevent "
            "USING brin (occurred_at) WITH (pages_per_range = 32)"
        )
    else:
        schema_editor.execute(
            "CREATE INDEX event_time_brin ON streams_playbackevent (occurred_at)"
        )


def drop_index(apps, schema_editor):
    schema_editor.execute("DROP INDEX event_time_brin")


class Migration(migrations.Migration):
    dependencies = [("streams", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
