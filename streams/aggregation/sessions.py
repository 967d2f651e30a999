"""Step 3 of a run: viewer sessions rebuilt from their events (SPEC §6.1, §6.2).

The events of the widened ranges are numbered into sessions and given the player
state and the credited seconds of each gap, and summed in the same statement into a
few rows per session and UTC day (`agg_pieces`); those are summed into one row per
session (`agg_sessions`), which replaces the sessions stored for those ranges
(`agg_old`), keeping their ids where they still fit; and each credited span is put on
the UTC day it fell on (`ViewerSessionDay`). All of it set-based, with window
functions over one ordering of the events (occurred_at, whatever order they arrived in),
and the events read once.
"""

from __future__ import annotations

from typing import Any

from ..models import PlaybackEvent, PlaybackEventType, ViewerSession, ViewerSessionDay
from ..session_rules import GAP_CAP_HEARTBEATS, STARTUP_MS_MAX, STATE_AFTER
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
    # (stream, client_id, occurred_at, id) index give the order whole, so the events are
    # never sorted (t hid the index order and sorted every client's events again).
    return f"{_PAIR} ORDER BY {'occurred_at' if sql.pg else 't'}, id"


_SESSION = "stream_id, client_id, session_no"


def _sessions_build(sql: _Sql, *, full: bool, timeout: float, heartbeat: float) -> None:
    """agg_pieces and agg_sessions: every session of the ranges in agg_scope (all of
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


# Small integer codes instead of text through the windows and sums: the event's type
# (`kind`) and the player state (0: none yet).
_KIND = {event_type.value: i + 1 for i, event_type in enumerate(PlaybackEventType)}
_STATE_CODE = {state: i + 1 for i, state in enumerate(sorted(set(STATE_AFTER.values())))}
# `rn * _STATE_BASE + state code` orders by the row number first and keeps the code in its
# remainder, so one running MAX finds the latest anchor row and its state together.
_STATE_BASE = 8
assert _STATE_BASE > max(_STATE_CODE.values())


def _code_params() -> dict[str, Any]:
    params: dict[str, Any] = {f"kind_{t}": code for t, code in _KIND.items()}
    params.update({f"event_{t}": t for t in _KIND})
    params.update({f"code_{state}": code for state, code in _STATE_CODE.items()})
    params.update({f"state_{state}": state for state in _STATE_CODE})
    params["state_base"] = _STATE_BASE
    return params


def _kind_case(column: str) -> str:
    """SQL for the kind code of an event of type `column` (NULL for an unknown type)."""
    whens = " ".join(f"WHEN %(event_{t})s THEN %(kind_{t})s" for t in _KIND)
    return f"CASE {column} {whens} END"


def _state_set_case(column: str) -> str:
    """SQL for the state code an event of kind `column` sets (NULL: it keeps the state)."""
    whens = " ".join(
        f"WHEN %(kind_{event_type})s THEN %(code_{state})s"
        for event_type, state in STATE_AFTER.items()
    )
    return f"CASE {column} {whens} ELSE NULL END"


def _state_name_case(column: str) -> str:
    """SQL for the state named by the code `column` (NULL for 0, none yet)."""
    whens = " ".join(f"WHEN %(code_{state})s THEN %(state_{state})s" for state in _STATE_CODE)
    return f"CASE {column} {whens} END"


def _events_sessionize(sql: _Sql, *, full: bool, timeout: float, heartbeat: float) -> None:
    """agg_pieces: the events of the ranges numbered into sessions, given the player
    state each leaves in force and the seconds credited to the gap after it, and summed
    in the same statement per (session, UTC day the event fell on) — with the event's
    old session id and startup time in the key, so that the sessions' figures, their
    days and the replaced ids all come from these few rows, never from the events again.

    A session starts at an event SESSION_TIMEOUT or more after the one before. The
    state in force after an event is the one set by the latest state-setting event of
    its session (an error keeps the state; none yet when the session opened with an
    error). One running MAX over the one ordering every window here shares (so the
    events are sorted once, and the (stream, client, occurred_at, id) index gives that
    order) finds it: `anchor`, the latest row that set a state or began the session, as
    `rn * _STATE_BASE + the state it set` (0 for a session start that set none), whose
    remainder is the state in force.

    (FIRST_VALUE over groups cut by a running count of state-setting events gives the
    same states, but its partition needs a second sort of all the events; LAG back to
    the anchor needs a third window pass. A running MAX per state, compared with the
    anchor's row number, took five aggregates per row where this takes one.)
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
    capped_gap = sql.least("until_next", "%(cap)s")
    starts = "since_prev IS NULL OR since_prev >= %(timeout)s"
    # Video quality (SPEC §6.5) from `extra`: a play's startupMs, an error marked fatal,
    # a reported video duration; read only where an event has an extra at all.
    startup = sql.json_number("e.extra", "startupMs")
    duration = sql.json_number("e.extra", "duration")
    day_no = sql.day_no("t")
    left = "(day_end - t)"  # seconds from t to its midnight
    # Only the columns a later step reads go through each window (narrower rows to
    # buffer); a session's country and device are kept on its first row only.
    sql.temp_table(
        "agg_pieces",
        f"""
        WITH ev AS (
            SELECT e.id, e.stream_id, e.client_id, e.session_id AS old_session_id,
                   {_kind_case("e.type")} AS kind, e.occurred_at, e.country, e.device,
                   {sql.epoch("e.occurred_at")} AS t, e.video_time,
                   CASE WHEN e.type = %(event_play)s AND e.extra IS NOT NULL
                             AND {startup} BETWEEN 0 AND %(startup_max)s
                        THEN {startup} END AS startup_ms,
                   CASE WHEN e.type = %(event_error)s AND e.extra IS NOT NULL
                             AND {sql.json_true("e.extra", "fatal")} THEN 1 ELSE 0 END AS fatal,
                   CASE WHEN e.extra IS NOT NULL AND {duration} > 0 THEN {duration} END
                       AS duration
            FROM {events} e {in_scope}
        ), neighbours AS (
            SELECT ev.*, t - LAG(t) OVER w AS since_prev, LEAD(t) OVER w - t AS until_next,
                   ROW_NUMBER() OVER w AS rn
            FROM ev WINDOW w AS ({_ordered(sql)})
        ), bounded AS (
            SELECT id, stream_id, client_id, old_session_id, kind, occurred_at, t, video_time,
                   startup_ms, fatal, duration, rn, until_next,
                   {_state_set_case("kind")} AS state_set,
                   CASE WHEN {starts} THEN 1 ELSE 0 END AS is_start,
                   CASE WHEN until_next IS NULL OR until_next >= %(timeout)s THEN 1 ELSE 0 END
                       AS is_last,
                   CASE WHEN {starts} THEN country END AS start_country,
                   CASE WHEN {starts} THEN device END AS start_device
            FROM neighbours
        ), latest AS (
            SELECT bounded.*, SUM(is_start) OVER r AS session_no,
                   MAX(CASE WHEN is_start = 1 OR state_set IS NOT NULL
                            THEN rn * %(state_base)s + COALESCE(state_set, 0) END) OVER r
                       AS anchor
            FROM bounded WINDOW r AS ({_ordered(sql)} ROWS UNBOUNDED PRECEDING)
        ), spans AS (
            SELECT latest.*, {day_no} AS day_no,
                   ({day_no} + 1) * %(day_seconds)s AS day_end,
                   anchor %% %(state_base)s AS state,
                   CASE WHEN anchor %% %(state_base)s = %(code_playing)s AND is_last = 0
                        THEN {capped_gap} ELSE 0 END AS play_span,
                   CASE WHEN anchor %% %(state_base)s = %(code_buffering)s AND is_last = 0
                        THEN {capped_gap} ELSE 0 END AS buffer_span,
                   CASE WHEN is_start = 1 AND kind = %(kind_heartbeat)s THEN %(heartbeat)s
                        ELSE 0 END AS opening
            FROM latest
        )
        SELECT {_SESSION}, day_no, old_session_id, startup_ms, MIN(rn) AS first_rn,
               MAX(CASE WHEN is_start = 1 THEN occurred_at END) AS started_at,
               MAX(CASE WHEN is_last = 1 THEN occurred_at END) AS last_event_at,
               MAX(start_country) AS country, MAX(start_device) AS device,
               SUM(play_span) AS play, SUM(buffer_span) AS buffering, SUM(opening) AS opening,
               SUM({sql.least("play_span", left)}) AS play_day,
               SUM({sql.least("buffer_span", left)}) AS buffering_day,
               SUM({sql.greatest("0", f"play_span - {left}")}) AS play_after,
               SUM({sql.greatest("0", f"buffer_span - {left}")}) AS buffering_after,
               SUM(CASE WHEN t + play_span + buffer_span > day_end THEN 1 ELSE 0 END)
                   AS crossing,
               COUNT(*) AS n,
               SUM(CASE WHEN kind = %(kind_buffer_start)s THEN 1 ELSE 0 END) AS rebuffers,
               SUM(CASE WHEN kind = %(kind_error)s THEN 1 ELSE 0 END) AS errors,
               SUM(CASE WHEN kind = %(kind_play)s THEN 1 ELSE 0 END) AS plays,
               SUM(fatal) AS fatal,
               MAX(CASE WHEN kind = %(kind_ended)s THEN t END) AS ended_t,
               MAX(CASE WHEN is_last = 1 THEN state END) AS last_state,
               MAX(video_time) AS furthest_video_time, MAX(duration) AS video_duration
        FROM spans GROUP BY {_SESSION}, day_no, old_session_id, startup_ms
        """,
        {
            **_code_params(),
            "epsilon": _EPSILON,
            "timeout": timeout,
            "heartbeat": heartbeat,
            "cap": GAP_CAP_HEARTBEATS * heartbeat,
            "startup_max": STARTUP_MS_MAX,
        },
        analyze=("stream_id", "client_id", "session_no", "day_no", "old_session_id", "startup_ms"),
    )


def _sessions_sum(sql: _Sql) -> None:
    """agg_sessions: one row per rebuilt session, summed from its pieces, with its
    figures and `final_id`, the id its earliest events' pieces already had (the least
    old id) — unless an earlier session (after a split) claimed that id first, or it is
    not a stored session of the same client (NULL: a new row).

    A session's startup time is its first play's that has one: the piece holding the
    earliest row with a startup time (`firsts`)."""
    sessions = _t(ViewerSession)
    sql.temp_table(
        "agg_sessions",
        f"""
        WITH firsts AS (
            SELECT {_SESSION}, startup_ms FROM (
                SELECT {_SESSION}, startup_ms, ROW_NUMBER() OVER (
                    PARTITION BY {_SESSION} ORDER BY first_rn) AS nth
                FROM agg_pieces WHERE startup_ms IS NOT NULL) p
            WHERE nth = 1
        ), g AS (
            SELECT {_SESSION},
                   MAX(started_at) AS started_at, MAX(last_event_at) AS last_event_at,
                   SUM(play) + SUM(opening) AS playing_seconds,
                   SUM(opening) AS opening,
                   SUM(buffering) AS buffer_seconds,
                   SUM(rebuffers) AS buffer_count,
                   SUM(errors) AS error_count,
                   SUM(n) AS event_count,
                   MAX(country) AS country,
                   MAX(device) AS device,
                   MAX(ended_t) AS ended_t,
                   MAX(last_state) AS last_state_code,
                   MIN(old_session_id) AS candidate_id,
                   SUM(plays) AS play_count,
                   SUM(fatal) AS fatal_error_count,
                   MAX(furthest_video_time) AS furthest_video_time,
                   MAX(video_duration) AS video_duration
            FROM agg_pieces GROUP BY {_SESSION}
        )
        SELECT g.*, {sql.epoch("g.started_at")} AS start_t,
               {sql.epoch("g.last_event_at")} AS last_t,
               {_state_name_case("g.last_state_code")} AS last_state, f.startup_ms,
               CASE WHEN ROW_NUMBER() OVER (
                             PARTITION BY g.candidate_id ORDER BY {sql.epoch("g.started_at")}) = 1
                          AND EXISTS (SELECT 1 FROM {sessions} s WHERE s.id = g.candidate_id
                                      AND s.stream_id = g.stream_id AND s.client_id = g.client_id)
                    THEN g.candidate_id END AS final_id
        FROM g LEFT JOIN firsts f ON f.stream_id = g.stream_id AND f.client_id = g.client_id
             AND f.session_no = g.session_no
        """,
        _code_params(),
        analyze=("stream_id", "client_id", "session_no", "started_at", "opening", "final_id"),
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
        FROM {sessions} s WHERE s.id IN (SELECT old_session_id FROM agg_pieces)
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

    From agg_pieces: each event's span was summed on the day it starts, with what runs
    past that midnight summed beside it (`*_after`), which moves to the next day here,
    over one row per (session, day) instead of per event. A session's opening credit
    (before a first heartbeat) comes from agg_sessions. (Splitting each span into its
    own rows read the events four times, ~2 s of the 1M-event benchmark.)
    """
    session_days = _t(ViewerSessionDay)
    opening_day = sql.day_no("a")
    opening_end = f"(({opening_day} + 1) * %(day_seconds)s)"
    opening_left = f"({opening_end} - a)"
    sql.execute(
        f"""
        INSERT INTO {session_days} (session_id, stream_id, day, playing_seconds, buffer_seconds,
                                    event_count, buffer_count)
        WITH per_start_day AS (
            SELECT {_SESSION}, day_no, SUM(play_day) AS play, SUM(buffering_day) AS buffering,
                   SUM(n) AS n, SUM(rebuffers) AS rebuffers, SUM(play_after) AS play_after,
                   SUM(buffering_after) AS buffering_after, SUM(crossing) AS crossing
            FROM agg_pieces GROUP BY {_SESSION}, day_no
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
        """
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
