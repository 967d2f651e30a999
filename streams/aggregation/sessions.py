"""Step 3 of a run: viewer sessions rebuilt from their events (SPEC §6.1, §6.2).

The events of the widened ranges are numbered into sessions and given the player
state and the credited seconds of each gap (`agg_events`); they are summed into one row
per session (`agg_sessions`), which replaces the sessions stored for those ranges
(`agg_old`), keeping their ids where they still fit; and each credited span is put on
the UTC day it fell on (`ViewerSessionDay`). All of it set-based, with window
functions over one ordering of the events (occurred_at, whatever order they arrived in).
"""

from __future__ import annotations

from typing import Any

from ..models import PlaybackEvent, PlaybackEventType, ViewerSession, ViewerSessionDay
from ..session_rules import BUFFERING, GAP_CAP_HEARTBEATS, PLAYING, STARTUP_MS_MAX, STATE_AFTER
from .sql import _Sql, _t

# Stored instants and their epoch seconds may differ by rounding: ranges are compared
# with this much slack.
_EPSILON = 0.001
# One client's events on one stream, in time order; every window of step 3.1 shares it,
# so the events are sorted once.
_PAIR = "PARTITION BY stream_id, client_id"


def _ordered(sql: _Sql) -> str:
    # The same order either way (t is occurred_at in epoch seconds, strictly increasing
    # with it); on PostgreSQL, ordering by the column itself lets the
    # (stream, client_id, occurred_at) index give the order, so only ties on one instant
    # are sorted by id (t hid the index order and sorted every client's events again).
    return f"{_PAIR} ORDER BY {'occurred_at' if sql.pg else 't'}, id"


_SESSION = "stream_id, client_id, session_no"


def _sessions_build(sql: _Sql, *, full: bool, timeout: float, heartbeat: float) -> None:
    """agg_events and agg_sessions: every session of the ranges in agg_scope (all of
    them with `full`) rebuilt from its events."""
    _events_sessionize(sql, full=full, timeout=timeout, heartbeat=heartbeat)
    _sessions_sum(sql)


def _sessions_write(sql: _Sql, *, stale_before: float) -> int:
    """Store the sessions of `_sessions_build` over the ones they replace, and their
    days; returns how many sessions the ranges now hold."""
    _sessions_replaced(sql)
    _sessions_store(sql, stale_before=stale_before)
    _session_days_store(sql)
    return sql.count("agg_sessions")


def _state_after_case(column: str) -> tuple[str, dict[str, str]]:
    """SQL for the player state an event of type `column` sets (NULL: it keeps the state)."""
    whens = " ".join(
        f"WHEN %(event_{event_type})s THEN %(state_{state})s"
        for event_type, state in STATE_AFTER.items()
    )
    params = {f"event_{event_type}": event_type for event_type in STATE_AFTER}
    params.update({f"state_{state}": state for state in STATE_AFTER.values()})
    return f"CASE {column} {whens} ELSE NULL END", params


