"""Stream aggregation (SPEC §6.1, §6.2, §7): exact viewer sessions and daily StreamStats.

Set-based SQL from start to end; Python only moves small per-(stream, day) results.
One run, in one transaction (so a run killed halfway leaves nothing behind and the
next run redoes its work):

1. claim the batches ingested since the last run (`PlaybackBatch.pending`), giving the
   (stream, client) pairs and time ranges that changed — or every pair, with `full`;
2. widen each range until it holds whole sessions (a session is a run of events less
   than SESSION_TIMEOUT apart, so nothing outside the widened range can join it);
3. rebuild those sessions from their events with window functions (ordering by
   occurred_at, whatever order the events arrived in), keeping existing session ids
   where they still fit, and credit each gap to its UTC day (`ViewerSessionDay`);
4. recompute `StreamStats` for every (stream, day) those sessions touched, from the
   session tables — recomputed from rows, never incremented.

A cache lock (`cache.add`, an atomic SET NX on Redis) keeps two runs from overlapping.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from .bunny import bunny_watch_by_stream_day
from .models import (
    PlaybackBatch,
    PlaybackEvent,
    StreamStats,
    ViewerSession,
    ViewerSessionDay,
)
from .session_rules import BUFFERING, ENDED, GAP_CAP_HEARTBEATS, PAUSED, PLAYING, STATE_AFTER

logger = logging.getLogger(__name__)

LOCK_KEY = "streams:aggregation:lock"
LOCK_TIMEOUT = 30 * 60
TOP_COUNTRIES = 5
DAY = 86400
_EPOCH_DATE = date(1970, 1, 1)
_SCRATCH_TABLES = ("agg_scope", "agg_events", "agg_sessions", "agg_old", "agg_days")
# Every StreamStats column a recompute rewrites: all but its key.
_STATS_FIGURES = [
    f.name for f in StreamStats._meta.concrete_fields if f.name not in ("id", "stream", "day")
]


@dataclass(frozen=True)
class AggregationSummary:
    ran: bool
    pairs: int = 0
    sessions: int = 0
    stream_days: int = 0
    finalized: int = 0
    seconds: float = 0.0


class _Sql:
    """The few places where PostgreSQL and SQLite spell things differently."""

    def __init__(self) -> None:
        self.pg = connection.vendor == "postgresql"

    def epoch(self, col: str) -> str:
        if self.pg:
            return f"date_part('epoch', {col})"
        # strftime('%s') is whole seconds; '%f' - '%S' adds the milliseconds.
        return (
            f"(CAST(strftime('%s', {col}) AS REAL) + CAST(strftime('%f', {col}) AS REAL)"
            f" - CAST(strftime('%S', {col}) AS INTEGER))"
        )

    def before(self, col: str, epoch_expr: str, op: str) -> str:
        """`col <op> <instant given in epoch seconds>`, index-friendly on PostgreSQL."""
        if self.pg:
            return f"{col} {op} to_timestamp({epoch_expr})"
        return f"{self.epoch(col)} {op} ({epoch_expr})"

    def day_no(self, epoch_expr: str) -> str:
        if self.pg:
            return f"CAST(FLOOR(({epoch_expr}) / {DAY}) AS integer)"
        return f"CAST(({epoch_expr}) / {DAY} AS integer)"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"MIN({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"MAX({a}, {b})"

    def distinct_from(self, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}" if self.pg else f"{a} IS NOT {b}"

    def drop(self, cursor, name: str) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {'pg_temp' if self.pg else 'temp'}.{name}")

    def create_temp(self, cursor, name: str, definition: str) -> None:
        """A scratch table for this run (also dropped at commit on PostgreSQL)."""
        self.drop(cursor, name)
        on_commit = " ON COMMIT DROP" if self.pg else ""
        if definition.lstrip().upper().startswith("AS"):
            cursor.execute(f"CREATE TEMP TABLE {name}{on_commit} {definition}")
            cursor.execute(f"ANALYZE {name}")
        else:
            cursor.execute(f"CREATE TEMP TABLE {name} {definition}{on_commit}")

    def temp_table(self, cursor, name: str, select_sql: str) -> None:
        self.create_temp(cursor, name, f"AS {select_sql}")


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def stream_stats_recompute(
    *, full: bool = False, now: datetime | None = None
) -> AggregationSummary:
    """Finalize stale sessions and recompute stats for every (stream, day) that changed.

    With `full`, every session and every day with raw events is rebuilt from scratch.
    Returns `ran=False` without doing anything when another run holds the lock.
    """
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=LOCK_TIMEOUT):
        logger.info("stream aggregation skipped: another run holds the lock")
        return AggregationSummary(ran=False)
    started = time.monotonic()
    try:
        with transaction.atomic():
            summary = _aggregate(full=full, now=now or datetime.now(UTC))
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)
    summary = AggregationSummary(**{**summary.__dict__, "seconds": time.monotonic() - started})
    logger.info(
        "stream aggregation done: %d client ranges, %d sessions, %d stream-days, "
        "%d finalized, %.2fs",
        summary.pairs,
        summary.sessions,
        summary.stream_days,
        summary.finalized,
        summary.seconds,
    )
    return summary


def _aggregate(*, full: bool, now: datetime) -> AggregationSummary:
    sql = _Sql()
    timeout = float(settings.SESSION_TIMEOUT)
    heartbeat = float(settings.HEARTBEAT_INTERVAL)
    now_epoch = now.timestamp()
    with connection.cursor() as cursor:
        if sql.pg:
            # Sorts and hashes over a run's events stay in memory instead of spilling.
            cursor.execute("SET LOCAL work_mem = %s", [settings.AGGREGATION_WORK_MEM])
        pairs = _scope_claim(cursor, sql, full=full)
        sessions = 0
        if pairs:
            _scope_widen(cursor, sql, timeout=timeout)
            sessions = _sessions_rebuild(
                cursor, sql, full=full, timeout=timeout, heartbeat=heartbeat, now_epoch=now_epoch
            )
        finalized = _sessions_finalize(cursor, sql, now_epoch=now_epoch, timeout=timeout)
        days = _dirty_days(cursor, sql, heartbeat=heartbeat) if pairs else []
        if days:
            _stats_recompute(cursor, sql, days=days, now=now)
        for name in _SCRATCH_TABLES:
            sql.drop(cursor, name)
    return AggregationSummary(
        ran=True, pairs=pairs, sessions=sessions, stream_days=len(days), finalized=finalized
    )


def _scope_claim(cursor, sql: _Sql, *, full: bool) -> int:
    """agg_scope(stream_id, client_id, lo, hi): what changed, in epoch seconds."""
    batches, events = _t(PlaybackBatch), _t(PlaybackEvent)
    if full:
        cursor.execute(f"UPDATE {batches} SET pending = FALSE WHERE pending")
        sql.temp_table(
            cursor,
            "agg_scope",
            f"SELECT stream_id, client_id, MIN({sql.epoch('occurred_at')}) AS lo, "
            f"MAX({sql.epoch('occurred_at')}) AS hi FROM {events} GROUP BY stream_id, client_id",
        )
    elif sql.pg:
        sql.create_temp(
            cursor, "agg_scope", "(stream_id bigint, client_id text, lo float8, hi float8)"
        )
        cursor.execute(
            f"WITH claimed AS (UPDATE {batches} SET pending = FALSE WHERE pending "
            "RETURNING stream_id, client_id, first_event_at, last_event_at) "
            "INSERT INTO agg_scope SELECT stream_id, client_id, "
            f"MIN({sql.epoch('first_event_at')}), MAX({sql.epoch('last_event_at')}) "
            "FROM claimed GROUP BY stream_id, client_id"
        )
    else:
        cursor.execute(
            f"UPDATE {batches} SET pending = 0 WHERE pending RETURNING stream_id, client_id, "
            f"{sql.epoch('first_event_at')}, {sql.epoch('last_event_at')}"
        )
        ranges: dict[tuple[int, str], list[float]] = {}
        for stream_id, client_id, lo, hi in cursor.fetchall():
            r = ranges.setdefault((stream_id, client_id), [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)
        sql.create_temp(cursor, "agg_scope", "(stream_id, client_id, lo, hi)")
        cursor.executemany(
            "INSERT INTO agg_scope VALUES (%s, %s, %s, %s)",
            [(s, c, lo, hi) for (s, c), (lo, hi) in ranges.items()],
        )
    cursor.execute("SELECT COUNT(*) FROM agg_scope")
    return cursor.fetchone()[0]


def _scope_widen(cursor, sql: _Sql, *, timeout: float) -> None:
    """Grow each range over the sessions within SESSION_TIMEOUT of it, until none is left."""
    sessions = _t(ViewerSession)
    start, last = sql.epoch("s.started_at"), sql.epoch("s.last_event_at")
    near = (
        "s.stream_id = agg_scope.stream_id AND s.client_id = agg_scope.client_id AND "
        f"{sql.before('s.last_event_at', f'agg_scope.lo - {timeout}', '>')} AND "
        f"{sql.before('s.started_at', f'agg_scope.hi + {timeout}', '<')}"
    )
    for _ in range(50):
        cursor.execute(
            f"UPDATE agg_scope SET "
            f"lo = {sql.least('lo', f'COALESCE((SELECT MIN({start}) FROM {sessions} s WHERE {near}), lo)')}, "
            f"hi = {sql.greatest('hi', f'COALESCE((SELECT MAX({last}) FROM {sessions} s WHERE {near}), hi)')} "
            f"WHERE EXISTS (SELECT 1 FROM {sessions} s WHERE {near} AND "
            f"({start} < agg_scope.lo OR {last} > agg_scope.hi))"
        )
        if cursor.rowcount == 0:
            return
    logger.warning("stream aggregation: scope still growing after 50 rounds")


# Player states as small integers in SQL; only PLAYING and BUFFERING earn credit.
_STATE_CODES = {PLAYING: 1, BUFFERING: 2, PAUSED: 3, ENDED: 4}


def _state_case(column: str) -> str:
    whens = " ".join(
        f"WHEN '{event_type}' THEN {_STATE_CODES[state]}"
        for event_type, state in STATE_AFTER.items()
    )
    return f"CASE {column} {whens} ELSE NULL END"


def _state_name(column: str) -> str:
    whens = " ".join(f"WHEN {code} THEN '{state}'" for state, code in _STATE_CODES.items())
    return f"CASE {column} {whens} ELSE '' END"


def _sessions_rebuild(
    cursor, sql: _Sql, *, full: bool, timeout: float, heartbeat: float, now_epoch: float
) -> int:
    events, sessions, session_days = _t(PlaybackEvent), _t(ViewerSession), _t(ViewerSessionDay)
    cap = GAP_CAP_HEARTBEATS * heartbeat
    pair = "PARTITION BY stream_id, client_id"
    # 1. Events of the widened ranges, numbered into sessions, with the state each
    #    event leaves the player in (an error keeps the one before it). Every window
    #    shares one ordering, so the events are sorted once. The state in force is
    #    the latest state-setting event of the session: a running MAX over
    #    "row number * 8 + state code", whose remainder is that code (a session's
    #    first event always sets one, 0 for "none yet").
    ordered = f"{pair} ORDER BY t, id"
    # A full rebuild takes every event; otherwise only those in the widened ranges.
    in_scope = (
        ""
        if full
        else f"""JOIN agg_scope sc ON e.stream_id = sc.stream_id AND e.client_id = sc.client_id
            WHERE {sql.before("e.occurred_at", "sc.lo - 0.001", ">=")}
              AND {sql.before("e.occurred_at", "sc.hi + 0.001", "<=")}"""
    )
    is_start = f"(since_prev IS NULL OR since_prev >= {timeout})"
    sql.temp_table(
        cursor,
        "agg_events",
        f"""
        WITH ev AS (
            SELECT e.id, e.stream_id, e.client_id, e.session_id AS old_session_id, e.type,
                   e.occurred_at, e.country, e.device, {sql.epoch("e.occurred_at")} AS t
            FROM {events} e {in_scope}
        ), neighbours AS (
            SELECT ev.*, t - LAG(t) OVER (w) AS since_prev, LEAD(t) OVER (w) - t AS until_next,
                   ROW_NUMBER() OVER (w) AS rn, {_state_case("type")} AS state_set
            FROM ev WINDOW w AS ({ordered})
        ), stated AS (
            SELECT neighbours.*,
                   CASE WHEN {is_start} THEN 1 ELSE 0 END AS is_start,
                   CASE WHEN until_next IS NULL OR until_next >= {timeout} THEN 1 ELSE 0 END
                       AS is_last,
                   SUM(CASE WHEN {is_start} THEN 1 ELSE 0 END) OVER r AS session_no,
                   MAX(CASE WHEN state_set IS NOT NULL THEN rn * 8 + state_set
                            WHEN {is_start} THEN rn * 8 END) OVER r % 8 AS state
            FROM neighbours WINDOW r AS ({ordered} ROWS UNBOUNDED PRECEDING)
        )
        SELECT id, stream_id, client_id, old_session_id, type, occurred_at, country, device,
               t, session_no, is_start, is_last, state,
               CASE WHEN state = 1 AND is_last = 0
                    THEN {sql.least("until_next", str(cap))} ELSE 0 END AS play_span,
               CASE WHEN state = 2 AND is_last = 0
                    THEN {sql.least("until_next", str(cap))} ELSE 0 END AS buffer_span,
               CASE WHEN is_start = 1 AND type = 'heartbeat' THEN {heartbeat} ELSE 0 END
                   AS opening
        FROM stated
        """,
    )
    # 2. One row per rebuilt session; it keeps the id most of its events already had,
    #    unless an earlier session (after a split) claimed that id first.
    sql.temp_table(
        cursor,
        "agg_sessions",
        f"""
        WITH g AS (
            SELECT stream_id, client_id, session_no,
                   MIN(occurred_at) AS started_at, MAX(occurred_at) AS last_event_at,
                   MIN(t) AS start_t, MAX(t) AS last_t,
                   SUM(play_span) + SUM(opening) AS playing_seconds,
                   SUM(buffer_span) AS buffer_seconds,
                   SUM(CASE WHEN type = 'buffer_start' THEN 1 ELSE 0 END) AS buffer_count,
                   SUM(CASE WHEN type = 'error' THEN 1 ELSE 0 END) AS error_count,
                   COUNT(*) AS event_count,
                   MAX(CASE WHEN is_start = 1 THEN country END) AS country,
                   MAX(CASE WHEN is_start = 1 THEN device END) AS device,
                   MAX(CASE WHEN type = 'ended' THEN t END) AS ended_t,
                   MAX(CASE WHEN is_last = 1 THEN state END) AS last_state,
                   MIN(old_session_id) AS candidate_id
            FROM agg_events GROUP BY stream_id, client_id, session_no
        )
        SELECT g.*, CASE WHEN ROW_NUMBER() OVER (PARTITION BY g.candidate_id ORDER BY g.start_t) = 1
                          AND EXISTS (SELECT 1 FROM {sessions} s WHERE s.id = g.candidate_id
                                      AND s.stream_id = g.stream_id AND s.client_id = g.client_id)
                         THEN g.candidate_id END AS final_id
        FROM g
        """,
    )
    # 3. The sessions being replaced: those in the widened ranges, and any an event
    #    of the ranges still points at.
    sql.temp_table(
        cursor,
        "agg_old",
        f"""
        SELECT s.id, s.stream_id, {sql.epoch("s.started_at")} AS start_t,
               {sql.epoch("s.last_event_at")} AS last_t
        FROM {sessions} s JOIN agg_scope sc ON s.stream_id = sc.stream_id AND s.client_id = sc.client_id
        WHERE {sql.before("s.last_event_at", "sc.lo - 0.001", ">=")}
          AND {sql.before("s.started_at", "sc.hi + 0.001", "<=")}
        UNION
        SELECT s.id, s.stream_id, {sql.epoch("s.started_at")}, {sql.epoch("s.last_event_at")}
        FROM {sessions} s WHERE s.id IN (SELECT old_session_id FROM agg_events)
        """,
    )
    cursor.execute(f"DELETE FROM {session_days} WHERE session_id IN (SELECT id FROM agg_old)")
    cursor.execute(
        f"DELETE FROM {sessions} WHERE id IN (SELECT id FROM agg_old) "
        "AND id NOT IN (SELECT final_id FROM agg_sessions WHERE final_id IS NOT NULL)"
    )
    stale = now_epoch - timeout
    player_state = _state_name("g.last_state")
    figures = (
        "started_at = g.started_at, last_event_at = g.last_event_at, "
        "playing_seconds = g.playing_seconds, buffer_seconds = g.buffer_seconds, "
        "watch_seconds = g.playing_seconds + g.buffer_seconds, buffer_count = g.buffer_count, "
        "error_count = g.error_count, event_count = g.event_count, country = g.country, "
        f"device = g.device, finalized = (g.last_t < {stale}), player_state = {player_state}, "
        f"ended_at = CASE WHEN g.last_t < {stale} OR g.ended_t = g.last_t THEN g.last_event_at END"
    )
    cursor.execute(
        f"UPDATE {sessions} SET {figures} FROM agg_sessions g WHERE {sessions}.id = g.final_id"
    )
    cursor.execute(
        f"""
        INSERT INTO {sessions} (stream_id, client_id, started_at, last_event_at, ended_at,
            watch_seconds, playing_seconds, buffer_seconds, buffer_count, error_count,
            event_count, country, device, player_state, finalized)
        SELECT g.stream_id, g.client_id, g.started_at, g.last_event_at,
               CASE WHEN g.last_t < {stale} OR g.ended_t = g.last_t THEN g.last_event_at END,
               g.playing_seconds + g.buffer_seconds, g.playing_seconds, g.buffer_seconds,
               buffer_count,
               error_count, event_count, country, device, {player_state}, last_t < {stale}
        FROM agg_sessions g WHERE final_id IS NULL
        """
    )
    cursor.execute(
        f"UPDATE agg_sessions SET final_id = (SELECT MAX(s.id) FROM {sessions} s "
        "WHERE s.stream_id = agg_sessions.stream_id AND s.client_id = agg_sessions.client_id "
        "AND s.started_at = agg_sessions.started_at) WHERE final_id IS NULL"
    )
    # 4. Each credited span falls on the UTC day it happened (split at midnight); the
    #    spans are summed per session and day first, then given their session's id.
    session = "stream_id, client_id, session_no"
    day0 = sql.day_no("a")
    split = f"""
        SELECT {session}, {day0} AS day_no,
               {sql.least("play", f"({day0} + 1) * {DAY} - a")} AS play,
               {sql.least("buffering", f"({day0} + 1) * {DAY} - a")} AS buffering, n
        FROM spans
        UNION ALL
        SELECT {session}, {day0} + 1,
               {sql.greatest("0", f"play - (({day0} + 1) * {DAY} - a)")},
               {sql.greatest("0", f"buffering - (({day0} + 1) * {DAY} - a)")}, 0
        FROM spans WHERE a + play + buffering > ({day0} + 1) * {DAY}
    """
    cursor.execute(
        f"""
        INSERT INTO {session_days} (session_id, stream_id, day, playing_seconds, buffer_seconds,
                                    event_count)
        WITH spans AS (
            SELECT {session}, t AS a, play_span AS play, buffer_span AS buffering, 1 AS n
            FROM agg_events
            UNION ALL
            SELECT {session}, t - opening, opening, 0, 0 FROM agg_events WHERE opening > 0
        ), pieces AS ({split}),
        per_day AS (
            SELECT {session}, day_no, SUM(play) AS play, SUM(buffering) AS buffering,
                   SUM(n) AS n
            FROM pieces GROUP BY {session}, day_no
        )
        SELECT g.final_id, g.stream_id, {_day_from_no(sql, "d.day_no")}, d.play, d.buffering,
               d.n
        FROM per_day d JOIN agg_sessions g ON d.stream_id = g.stream_id
             AND d.client_id = g.client_id AND d.session_no = g.session_no
        """
    )
    cursor.execute("SELECT COUNT(*) FROM agg_sessions")
    return cursor.fetchone()[0]


def _day_from_no(sql: _Sql, expr: str) -> str:
    if sql.pg:
        return f"(DATE '1970-01-01' + CAST({expr} AS integer))"
    return f"date(({expr}) * {DAY}, 'unixepoch')"


def _sessions_finalize(cursor, sql: _Sql, *, now_epoch: float, timeout: float) -> int:
    """Close sessions whose last event is older than the timeout; their figures stand."""
    sessions = _t(ViewerSession)
    cursor.execute(
        f"UPDATE {sessions} SET finalized = TRUE, ended_at = last_event_at "
        f"WHERE finalized = FALSE AND {sql.before('last_event_at', str(now_epoch - timeout), '<')}"
    )
    return cursor.rowcount


def _dirty_days(cursor, sql: _Sql, *, heartbeat: float) -> list[tuple[int, int]]:
    """(stream_id, day number) of every day the old or the rebuilt sessions touched."""
    cap = GAP_CAP_HEARTBEATS * heartbeat
    cursor.execute(
        f"SELECT DISTINCT stream_id, {sql.day_no(f'start_t - {heartbeat}')}, "
        f"{sql.day_no(f'last_t + {cap}')} FROM ("
        "SELECT stream_id, start_t, last_t FROM agg_sessions "
        "UNION ALL SELECT stream_id, start_t, last_t FROM agg_old) r"
    )
    days: set[tuple[int, int]] = set()
    for stream_id, first, last in cursor.fetchall():
        days.update((stream_id, d) for d in range(first, last + 1))
    return sorted(days)


def _stats_recompute(cursor, sql: _Sql, *, days: list[tuple[int, int]], now: datetime) -> None:
    sessions, session_days = _t(ViewerSession), _t(ViewerSessionDay)
    sql.create_temp(
        cursor,
        "agg_days",
        "(stream_id bigint, day_no integer, day_start float8, day_end float8, day date)"
        if sql.pg
        else "(stream_id, day_no, day_start, day_end, day)",
    )
    rows = [
        (s, d, float(d * DAY), float((d + 1) * DAY), (_EPOCH_DATE + timedelta(days=d)).isoformat())
        for s, d in days
    ]
    for i in range(0, len(rows), 1000):
        chunk = rows[i : i + 1000]
        cursor.execute(
            "INSERT INTO agg_days VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk)),
            [v for row in chunk for v in row],
        )
    cursor.execute("ANALYZE agg_days")
    not_bot = "s.device <> 'bot'"
    starts_in_day = (
        f"s.stream_id = d.stream_id AND {sql.before('s.started_at', 'd.day_start', '>=')} "
        f"AND {sql.before('s.started_at', 'd.day_end', '<')}"
    )
    figures: dict[tuple[int, int], dict] = defaultdict(
        lambda: {
            "sessions": 0,
            "unique": 0,
            "errors": 0,
            "playing": 0.0,
            "buffer": 0.0,
            "events": 0,
            "peak": 0,
            "countries": [],
            "devices": {},
        }
    )
    cursor.execute(
        f"SELECT d.stream_id, d.day_no, COUNT(*), COUNT(DISTINCT s.client_id), "
        f"SUM(CASE WHEN s.error_count > 0 THEN 1 ELSE 0 END) "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {not_bot} "
        "GROUP BY d.stream_id, d.day_no"
    )
    for stream_id, day_no, count, unique, errors in cursor.fetchall():
        figures[(stream_id, day_no)].update(sessions=count, unique=unique, errors=errors)
    cursor.execute(
        f"SELECT d.stream_id, d.day_no, SUM(sd.playing_seconds), SUM(sd.buffer_seconds), "
        f"SUM(sd.event_count) FROM agg_days d JOIN {session_days} sd "
        "ON sd.stream_id = d.stream_id AND sd.day = d.day "
        f"JOIN {sessions} s ON s.id = sd.session_id WHERE {not_bot} "
        "GROUP BY d.stream_id, d.day_no"
    )
    for stream_id, day_no, playing, buffering, events in cursor.fetchall():
        figures[(stream_id, day_no)].update(
            playing=playing or 0.0, buffer=buffering or 0.0, events=events or 0
        )
    for key, value in _peaks(cursor, sql).items():
        figures[key]["peak"] = value
    cursor.execute(
        f"SELECT d.stream_id, d.day_no, s.country, COUNT(DISTINCT s.client_id) AS viewers "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {not_bot} AND s.country <> '' "
        "GROUP BY d.stream_id, d.day_no, s.country"
    )
    countries: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
    for stream_id, day_no, country, viewers in cursor.fetchall():
        countries[(stream_id, day_no)].append((country, viewers))
    for key, items in countries.items():
        figures[key]["countries"] = top_countries(items)
    cursor.execute(
        f"SELECT d.stream_id, d.day_no, s.device, COUNT(DISTINCT s.client_id) "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {not_bot} "
        "GROUP BY d.stream_id, d.day_no, s.device"
    )
    for stream_id, day_no, device, viewers in cursor.fetchall():
        figures[(stream_id, day_no)]["devices"][device] = viewers

    upserts, empty = [], []
    keyed = [(stream_id, _EPOCH_DATE + timedelta(days=day_no)) for stream_id, day_no in days]
    bunny = bunny_watch_by_stream_day(keyed)
    for (stream_id, day_no), (_, day) in zip(days, keyed, strict=True):
        f = figures.get((stream_id, day_no))
        bunny_watch = bunny.get((stream_id, day), 0.0)
        if (
            f is None or (f["sessions"] == 0 and f["playing"] + f["buffer"] == 0)
        ) and not bunny_watch:
            empty.append((stream_id, day))
            continue
        upserts.append(
            stream_stats_row(
                stream_id=stream_id,
                day=day,
                figures=f or figures[(stream_id, day_no)],
                now=now,
                bunny_watch_seconds=bunny_watch,
            )
        )
    if upserts:
        StreamStats.objects.bulk_create(
            upserts,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["stream", "day"],
            update_fields=_STATS_FIGURES,
        )
    for stream_id, day in empty:
        StreamStats.objects.filter(stream_id=stream_id, day=day).delete()


def _peaks(cursor, sql: _Sql) -> dict[tuple[int, int], int]:
    """Most sessions whose [started_at, last_event_at] hold one instant of the day.

    A sweep over interval ends: +1 at each (clipped) start, -1 at each end, starts
    before ends at the same instant so that touching intervals count as overlapping.
    """
    sessions = _t(ViewerSession)
    start, last = sql.epoch("s.started_at"), sql.epoch("s.last_event_at")
    touching = (
        f"s.stream_id = d.stream_id AND {sql.before('s.started_at', 'd.day_end', '<')} "
        f"AND {sql.before('s.last_event_at', 'd.day_start', '>=')} AND s.device <> 'bot'"
    )
    cursor.execute(
        f"""
        WITH points AS (
            SELECT d.stream_id, d.day_no, {sql.greatest(start, "d.day_start")} AS t, 1 AS delta
            FROM agg_days d JOIN {sessions} s ON {touching}
            UNION ALL
            SELECT d.stream_id, d.day_no, {sql.least(last, "d.day_end")} AS t, -1 AS delta
            FROM agg_days d JOIN {sessions} s ON {touching}
        ), running AS (
            SELECT stream_id, day_no, SUM(delta) OVER (
                PARTITION BY stream_id, day_no ORDER BY t, delta DESC ROWS UNBOUNDED PRECEDING
            ) AS concurrent
            FROM points
        )
        SELECT stream_id, day_no, MAX(concurrent) FROM running GROUP BY stream_id, day_no
        """
    )
    return {(s, d): int(peak) for s, d, peak in cursor.fetchall()}


def top_countries(viewers_by_country: list[tuple[str, int]]) -> list[dict]:
    """Top countries by unique viewers, most first (ties by country code)."""
    ranked = sorted(viewers_by_country, key=lambda item: (-item[1], item[0]))[:TOP_COUNTRIES]
    return [{"country": country, "viewers": viewers} for country, viewers in ranked]


def stream_stats_row(
    *, stream_id: int, day: date, figures: dict, now: datetime, bunny_watch_seconds: float = 0.0
) -> StreamStats:
    watch = figures["playing"] + figures["buffer"]
    total = max(watch, bunny_watch_seconds)  # SPEC §6.2, the Bunny rule
    unique = figures["unique"]
    sessions = figures["sessions"]
    return StreamStats(
        stream_id=stream_id,
        day=day,
        unique_viewers=unique,
        sessions=sessions,
        total_watch_seconds=total,
        tracked_watch_seconds=watch,
        avg_watch_seconds=total / unique if unique else 0.0,
        peak_concurrent_viewers=figures["peak"],
        buffer_seconds=figures["buffer"],
        buffer_ratio=figures["buffer"] / watch if watch else 0.0,
        error_sessions=figures["errors"],
        error_rate=figures["errors"] / sessions if sessions else 0.0,
        top_countries=figures["countries"],
        device_breakdown=dict(sorted(figures["devices"].items())),
        event_count=figures["events"],
        last_calculated_at=now,
    )
