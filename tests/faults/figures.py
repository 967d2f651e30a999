"""The stored figures a rerun must reproduce, read straight from a database: every
column a reader sees, without the ones that differ between two correct runs anyway
(surrogate ids, and the timestamps of when a run happened)."""

from __future__ import annotations

from .servers import query

# Columns that name a row or a run, not a figure.
_RUN_COLUMNS = {"id", "session_id", "last_calculated_at", "fetched_at"}

_ORDER = {
    "streams_streamstats": "stream_id, day",
    "streams_viewersession": "stream_id, client_id, started_at",
    "streams_bunnyvideostats": "library_id, video_guid, day",
}


def _columns(url: str, table: str) -> list[str]:
    rows = query(
        url,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return [name for (name,) in rows if name not in _RUN_COLUMNS]


def table_figures(url: str, table: str) -> list[tuple]:
    columns = ", ".join(_columns(url, table))
    return query(url, f"SELECT {columns} FROM {table} ORDER BY {_ORDER[table]}")


def session_day_figures(url: str) -> list[tuple]:
    """ViewerSessionDay rows, named by their session's (stream, client, start)."""
    return query(
        url,
        "SELECT s.stream_id, s.client_id, s.started_at, d.day, d.playing_seconds, "
        "d.buffer_seconds, d.event_count FROM streams_viewersessionday d "
        "JOIN streams_viewersession s ON s.id = d.session_id "
        "ORDER BY 1, 2, 3, 4",
    )


def aggregation_figures(url: str) -> dict[str, list[tuple]]:
    return {
        "stream_stats": table_figures(url, "streams_streamstats"),
        "viewer_sessions": table_figures(url, "streams_viewersession"),
        "viewer_session_days": session_day_figures(url),
    }