def _events_sessionize(sql: _Sql, *, full: bool, timeout: float, heartbeat: float) -> None:
    """agg_events: each event of the ranges with its session number, the player state
    it leaves in force, and the seconds credited to the gap after it.

    A session starts at an event SESSION_TIMEOUT or more after the one before. The
    state in force after an event is the one set by the latest state-setting event of
    its session (an error keeps the state; none yet when the session opened with an
    error). Running MAXes of the row number find it, in the one ordering every window
    here shares (so the events are sorted once): `anchor_rn`, the latest row that set a
    state or began the session, and per state `last_<state>`, the latest row that set
    that state. The state whose latest row is the anchor is in force; none is when the
    anchor is a session start that set no state.

    (FIRST_VALUE over groups cut by a running count of state-setting events gives the
    same states, but its partition needs a second sort of all the events, which made
    this step 20-40 % slower on the 1M-event benchmark; LAG back to the anchor needs a
    third window pass, about as slow.)
    """
    events = _t(PlaybackEvent)
    # A full rebuild takes every event; otherwise only those in the widened ranges.
    in_scope = (
        ""
        if full
        else f"""JOIN agg_scope sc ON e.stream_id = sc.stream_id AND e.client_id = sc.client_id
            WHERE {sql.before("e.occurred_at", "sc.lo - %(epsilon)s", ">=")}
              AND {sql.before("e.occurred_at", "sc.hi + %(epsilon)s", "<=")}"""
    )
    state_after, params = _state_after_case("type")
    capped_gap = sql.least("until_next", "%(cap)s")
    states = sorted(set(STATE_AFTER.values()))
    latest_set_of = ", ".join(
        f"MAX(CASE WHEN state_set = %(state_{state})s THEN rn END) OVER r AS last_{state}"
        for state in states
    )
    state_of_latest = " ".join(
        f"WHEN anchor_rn = last_{state} THEN %(state_{state})s" for state in states
    )
    # Video quality (SPEC §6.5) from `extra`: a play's startupMs, an error marked fatal,
    # a reported video duration; read only where an event has an extra at all.
    startup = sql.json_number("e.extra", "startupMs")
    duration = sql.json_number("e.extra", "duration")
    sql.temp_table(
        "agg_events",
        f"""
        WITH ev AS (
            SELECT e.id, e.stream_id, e.client_id, e.session_id AS old_session_id, e.type,
                   e.occurred_at, e.country, e.device, {sql.epoch("e.occurred_at")} AS t,
                   e.video_time,
                   CASE WHEN e.type = %(play_type)s AND e.extra IS NOT NULL
                             AND {startup} BETWEEN 0 AND %(startup_max)s
                        THEN {startup} END AS startup_ms,
                   CASE WHEN e.type = %(error_type)s AND e.extra IS NOT NULL
                             AND {sql.json_true("e.extra", "fatal")} THEN 1 ELSE 0 END AS fatal,
                   CASE WHEN e.extra IS NOT NULL AND {duration} > 0 THEN {duration} END
                       AS duration
            FROM {events} e {in_scope}
        ), neighbours AS (
            SELECT ev.*, t - LAG(t) OVER w AS since_prev, LEAD(t) OVER w - t AS until_next,
                   ROW_NUMBER() OVER w AS rn, {state_after} AS state_set
            FROM ev WINDOW w AS ({_ordered(sql)})
        ), bounded AS (
            SELECT neighbours.*,
                   CASE WHEN since_prev IS NULL OR since_prev >= %(timeout)s THEN 1 ELSE 0 END
                       AS is_start,
                   CASE WHEN until_next IS NULL OR until_next >= %(timeout)s THEN 1 ELSE 0 END
                       AS is_last
            FROM neighbours
        ), latest AS (
            SELECT bounded.*, SUM(is_start) OVER r AS session_no,
                   MAX(CASE WHEN is_start = 1 OR state_set IS NOT NULL THEN rn END) OVER r
                       AS anchor_rn,
                   {latest_set_of}
            FROM bounded WINDOW r AS ({_ordered(sql)} ROWS UNBOUNDED PRECEDING)
        ), stated AS (
            SELECT latest.*,
                   CASE {state_of_latest} END AS state
            FROM latest
        )
        SELECT id, stream_id, client_id, old_session_id, type, occurred_at, country, device,
               t, session_no, is_start, is_last, state, video_time, startup_ms, fatal, duration,
               CASE WHEN state = %(state_playing)s AND is_last = 0 THEN {capped_gap} ELSE 0 END
                   AS play_span,
               CASE WHEN state = %(state_buffering)s AND is_last = 0 THEN {capped_gap} ELSE 0 END
                   AS buffer_span,
               CASE WHEN is_start = 1 AND type = %(heartbeat_type)s THEN %(heartbeat)s ELSE 0 END
                   AS opening
        FROM stated
        """,
        {
            **params,
            "epsilon": _EPSILON,
            "timeout": timeout,
            "heartbeat": heartbeat,
            "cap": GAP_CAP_HEARTBEATS * heartbeat,
            "state_playing": PLAYING,
            "state_buffering": BUFFERING,
            "heartbeat_type": PlaybackEventType.HEARTBEAT.value,
            "play_type": PlaybackEventType.PLAY.value,
            "error_type": PlaybackEventType.ERROR.value,
            "startup_max": STARTUP_MS_MAX,
        },
    )


