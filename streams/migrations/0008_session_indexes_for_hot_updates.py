"""Index viewer sessions on columns a batch does not change, so ingestion's session
update is a HOT update on PostgreSQL (no new index entries per batch).

Ingestion rewrites a client's session row on every batch, moving its `last_event_at`.
While `last_event_at` was a key of two indexes, each such update wrote a new entry into
every index of the table (the primary key too), and the locking read of the next batch
walked the dead entries. The client index and the open-sessions index now hold
`started_at` instead (the queries keep their `last_event_at` condition as a filter), and
the table gets a fillfactor of 70 so a page has room for the new row versions. The
fillfactor applies to pages written from now on; `VACUUM FULL` would apply it to old ones.
"""

from django.db import migrations, models

FILLFACTOR = 70


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE streams_viewersession SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE streams_viewersession RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("streams", "0007_event_client_time_id_index")]

    operations = [
        migrations.RemoveIndex(model_name="viewersession", name="session_client_idx"),
        migrations.RemoveIndex(model_name="viewersession", name="session_open_idx"),
        migrations.AddIndex(
            model_name="viewersession",
            index=models.Index(
                fields=["stream", "client_id", "started_at"], name="session_client_start_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="viewersession",
            index=models.Index(
                condition=models.Q(("finalized", False)),
                fields=["started_at"],
                name="session_open_start_idx",
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor),
    ]
