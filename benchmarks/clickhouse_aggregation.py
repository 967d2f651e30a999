"""The aggregator's sessionization and daily stats (SPEC §6.1, §6.2), ported to ClickHouse SQL.

The same steps as `streams.aggregation` on one ClickHouse node (or one shard: every
statement partitions by (stream_id, client_id), so a shard holding all of a pair's
events computes that pair's sessions alone), for a full rebuild:

1. `agg_events`: each event with its session number, the player state it leaves in
   force and the seconds credited to the gap after it — the window functions of
   `streams.aggregation.sessions._events_sessionize` (which, on PostgreSQL, sums them per
   session and day in the same statement instead of storing them), running MAXes of
   the row number finding the same state (one per state here, one encoded value there);
2. `agg_sessions`: one row per session, keyed (stream_id, client_id, session_no);
3. `agg_session_days`: each credited span on the UTC day it fell on;
4. the parts of each (stream, day) — sessions, unique viewers and error sessions on the
   day a session starts, watch time where it fell, the peak-concurrency sweep, top
   countries and devices — which `streams.stream_figures` turns into figures, as it
   does for the PostgreSQL aggregator.

The rules come from `streams.session_rules` and the settings, as in the PostgreSQL SQL;
they are our constants, so they are written into the text as literals.
"""

from __future__ import annotations

from django.conf import settings

from streams.models import Device, PlaybackEventType
from streams.session_rules import BUFFERING, GAP_CAP_HEARTBEATS, PLAYING, STATE_AFTER

DAY = 86400
_PAIR = "PARTITION BY stream_id, client_id ORDER BY occurred_at, id"
_SESSION = "stream_id, client_id, session_no"
_BOT = Device.BOT.value

# Sorted by pair and time, as the aggregator reads PostgreSQL's (stream, client_id,
# occurred_at, id) index; partitioned by month on event time, as the PostgreSQL raw tables.
EVENTS_TABLE = """
CREATE TABLE playback_event (
    id UInt64,
    stream_id UInt64,
    client_id String,
    type LowCardinality(String),
    occurred_at DateTime64(6, 'UTC'),
    country LowCardinality(String),
    device LowCardinality(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (stream_id, client_id, occurred_at, id)
"""


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _state_after_case(column: str) -> str:
    whens = " ".join(
        f"WHEN {_literal(event)} THEN {_literal(state)}" for event, state in STATE_AFTER.items()
    )
    return f"CASE {column} {whens} ELSE NULL END"


def events_sessionize_sql() -> str:
    """agg_events: the per-event rows `_events_sessionize` computes on PostgreSQL.

    lagInFrame/leadInFrame with ±inf defaults stand in for LAG/LEAD's NULL at a pair's
    first and last event (an infinite gap starts or ends a session either way).
    """
    timeout = float(settings.SESSION_TIMEOUT)
    heartbeat = float(settings.HEARTBEAT_INTERVAL)
    cap = GAP_CAP_HEARTBEATS * heartbeat
    states = sorted(set(STATE_AFTER.values()))
    latest_set_of = ", ".join(
        f"max(if(state_set = {_literal(state)}, rn, NULL)) OVER r AS last_{state}"
        for state in states
    )
    state_of_latest = " ".join(
        f"WHEN anchor_rn = last_{state} THEN {_literal(state)}" for state in states
    )
    return f"""
    CREATE TABLE agg_events ENGINE = MergeTree ORDER BY ({_SESSION}) AS
    WITH ev AS (
        SELECT id, stream_id, client_id, type, occurred_at, country, device,
               toUnixTimestamp64Micro(occurred_at) / 1e6 AS t
        FROM playback_event
    ), neighbours AS (
        SELECT ev.*, t - lagInFrame(t, 1, -inf) OVER w AS since_prev,
               leadInFrame(t, 1, inf) OVER w - t AS until_next,
               row_number() OVER w AS rn, {_state_after_case("type")} AS state_set
        FROM ev
        WINDOW w AS ({_PAIR} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ), bounded AS (
        SELECT neighbours.*,
               toUInt8(since_prev >= {timeout}) AS is_start,
               toUInt8(until_next >= {timeout}) AS is_last
        FROM neighbours
    ), latest AS (
        SELECT bounded.*, sum(is_start) OVER r AS session_no,
               max(if(is_start = 1 OR state_set IS NOT NULL, rn, NULL)) OVER r AS anchor_rn,
               {latest_set_of}
        FROM bounded WINDOW r AS ({_PAIR} ROWS UNBOUNDED PRECEDING)
    ), stated AS (
        SELECT latest.*, CASE {state_of_latest} END AS state FROM latest
    )
    SELECT id, stream_id, client_id, type, country, device, t, session_no, is_start, is_last,
           state,
           if(state = {_literal(PLAYING)} AND is_last = 0, least(until_next, {cap}), 0)
               AS play_span,
           if(state = {_literal(BUFFERING)} AND is_last = 0, least(until_next, {cap}), 0)
               AS buffer_span,
           if(is_start = 1 AND type = {_literal(PlaybackEventType.HEARTBEAT.value)},
              {heartbeat}, 0) AS opening
    FROM stated
    """