def _sessions_sum(sql: _Sql) -> None:
    """agg_sessions: one row per rebuilt session with its figures and `final_id`, the id
    most of its events already had — unless an earlier session (after a split) claimed
    that id first, or it is not a stored session of the same client (NULL: a new row).

    A session's startup time is its first play's that has one (`firsts`, read from the
    few play events carrying one)."""
    sessions = _t(ViewerSession)
    sql.temp_table(
        "agg_sessions",
        f"""
        WITH firsts AS (
            SELECT {_SESSION}, startup_ms FROM (
                SELECT {_SESSION}, startup_ms, ROW_NUMBER() OVER (
                    PARTITION BY {_SESSION} ORDER BY t, id) AS nth
                FROM agg_events WHERE startup_ms IS NOT NULL) p
            WHERE nth = 1
        ), g AS (
            SELECT {_SESSION},
                   MIN(occurred_at) AS started_at, MAX(occurred_at) AS last_event_at,
                   MIN(t) AS start_t, MAX(t) AS last_t,
                   SUM(play_span) + SUM(opening) AS playing_seconds,
                   SUM(opening) AS opening,
                   SUM(buffer_span) AS buffer_seconds,
                   SUM(CASE WHEN type = %(buffer_start)s THEN 1 ELSE 0 END) AS buffer_count,
                   SUM(CASE WHEN type = %(error)s THEN 1 ELSE 0 END) AS error_count,
                   COUNT(*) AS event_count,
                   MAX(CASE WHEN is_start = 1 THEN country END) AS country,
                   MAX(CASE WHEN is_start = 1 THEN device END) AS device,
                   MAX(CASE WHEN type = %(ended)s THEN t END) AS ended_t,
                   MAX(CASE WHEN is_last = 1 THEN state END) AS last_state,
                   MIN(old_session_id) AS candidate_id,
                   SUM(CASE WHEN type = %(play)s THEN 1 ELSE 0 END) AS play_count,
                   SUM(fatal) AS fatal_error_count,
                   MAX(video_time) AS furthest_video_time,
                   MAX(duration) AS video_duration
            FROM agg_events GROUP BY {_SESSION}
        )
        SELECT g.*, f.startup_ms, CASE WHEN ROW_NUMBER() OVER (PARTITION BY g.candidate_id ORDER BY g.start_t) = 1
                          AND EXISTS (SELECT 1 FROM {sessions} s WHERE s.id = g.candidate_id
                                      AND s.stream_id = g.stream_id AND s.client_id = g.client_id)
                         THEN g.candidate_id END AS final_id
        FROM g LEFT JOIN firsts f ON f.stream_id = g.stream_id AND f.client_id = g.client_id
             AND f.session_no = g.session_no
        """,
        {
            "play": PlaybackEventType.PLAY.value,
            "buffer_start": PlaybackEventType.BUFFER_START.value,
            "error": PlaybackEventType.ERROR.value,
            "ended": PlaybackEventType.ENDED.value,
        },
    )


def _sessions_replaced(sql: _Sql) -> None:
    """agg_old: the stored sessions being replaced — those in the widened ranges, and
    any that an event of the ranges still points at."""
    sessions = _t(ViewerSession)
    sql.temp_table(
        "agg_old",
        f"""
        SELECT s.id, s.stream_id, {sql.epoch("s.started_at")} AS start_t,
               {sql.epoch("s.last_event_at")} AS last_t
        FROM {sessions} s JOIN agg_scope sc ON s.stream_id = sc.stream_id AND s.client_id = sc.client_id
        WHERE {sql.before("s.last_event_at", "sc.lo - %(epsilon)s", ">=")}
          AND {sql.before("s.started_at", "sc.hi + %(epsilon)s", "<=")}
        UNION
        SELECT s.id, s.stream_id, {sql.epoch("s.started_at")}, {sql.epoch("s.last_event_at")}
        FROM {sessions} s WHERE s.id IN (SELECT old_session_id FROM agg_events)
        """,
        {"epsilon": _EPSILON},
    )


