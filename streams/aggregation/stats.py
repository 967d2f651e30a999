"""Step 4 of a run: StreamStats for every (stream, UTC day) the rebuilt sessions touched.

Each day's parts are counted from the session tables (`ViewerSession` for what counts
on the day a session starts, `ViewerSessionDay` for watch time where it fell), then
turned into a row by `streams.stream_figures` — recomputed from rows, never incremented.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from ..bunny import bunny_watch_by_stream_day
from ..models import Device, StreamStats, ViewerSession, ViewerSessionDay
from ..session_rules import GAP_CAP_HEARTBEATS
from ..stream_figures import (
    StreamDayParts,
    median_and_percentile_sql,
    stream_stats_row,
    stream_stats_write,
    top_countries,
)
from .sql import DAY, _Sql, _t

_EPOCH_DATE = date(1970, 1, 1)
_NOT_BOT = "s.device <> %(bot)s"
_NOT_BOT_PARAMS = {"bot": Device.BOT.value}


def _dirty_days(sql: _Sql, *, heartbeat: float) -> list[tuple[int, int]]:
    """(stream_id, day number) of every day the old or the rebuilt sessions touched,
    including the opening credit before a first heartbeat and the gap after a last event."""
    rows = sql.fetchall(
        f"SELECT DISTINCT stream_id, {sql.day_no('start_t - %(heartbeat)s')}, "
        f"{sql.day_no('last_t + %(cap)s')} FROM ("
        "SELECT stream_id, start_t, last_t FROM agg_sessions "
        "UNION ALL SELECT stream_id, start_t, last_t FROM agg_old) r",
        {"heartbeat": heartbeat, "cap": GAP_CAP_HEARTBEATS * heartbeat},
    )
    days: set[tuple[int, int]] = set()
    for stream_id, first, last in rows:
        days.update((stream_id, d) for d in range(first, last + 1))
    return sorted(days)


def _stats_recompute(sql: _Sql, *, days: list[tuple[int, int]], now: datetime) -> None:
    """Rewrite the StreamStats row of each of `days`; a day left with nothing loses its row."""
    _days_table(sql, days=days)
    parts = _day_parts(sql)
    keyed = [(stream_id, _EPOCH_DATE + timedelta(days=day_no)) for stream_id, day_no in days]
    bunny = bunny_watch_by_stream_day(keyed)
    rows, empty = [], []
    for key, (stream_id, day) in zip(days, keyed, strict=True):
        day_parts = parts.get(key, StreamDayParts())
        bunny_watch = bunny.get((stream_id, day), 0.0)
        if day_parts.sessions == 0 and day_parts.tracked_watch_seconds == 0 and not bunny_watch:
            empty.append((stream_id, day))
            continue
        rows.append(
            stream_stats_row(
                stream_id=stream_id,
                day=day,
                parts=day_parts,
                bunny_watch_seconds=bunny_watch,
                calculated_at=now,
            )
        )
    stream_stats_write(rows=rows)
    for stream_id, day in empty:
        StreamStats.objects.filter(stream_id=stream_id, day=day).delete()


def _days_table(sql: _Sql, *, days: list[tuple[int, int]]) -> None:
    """agg_days(stream_id, day_no, day_start, day_end, day): the days to recompute."""
    sql.create_temp(
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
        sql.cursor.execute(
            "INSERT INTO agg_days VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk)),
            [v for row in chunk for v in row],
        )
    sql.execute("ANALYZE agg_days")


def _day_parts(sql: _Sql) -> dict[tuple[int, int], StreamDayParts]:
    """The parts of each day in agg_days that has any (bot sessions never count)."""
    sessions, session_days = _t(ViewerSession), _t(ViewerSessionDay)
    starts_in_day = (
        f"s.stream_id = d.stream_id AND {sql.before('s.started_at', 'd.day_start', '>=')} "
        f"AND {sql.before('s.started_at', 'd.day_end', '<')}"
    )
    counted: dict[tuple[int, int], dict] = defaultdict(dict)
    # Sessions, unique viewers, error sessions, exits before video start (a play and no
    # playing time) and sessions with a fatal error count on the day a session starts.
    for stream_id, day_no, count, unique, errors, exits, fatal in sql.fetchall(
        f"SELECT d.stream_id, d.day_no, COUNT(*), COUNT(DISTINCT s.client_id), "
        f"SUM(CASE WHEN s.error_count > 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN s.play_count > 0 AND s.playing_seconds = 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN s.fatal_error_count > 0 THEN 1 ELSE 0 END) "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {_NOT_BOT} "
        "GROUP BY d.stream_id, d.day_no",
        _NOT_BOT_PARAMS,
    ):
        counted[(stream_id, day_no)].update(
            sessions=count,
            unique_viewers=unique,
            error_sessions=errors,
            exits_before_start=exits or 0,
            fatal_error_sessions=fatal or 0,
        )
    # Video startup time: median and p95 over the day's sessions that have one.
    for stream_id, day_no, median, upper, n in sql.fetchall(
        median_and_percentile_sql(
            source=f"SELECT d.stream_id, d.day_no, s.startup_ms FROM agg_days d "
            f"JOIN {sessions} s ON {starts_in_day} WHERE {_NOT_BOT}",
            group=["stream_id", "day_no"],
            value="startup_ms",
        ),
        _NOT_BOT_PARAMS,
    ):
        counted[(stream_id, day_no)].update(
            startup_time_median_ms=float(median),
            startup_time_p95_ms=float(upper),
            startup_sessions=int(n),
        )
    # Watch time counts where it fell.
    for stream_id, day_no, playing, buffering, events, rebuffers in sql.fetchall(
        f"SELECT d.stream_id, d.day_no, SUM(sd.playing_seconds), SUM(sd.buffer_seconds), "
        f"SUM(sd.event_count), SUM(sd.buffer_count) FROM agg_days d JOIN {session_days} sd "
        "ON sd.stream_id = d.stream_id AND sd.day = d.day "
        f"JOIN {sessions} s ON s.id = sd.session_id WHERE {_NOT_BOT} "
        "GROUP BY d.stream_id, d.day_no",
        _NOT_BOT_PARAMS,
    ):
        playing, buffering = playing or 0.0, buffering or 0.0
        counted[(stream_id, day_no)].update(
            # SPEC §6.2: watch time includes rebuffering.
            tracked_watch_seconds=playing + buffering,
            buffer_seconds=buffering,
            event_count=events or 0,
            rebuffer_count=rebuffers or 0,
        )
    for key, peak in _peaks(sql).items():
        counted[key]["peak_concurrent_viewers"] = peak
    countries: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
    for stream_id, day_no, country, viewers in sql.fetchall(
        f"SELECT d.stream_id, d.day_no, s.country, COUNT(DISTINCT s.client_id) AS viewers "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {_NOT_BOT} "
        "AND s.country <> '' GROUP BY d.stream_id, d.day_no, s.country",
        _NOT_BOT_PARAMS,
    ):
        countries[(stream_id, day_no)].append((country, viewers))
    for key, items in countries.items():
        counted[key]["top_countries"] = top_countries(items)
    for stream_id, day_no, device, viewers in sql.fetchall(
        f"SELECT d.stream_id, d.day_no, s.device, COUNT(DISTINCT s.client_id) "
        f"FROM agg_days d JOIN {sessions} s ON {starts_in_day} WHERE {_NOT_BOT} "
        "GROUP BY d.stream_id, d.day_no, s.device",
        _NOT_BOT_PARAMS,
    ):
        counted[(stream_id, day_no)].setdefault("device_breakdown", {})[device] = viewers
    return {key: StreamDayParts(**values) for key, values in counted.items()}


def _peaks(sql: _Sql) -> dict[tuple[int, int], int]:
    """Most sessions whose [started_at, last_event_at] hold one instant of the day.

    A sweep over interval ends: +1 at each (clipped) start, -1 at each end, starts
    before ends at the same instant so that touching intervals count as overlapping.
    """
    sessions = _t(ViewerSession)
    start, last = sql.epoch("s.started_at"), sql.epoch("s.last_event_at")
    touching = (
        f"s.stream_id = d.stream_id AND {sql.before('s.started_at', 'd.day_end', '<')} "
        f"AND {sql.before('s.last_event_at', 'd.day_start', '>=')} AND {_NOT_BOT}"
    )
    rows = sql.fetchall(
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
        """,
        _NOT_BOT_PARAMS,
    )
    return {(s, d): int(peak) for s, d, peak in rows}
