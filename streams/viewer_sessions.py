"""Viewer sessions kept current at ingestion (SPEC §5.1, §6.1).

Each event joins its client's open session on the stream — one whose events are
less than SESSION_TIMEOUT away — or opens a new one, and the session's provisional
figures move on. Events that arrive late or out of order only widen the session
here; the aggregator (`streams/aggregation/`) rebuilds sessions exactly.

This runs for every batch, so it reads and writes the few session rows it needs
with plain SQL on the caller's cursor (one locking SELECT — on PostgreSQL folded into
the batch's claim statement, `streams/ingest.py` — then one UPDATE or INSERT per
session the batch moved or opened, usually one) and walks the events in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from .models import ViewerSession
from .session_rules import gap_credit, opening_credit, state_after


@dataclass(slots=True)
class _Session:
    id: int | None
    started_at: datetime
    last_event_at: datetime
    playing_seconds: float = 0.0
    buffer_seconds: float = 0.0
    buffer_count: int = 0
    error_count: int = 0
    event_count: int = 0
    player_state: str = ""
    touched: bool = False

    def holds(self, at: datetime, timeout: timedelta) -> bool:
        """Whether an event at `at` is less than `timeout` from this session."""
        return self.started_at - timeout < at < self.last_event_at + timeout


_FIGURES = (
    "started_at",
    "last_event_at",
    "playing_seconds",
    "buffer_seconds",
    "buffer_count",
    "error_count",
    "event_count",
    "player_state",
)


TABLE = ViewerSession._meta.db_table


def sessions_locking_sql(stream_id: str, *, lock: bool) -> str:
    """SELECT of the client's sessions that may take events between two instants, in
    start order: parameters (client_id, lo, hi); `stream_id` is an SQL expression."""
    return (
        f"SELECT id, {', '.join(_FIGURES)} FROM {TABLE} "
        f"WHERE stream_id = {stream_id} AND client_id = %s "
        "AND last_event_at > %s AND started_at < %s "
        f"ORDER BY started_at{' FOR UPDATE' if lock else ''}"
    )


def sessions_window(times: list[datetime]) -> tuple[datetime, datetime]:
    """The (lo, hi) bounds of `sessions_locking_sql` for events at sorted `times`."""
    timeout = timedelta(seconds=settings.SESSION_TIMEOUT)
    return times[0] - timeout, times[-1] + timeout


def sessions_locked(cursor, *, stream_id: int, client_id: str, lo: datetime, hi: datetime):
    """The rows of `sessions_locking_sql`, locked where the database can (not SQLite)."""
    lock = connection.features.has_select_for_update
    adapt = connection.ops.adapt_datetimefield_value
    cursor.execute(
        sessions_locking_sql("%s", lock=lock), [stream_id, client_id, adapt(lo), adapt(hi)]
    )
    rows = cursor.fetchall()
    if connection.vendor == "sqlite":  # SQLite hands back text: parse it as the ORM does
        convert = connection.ops.convert_datetimefield_value
        rows = [
            (r[0], convert(r[1], None, connection), convert(r[2], None, connection), *r[3:])
            for r in rows
        ]
    return rows


def viewer_sessions_extend(
    cursor,
    *,
    stream_id: int,
    client_id: str,
    times: list[datetime],
    types: list[str],
    rows: list[tuple],
    country: str,
    device: str,
) -> list[int]:
    """Attach events (sorted `times`, their `types`) to the client's sessions, given as
    the locked `rows` of `sessions_locking_sql`; the session id of each event, in order."""
    timeout = timedelta(seconds=settings.SESSION_TIMEOUT)
    heartbeat = settings.HEARTBEAT_INTERVAL
    sessions = [_Session(*row) for row in rows]
    assigned: list[_Session] = []
    current: _Session | None = None
    for at, event_type in zip(times, types, strict=True):
        if current is None or not current.holds(at, timeout):
            current = next((s for s in sessions if s.holds(at, timeout)), None)
            if current is None:
                current = _Session(
                    id=None,
                    started_at=at,
                    last_event_at=at,
                    playing_seconds=opening_credit(
                        first_event_type=event_type, heartbeat_interval=heartbeat
                    ),
                    player_state=state_after("", event_type),
                )
                sessions.append(current)
                current.event_count = 1
                current.error_count = event_type == "error"
                current.buffer_count = event_type == "buffer_start"
                assigned.append(current)
                continue
        if at >= current.last_event_at:
            playing, buffering = gap_credit(
                state=current.player_state,
                gap_seconds=(at - current.last_event_at).total_seconds(),
                heartbeat_interval=heartbeat,
            )
            current.playing_seconds += playing
            current.buffer_seconds += buffering
            current.player_state = state_after(current.player_state, event_type)
            current.last_event_at = at
        elif at < current.started_at:
            current.started_at = at
        current.event_count += 1
        current.error_count += event_type == "error"
        current.buffer_count += event_type == "buffer_start"
        current.touched = True
        assigned.append(current)
    _sessions_write(
        cursor,
        [s for s in sessions if s.id is None or s.touched],
        stream_id=stream_id,
        client_id=client_id,
        country=country,
        device=device,
    )
    return [session.id for session in assigned]


_INSERT = (
    f"INSERT INTO {TABLE} (stream_id, client_id, country, device, finalized, "
    f"ended_at, watch_seconds, {', '.join(_FIGURES)}) VALUES "
    f"(%s, %s, %s, %s, FALSE, NULL, %s, {', '.join(['%s'] * len(_FIGURES))}) "
    "RETURNING id"
)
_UPDATE = (
    f"UPDATE {TABLE} SET finalized = FALSE, ended_at = NULL, watch_seconds = %s, "
    f"{', '.join(f'{name} = %s' for name in _FIGURES)} WHERE id = %s"
)


def _sessions_write(
    cursor, sessions: list[_Session], *, stream_id: int, client_id: str, country: str, device: str
) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    for s in sessions:
        figures = [
            adapt(s.started_at),
            adapt(s.last_event_at),
            s.playing_seconds,
            s.buffer_seconds,
            int(s.buffer_count),
            int(s.error_count),
            s.event_count,
            s.player_state,
        ]
        watch = s.playing_seconds + s.buffer_seconds
        if s.id is None:
            cursor.execute(_INSERT, [stream_id, client_id, country, device, watch, *figures])
            s.id = cursor.fetchone()[0]
        else:
            cursor.execute(_UPDATE, [watch, *figures, s.id])