def _sessions_store(sql: _Sql, *, stale_before: float) -> None:
    """Replace agg_old by agg_sessions: drop the replaced rows no session keeps, update
    the kept ones in place, insert the new ones, and note the new ids in agg_sessions."""
    sessions, session_days = _t(ViewerSession), _t(ViewerSessionDay)
    sql.execute(f"DELETE FROM {session_days} WHERE session_id IN (SELECT id FROM agg_old)")
    sql.execute(
        f"DELETE FROM {sessions} WHERE id IN (SELECT id FROM agg_old) "
        "AND id NOT IN (SELECT final_id FROM agg_sessions WHERE final_id IS NOT NULL)"
    )
    # A session is finalized once its last event is older than the timeout; it has an
    # ended_at from then on, or already when its last event is `ended`.
    params: dict[str, Any] = {"stale_before": stale_before}
    finalized = "g.last_t < %(stale_before)s"
    ended_at = f"CASE WHEN {finalized} OR g.ended_t = g.last_t THEN g.last_event_at END"
    player_state = "COALESCE(g.last_state, '')"
    sql.execute(
        f"""
        UPDATE {sessions} SET
            started_at = g.started_at, last_event_at = g.last_event_at,
            playing_seconds = g.playing_seconds, buffer_seconds = g.buffer_seconds,
            watch_seconds = g.playing_seconds + g.buffer_seconds,
            buffer_count = g.buffer_count, error_count = g.error_count,
            event_count = g.event_count, country = g.country, device = g.device,
            finalized = ({finalized}), player_state = {player_state}, ended_at = {ended_at},
            play_count = g.play_count, fatal_error_count = g.fatal_error_count,
            startup_ms = g.startup_ms, furthest_video_time = g.furthest_video_time,
            video_duration = g.video_duration
        FROM agg_sessions g WHERE {sessions}.id = g.final_id
        """,
        params,
    )
    insert = f"""
        INSERT INTO {sessions} (stream_id, client_id, started_at, last_event_at, ended_at,
            watch_seconds, playing_seconds, buffer_seconds, buffer_count, error_count,
            event_count, country, device, player_state, finalized, play_count,
            fatal_error_count, startup_ms, furthest_video_time, video_duration)
        SELECT g.stream_id, g.client_id, g.started_at, g.last_event_at, {ended_at},
               g.playing_seconds + g.buffer_seconds, g.playing_seconds, g.buffer_seconds,
               g.buffer_count, g.error_count, g.event_count, g.country, g.device,
               {player_state}, {finalized}, g.play_count, g.fatal_error_count, g.startup_ms,
               g.furthest_video_time, g.video_duration
        FROM agg_sessions g WHERE g.final_id IS NULL
    """
    if sql.pg:
        # The new ids come back from the INSERT itself (a session is one per stream,
        # client and start), instead of one index probe per new session afterwards.
        sql.execute(
            f"WITH inserted AS ({insert} RETURNING id, stream_id, client_id, started_at) "
            "UPDATE agg_sessions SET final_id = inserted.id FROM inserted "
            "WHERE agg_sessions.final_id IS NULL "
            "AND agg_sessions.stream_id = inserted.stream_id "
            "AND agg_sessions.client_id = inserted.client_id "
            "AND agg_sessions.started_at = inserted.started_at",
            params,
        )
        return
    sql.execute(insert, params)
    sql.execute(
        f"UPDATE agg_sessions SET final_id = (SELECT MAX(s.id) FROM {sessions} s "
        "WHERE s.stream_id = agg_sessions.stream_id AND s.client_id = agg_sessions.client_id "
        "AND s.started_at = agg_sessions.started_at) WHERE final_id IS NULL"
    )


