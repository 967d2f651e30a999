"""Ingestion's update of a viewer session writes no index entry (PostgreSQL HOT update).

Every batch rewrites its client's session row. PostgreSQL can then keep the new row
version on the same page without touching any index only while no indexed column
(key, INCLUDE or partial-index predicate) changes value: so no index of the session
table may hold a figure a batch moves, and the table keeps free room on its pages.
"""

from __future__ import annotations

import pytest
from django.db import connection

from streams.models import ViewerSession
from streams.viewer_sessions import _FIGURES

from .conftest import batch, heartbeats, new_batch_id

pytestmark = pytest.mark.django_db

# Columns a batch for an open session changes; started_at moves only when a batch holds
# events earlier than the session's start, and finalized only when it reopens a session.
MOVED_BY_EVERY_BATCH = (set(_FIGURES) | {"watch_seconds", "ended_at"}) - {"started_at"}


def _indexed_columns() -> dict[str, set[str]]:
    table = ViewerSession._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: set(c["columns"]) for name, c in constraints.items() if c["index"]}


def test_no_session_index_holds_a_figure_a_batch_moves():
    indexes = _indexed_columns()
    assert indexes, "the session table has indexes"
    for name, columns in indexes.items():
        assert not columns & MOVED_BY_EVERY_BATCH, (name, columns & MOVED_BY_EVERY_BATCH)


def test_the_client_lookup_is_indexed_on_stream_client_and_start():
    assert {"stream_id", "client_id", "started_at"} in _indexed_columns().values()


def _update_counters(table: str) -> tuple[int, int] | None:
    """(rows updated, of them HOT) by this transaction on PostgreSQL; None elsewhere (HOT
    is PostgreSQL's)."""
    if connection.vendor != "postgresql":
        return None
    # The test runs in one transaction: its own counters are this transaction's.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
            "pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [table, table],
        )
        return cursor.fetchone()


def test_session_update_of_a_second_batch_is_a_hot_update(stream, post_events):
    table = ViewerSession._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [table])
            assert "fillfactor=70" in (cursor.fetchone()[0] or [])
    first = post_events(batch("launch-party", "c-hot", heartbeats(0, 15), batchId=new_batch_id()))
    assert first.status_code == 202
    before = _update_counters(table)
    for n in range(1, 4):
        seconds = [15 * (2 * n + k) for k in range(2)]
        response = post_events(
            batch("launch-party", "c-hot", heartbeats(*seconds), batchId=new_batch_id())
        )
        assert response.status_code == 202
    after = _update_counters(table)
    # Each later batch extends the one session (on every database).
    session = ViewerSession.objects.get(client_id="c-hot")
    assert session.event_count == 8
    if before is not None:
        assert after[0] - before[0] == 3  # one session update per batch
        assert after[1] - before[1] == 3  # every one of them HOT