def sessions_sum_sql() -> str:
    """agg_sessions, as `_sessions_sum` (without the PostgreSQL row ids: a session is
    keyed by its pair and number, or by its pair and start instant)."""
    return f"""
    CREATE TABLE agg_sessions ENGINE = MergeTree ORDER BY ({_SESSION}) AS
    SELECT {_SESSION},
           min(t) AS start_t, max(t) AS last_t,
           sum(play_span) + sum(opening) AS playing_seconds,
           sum(opening) AS opening_seconds,
           sum(buffer_span) AS buffer_seconds,
           countIf(type = {_literal(PlaybackEventType.BUFFER_START.value)}) AS buffer_count,
           countIf(type = {_literal(PlaybackEventType.ERROR.value)}) AS error_count,
           count() AS event_count,
           anyIf(country, is_start = 1) AS start_country,
           anyIf(device, is_start = 1) AS start_device,
           anyIf(state, is_last = 1) AS last_state
    FROM agg_events GROUP BY {_SESSION}
    """


def session_days_sql() -> str:
    """agg_session_days, as `_session_days_store`: one pass over agg_events, what runs
    past a midnight moved to the next day, the opening credit from agg_sessions."""
    day_no = f"toInt64(floor(t / {DAY}))"
    left = f"((({day_no}) + 1) * {DAY} - t)"
    opening_day = f"toInt64(floor(a / {DAY}))"
    opening_left = f"((({opening_day}) + 1) * {DAY} - a)"
    return f"""
    CREATE TABLE agg_session_days ENGINE = MergeTree ORDER BY (stream_id, day_no, client_id)
    AS
    WITH per_start_day AS (
        SELECT {_SESSION}, {day_no} AS day_no,
               sum(least(play_span, {left})) AS play,
               sum(least(buffer_span, {left})) AS buffering, count() AS n,
               sum(greatest(0, play_span - {left})) AS play_after,
               sum(greatest(0, buffer_span - {left})) AS buffering_after,
               countIf(t + play_span + buffer_span > ({day_no} + 1) * {DAY}) AS crossing
        FROM agg_events GROUP BY {_SESSION}, day_no
    ), openings AS (
        SELECT {_SESSION}, start_t - opening_seconds AS a, opening_seconds AS play
        FROM agg_sessions WHERE opening_seconds > 0
    ), pieces AS (
        SELECT {_SESSION}, day_no, play, buffering, n FROM per_start_day
        UNION ALL
        SELECT {_SESSION}, day_no + 1, play_after, buffering_after, 0
        FROM per_start_day WHERE crossing > 0
        UNION ALL
        SELECT {_SESSION}, {opening_day}, least(play, {opening_left}), 0, 0 FROM openings
        UNION ALL
        SELECT {_SESSION}, {opening_day} + 1, greatest(0, play - {opening_left}), 0, 0
        FROM openings WHERE a + play > ({opening_day} + 1) * {DAY}
    ), per_day AS (
        SELECT {_SESSION}, day_no, sum(play) AS play, sum(buffering) AS buffering,
               sum(n) AS n
        FROM pieces GROUP BY {_SESSION}, day_no
    )
    SELECT d.stream_id AS stream_id, d.client_id AS client_id, d.session_no AS session_no,
           d.day_no AS day_no, d.play AS playing_seconds, d.buffering AS buffer_seconds,
           d.n AS event_count, s.start_device AS start_device
    FROM per_day d JOIN agg_sessions s
         ON d.stream_id = s.stream_id AND d.client_id = s.client_id
        AND d.session_no = s.session_no
    """