def _session_days_store(sql: _Sql) -> None:
    """ViewerSessionDay rows: each credited span on the UTC day it happened (a span over
    midnight is split there), summed per session and day, under its session's id.

    One pass over agg_events: each event's span is summed on the day it starts, with
    what runs past that midnight summed beside it (`*_after`) and moved to the next day
    afterwards, over one row per (session, day) instead of per event. A session's
    opening credit (before a first heartbeat) comes from agg_sessions. (Splitting each
    span into its own rows read agg_events four times, ~2 s of the 1M-event benchmark.)
    """
    session_days = _t(ViewerSessionDay)
    day_no = sql.day_no("t")
    day_end = f"(({day_no} + 1) * %(day_seconds)s)"
    left = f"({day_end} - t)"  # seconds from t to its midnight
    opening_day = sql.day_no("a")
    opening_end = f"(({opening_day} + 1) * %(day_seconds)s)"
    opening_left = f"({opening_end} - a)"
    sql.execute(
        f"""
        INSERT INTO {session_days} (session_id, stream_id, day, playing_seconds, buffer_seconds,
                                    event_count, buffer_count)
        WITH per_start_day AS (
            SELECT {_SESSION}, {day_no} AS day_no,
                   SUM({sql.least("play_span", left)}) AS play,
                   SUM({sql.least("buffer_span", left)}) AS buffering, COUNT(*) AS n,
                   SUM(CASE WHEN type = %(buffer_start)s THEN 1 ELSE 0 END) AS rebuffers,
                   SUM({sql.greatest("0", f"play_span - {left}")}) AS play_after,
                   SUM({sql.greatest("0", f"buffer_span - {left}")}) AS buffering_after,
                   SUM(CASE WHEN t + play_span + buffer_span > {day_end} THEN 1 ELSE 0 END)
                       AS crossing
            FROM agg_events GROUP BY {_SESSION}, {day_no}
        ), openings AS (
            SELECT {_SESSION}, start_t - opening AS a, opening AS play
            FROM agg_sessions WHERE opening > 0
        ), pieces AS (
            SELECT {_SESSION}, day_no, play, buffering, n, rebuffers FROM per_start_day
            UNION ALL
            SELECT {_SESSION}, day_no + 1, play_after, buffering_after, 0, 0
            FROM per_start_day WHERE crossing > 0
            UNION ALL
            SELECT {_SESSION}, {opening_day}, {sql.least("play", opening_left)}, 0, 0, 0
            FROM openings
            UNION ALL
            SELECT {_SESSION}, {opening_day} + 1,
                   {sql.greatest("0", f"play - {opening_left}")}, 0, 0, 0
            FROM openings WHERE a + play > {opening_end}
        ), per_day AS (
            SELECT {_SESSION}, day_no, SUM(play) AS play, SUM(buffering) AS buffering,
                   SUM(n) AS n, SUM(rebuffers) AS rebuffers
            FROM pieces GROUP BY {_SESSION}, day_no
        )
        SELECT g.final_id, g.stream_id, {sql.day_from_no("d.day_no")}, d.play, d.buffering,
               d.n, d.rebuffers
        FROM per_day d JOIN agg_sessions g ON d.stream_id = g.stream_id
             AND d.client_id = g.client_id AND d.session_no = g.session_no
        """,
        {"buffer_start": PlaybackEventType.BUFFER_START.value},
    )


def _sessions_finalize(sql: _Sql, *, now_epoch: float, timeout: float) -> int:
    """Close sessions whose last event is older than the timeout; their figures stand."""
    sessions = _t(ViewerSession)
    sql.execute(
        f"UPDATE {sessions} SET finalized = TRUE, ended_at = last_event_at "
        f"WHERE finalized = FALSE AND {sql.before('last_event_at', '%(stale_before)s', '<')} "
        # Implied (a session starts no later than its last event); lets the open-sessions
        # index (on started_at, so ingestion's updates stay HOT) bound the scan.
        f"AND {sql.before('started_at', '%(stale_before)s', '<')}",
        {"stale_before": now_epoch - timeout},
    )
    return sql.cursor.rowcount
