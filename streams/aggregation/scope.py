"""Steps 1 and 2 of a run: what changed since the last run, widened to whole sessions.

`agg_scope(stream_id, client_id, lo, hi)` holds, per (stream, client) pair with new
events, the range of time (epoch seconds) whose sessions must be rebuilt.
"""

from __future__ import annotations

import logging

from ..models import PlaybackBatch, ViewerSession
from .sql import _Sql, _t

logger = logging.getLogger(__name__)

WIDEN_ROUNDS = 50


def _scope_claim(sql: _Sql, *, full: bool) -> int:
    """Claim the pending batches into agg_scope and return the pair count; with `full`,
    only mark every batch claimed (the scope then comes from `_scope_from_sessions`)."""
    batches = _t(PlaybackBatch)
    if full:
        # Every pair is in scope; `_scope_from_sessions` fills agg_scope once the
        # events are sessionized.
        sql.execute(f"UPDATE {batches} SET pending = FALSE WHERE pending")
        return 0
    elif sql.pg:
        sql.create_temp("agg_scope", "(stream_id bigint, client_id text, lo float8, hi float8)")
        sql.execute(
            f"WITH claimed AS (UPDATE {batches} SET pending = FALSE WHERE pending "
            "RETURNING stream_id, client_id, first_event_at, last_event_at) "
            "INSERT INTO agg_scope SELECT stream_id, client_id, "
            f"MIN({sql.epoch('first_event_at')}), MAX({sql.epoch('last_event_at')}) "
            "FROM claimed GROUP BY stream_id, client_id"
        )
    else:
        # SQLite has no data-modifying CTE: claim the batches, then group their ranges
        # (one row per batch, not per event).
        claimed = sql.fetchall(
            f"UPDATE {batches} SET pending = 0 WHERE pending RETURNING stream_id, client_id, "
            f"{sql.epoch('first_event_at')}, {sql.epoch('last_event_at')}"
        )
        ranges: dict[tuple[int, str], list[float]] = {}
        for stream_id, client_id, lo, hi in claimed:
            r = ranges.setdefault((stream_id, client_id), [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)
        sql.create_temp("agg_scope", "(stream_id, client_id, lo, hi)")
        sql.cursor.executemany(
            "INSERT INTO agg_scope VALUES (%s, %s, %s, %s)",
            [(s, c, lo, hi) for (s, c), (lo, hi) in ranges.items()],
        )
    return sql.count("agg_scope")


def _scope_from_sessions(sql: _Sql) -> int:
    """agg_scope of a full run: every pair with events, over the span of its rebuilt
    sessions (the same ranges as its events' first and last instants, read from one row
    per session instead of every event)."""
    sql.temp_table(
        "agg_scope",
        "SELECT stream_id, client_id, MIN(start_t) AS lo, MAX(last_t) AS hi "
        "FROM agg_sessions GROUP BY stream_id, client_id",
    )
    return sql.count("agg_scope")


def _scope_widen(sql: _Sql, *, timeout: float) -> None:
    """Grow each range over the sessions within SESSION_TIMEOUT of it, until none is left.

    A session is a run of events less than SESSION_TIMEOUT apart, so once no stored
    session comes that close to a range, nothing outside it can join its sessions.
    """
    sessions = _t(ViewerSession)
    start, last = sql.epoch("s.started_at"), sql.epoch("s.last_event_at")
    near = (
        "s.stream_id = agg_scope.stream_id AND s.client_id = agg_scope.client_id AND "
        f"{sql.before('s.last_event_at', 'agg_scope.lo - %(timeout)s', '>')} AND "
        f"{sql.before('s.started_at', 'agg_scope.hi + %(timeout)s', '<')}"
    )
    earliest = f"COALESCE((SELECT MIN({start}) FROM {sessions} s WHERE {near}), lo)"
    latest = f"COALESCE((SELECT MAX({last}) FROM {sessions} s WHERE {near}), hi)"
    for _ in range(WIDEN_ROUNDS):
        sql.execute(
            f"UPDATE agg_scope SET lo = {sql.least('lo', earliest)}, "
            f"hi = {sql.greatest('hi', latest)} "
            f"WHERE EXISTS (SELECT 1 FROM {sessions} s WHERE {near} AND "
            f"({start} < agg_scope.lo OR {last} > agg_scope.hi))",
            {"timeout": timeout},
        )
        if sql.cursor.rowcount == 0:
            return
    logger.warning("stream aggregation: scope still growing after %d rounds", WIDEN_ROUNDS)