def day_counts_sql() -> str:
    """Per (stream, day): sessions, unique viewers and error sessions counted on the day a
    session starts, watch time and events where they fell, and the peak (bots never
    count). A day with neither sessions nor watch time has no row, as on PostgreSQL."""
    start_day = f"toInt64(floor(start_t / {DAY}))"
    last_day = f"toInt64(floor(last_t / {DAY}))"
    return f"""
    WITH starts AS (
        SELECT stream_id, {start_day} AS day_no, count() AS sessions,
               uniqExact(client_id) AS unique_viewers,
               countIf(error_count > 0) AS error_sessions
        FROM agg_sessions WHERE start_device != {_literal(_BOT)} GROUP BY stream_id, day_no
    ), watch AS (
        SELECT stream_id, day_no, sum(playing_seconds) AS playing,
               sum(buffer_seconds) AS buffering, sum(event_count) AS events
        FROM agg_session_days WHERE start_device != {_literal(_BOT)}
        GROUP BY stream_id, day_no
    ), touching AS (
        SELECT stream_id, arrayJoin(range({start_day}, {last_day} + 1)) AS day_no,
               start_t, last_t
        FROM agg_sessions WHERE start_device != {_literal(_BOT)}
    ), points AS (
        SELECT stream_id, day_no, point.1 AS pt, point.2 AS delta FROM touching
        ARRAY JOIN [(greatest(start_t, toFloat64(day_no * {DAY})), toInt8(1)),
                    (least(last_t, toFloat64((day_no + 1) * {DAY})), toInt8(-1))] AS point
    ), peaks AS (
        SELECT stream_id, day_no, max(concurrent) AS peak FROM (
            SELECT stream_id, day_no, sum(delta) OVER (
                PARTITION BY stream_id, day_no ORDER BY pt, delta DESC ROWS UNBOUNDED PRECEDING
            ) AS concurrent
            FROM points
        ) GROUP BY stream_id, day_no
    )
    SELECT stream_id, day_no, sessions, unique_viewers, error_sessions,
           playing + buffering, buffering, events, peak
    FROM starts FULL OUTER JOIN watch USING (stream_id, day_no)
         LEFT JOIN peaks USING (stream_id, day_no)
    WHERE sessions > 0 OR playing + buffering > 0
    ORDER BY stream_id, day_no
    """


def day_viewers_by_sql(column: str) -> str:
    """Unique viewers per (stream, start day, `column`) — country or device."""
    country_only = "AND start_country != ''" if column == "start_country" else ""
    return f"""
    SELECT stream_id, toInt64(floor(start_t / {DAY})) AS day_no, {column},
           uniqExact(client_id)
    FROM agg_sessions WHERE start_device != {_literal(_BOT)} {country_only}
    GROUP BY stream_id, day_no, {column}
    """


def sessions_fingerprint_sql() -> str:
    """Per stream: the session count and sums of their figures (bots included, as in
    ViewerSession), to compare with the PostgreSQL sessions."""
    return """
    SELECT stream_id, count(), uniqExact(client_id), sum(event_count), sum(error_count),
           sum(buffer_count), sum(playing_seconds), sum(buffer_seconds)
    FROM agg_sessions GROUP BY stream_id ORDER BY stream_id
    """
