"""Listener, listening and uptime figures of a station (SPEC §9.3), read from the raw
snapshot and session tables.

The rules, once:
- A snapshot's count holds from its `taken_at` until the encoder's next snapshot, at most
  `HOLD_SECONDS`; time no snapshot holds is unobserved and left out of every figure.
- Station totals add the encoders' counts of one poll round (`round_at`); a round's total
  holds until the next round, at most `HOLD_SECONDS`.
- Days are local days of the station's timezone, DST included (23 or 25 hours).

The time-weighted sums run in the database (a `LEAD` window and an overlap join against
the bucket bounds), on PostgreSQL and SQLite alike; Python only shapes the answer.

Daily figures are sums over the day's local hours. An hour that is over is read from its
`ListenerHour` rows (rolled up by `listener_rollup`), any other hour from the raw
snapshots with the same SQL, so both give the same numbers and a day reads a few hundred
small rows instead of thousands of snapshots.
"""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from streams.models import StreamProvider

from .models import ENCODER_PROVIDERS, ListenerHour, ListenerSession, ListenerSnapshot, Station

HOLD_SECONDS = 60  # 2 × the 30 s poll interval
FRESH_SECONDS = 60  # "now" and listeners_at_start read only data younger than this
COUNTING_SESSION_SECONDS = 60  # a listening session counts from this length on

_SNAPSHOTS = ListenerSnapshot._meta.db_table
_SESSIONS = ListenerSession._meta.db_table


# ---------------------------------------------------------------------------------------
# Station-local time


def station_timezone(*, station: Station) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(station.timezone or "UTC")


def local_date(*, station: Station, at: dt.datetime) -> dt.date:
    """The station-local date of the instant `at`."""
    return at.astimezone(station_timezone(station=station)).date()


def local_today(*, station: Station, now: dt.datetime | None = None) -> dt.date:
    return local_date(station=station, at=now or timezone.now())


def local_day_bounds(*, station: Station, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of one local day; 23, 24 or 25 hours long."""
    zone = station_timezone(station=station)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def local_days_bounds(
    *, station: Station, date_from: dt.date, date_to: dt.date
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the local days date_from … date_to, both included."""
    return (
        local_day_bounds(station=station, day=date_from)[0],
        local_day_bounds(station=station, day=date_to)[1],
    )


_QUARTER = dt.timedelta(minutes=15)  # every UTC offset in use is a multiple of this


def local_hour_bounds(*, station: Station, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) in UTC of each local hour of one local day, in order: 24 of them, 23 or
    25 on a DST change day (the repeated hour twice, each with its own offset)."""
    zone = station_timezone(station=station)
    start, end = local_day_bounds(station=station, day=day)
    cuts = [start]
    at = start + _QUARTER
    while at < end:
        if at.astimezone(zone).minute == 0:
            cuts.append(at)
        at += _QUARTER
    cuts.append(end)
    return list(zip(cuts, cuts[1:], strict=False))


def local_dates(*, date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    return [date_from + dt.timedelta(days=i) for i in range((date_to - date_from).days + 1)]


PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}


def local_period_start(
    *, station: Station, period: str, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Start (UTC) of a play/request period: `7d` = the last 7 local days including today
    (likewise `30d`, `90d`); `all` → None (no lower bound)."""
    if period == "all":
        return None
    if period not in PERIOD_DAYS:
        raise ValueError(f"unknown period {period!r}")
    today = local_today(station=station, now=now)
    first = today - dt.timedelta(days=PERIOD_DAYS[period] - 1)
    return local_day_bounds(station=station, day=first)[0]


# ---------------------------------------------------------------------------------------
# SQL helpers (PostgreSQL and SQLite)


def _epoch(column: str) -> str:
    """SQL for the Unix time (float seconds) of a datetime column."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::double precision"
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC): whole seconds from strftime (its
    # '%s' doubled, as the queries have parameters) plus the microseconds as written;
    # julianday() would round them off.
    return (
        f"(CAST(strftime('%%s', {column}) AS REAL) "
        f"+ COALESCE(CAST(NULLIF(substr({column}, 21), '') AS REAL), 0) / 1000000.0)"
    )


def _db_datetime(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _least(a: str, b: str) -> str:
    return f"(CASE WHEN {a} < {b} THEN {a} ELSE {b} END)"


def _greatest(a: str, b: str) -> str:
    return f"(CASE WHEN {a} > {b} THEN {a} ELSE {b} END)"


def _buckets_cte(buckets: Sequence[tuple[float, float]]) -> tuple[str, list]:
    """`buckets(idx, b_start, b_end)` as a VALUES list of Unix times."""
    rows = ", ".join(["(%s, %s, %s)"] * len(buckets))
    params: list = []
    for idx, (start, end) in enumerate(buckets):
        params += [idx, float(start), float(end)]
    return f"buckets(idx, b_start, b_end) AS (VALUES {rows})", params


def _encoders(*, station: Station) -> list[StreamProvider]:
    return list(
        StreamProvider.objects.filter(
            stream_id=station.stream_id, provider__in=ENCODER_PROVIDERS
        ).order_by("id")
    )


def _held_series_sql(*, encoder_ids: Sequence[int], per_round: bool) -> str:
    """SQL of `held(series, value, up, t, t_end)`: every snapshot (or, with `per_round`,
    every poll round's station total) with the interval its count holds. Parameters: the
    encoder ids, then the lower and upper bound of taken_at / round_at."""
    in_list = ", ".join(["%s"] * len(encoder_ids))
    if per_round:
        source = (
            f"SELECT 0 AS series, SUM(listeners) AS value, MAX(CASE WHEN source_up THEN 1 "
            f"ELSE 0 END) AS up, {_epoch('round_at')} AS t FROM {_SNAPSHOTS} "
            f"WHERE encoder_id IN ({in_list}) AND round_at >= %s AND round_at < %s "
            f"GROUP BY round_at"
        )
    else:
        source = (
            f"SELECT encoder_id AS series, listeners AS value, CASE WHEN source_up THEN 1 "
            f"ELSE 0 END AS up, {_epoch('taken_at')} AS t FROM {_SNAPSHOTS} "
            f"WHERE encoder_id IN ({in_list}) AND taken_at >= %s AND taken_at < %s"
        )
    return f"""
        points AS ({source}),
        leads AS (
            SELECT series, value, up, t,
                   LEAD(t) OVER (PARTITION BY series ORDER BY t) AS t_next
            FROM points
        ),
        held AS (
            SELECT series, value, up, t,
                   CASE WHEN t_next IS NULL OR t_next > t + {HOLD_SECONDS}
                        THEN t + {HOLD_SECONDS} ELSE t_next END AS t_end
            FROM leads
        )"""


@dataclass(frozen=True)
class _HeldTotals:
    observed_seconds: float
    listener_seconds: float
    up_seconds: float
    peak: int | None


def _held_totals(
    *,
    encoder_ids: Sequence[int],
    per_round: bool,
    buckets: Sequence[tuple[dt.datetime, dt.datetime]],
) -> dict[tuple[int, int], _HeldTotals]:
    """Per (bucket index, series): observed seconds, listener-seconds, seconds with the
    source up, and the largest count taken inside the bucket. Buckets are [start, end)."""
    if not encoder_ids or not buckets:
        return {}
    epochs = [(start.timestamp(), end.timestamp()) for start, end in buckets if end > start]
    if not epochs:
        return {}
    lower = min(start for start, _ in buckets) - dt.timedelta(seconds=HOLD_SECONDS)
    upper = max(end for _, end in buckets)
    buckets_sql, bucket_params = _buckets_cte([(s.timestamp(), e.timestamp()) for s, e in buckets])
    overlap = f"({_least('h.t_end', 'b.b_end')} - {_greatest('h.t', 'b.b_start')})"
    sql = f"""
        WITH {buckets_sql}, {_held_series_sql(encoder_ids=encoder_ids, per_round=per_round)}
        SELECT b.idx, h.series,
               SUM({overlap}),
               SUM({overlap} * h.value),
               SUM(CASE WHEN h.up = 1 THEN {overlap} ELSE 0 END),
               MAX(CASE WHEN h.t >= b.b_start THEN h.value END)
        FROM held h JOIN buckets b ON h.t < b.b_end AND h.t_end > b.b_start
        GROUP BY b.idx, h.series
    """
    params = [*bucket_params, *encoder_ids, _db_datetime(lower), _db_datetime(upper)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        (int(idx), int(series)): _HeldTotals(
            observed_seconds=float(observed or 0.0),
            listener_seconds=float(listener_seconds or 0.0),
            up_seconds=float(up or 0.0),
            peak=None if peak is None else int(peak),
        )
        for idx, series, observed, listener_seconds, up, peak in rows
    }


def _clip_to_now(
    buckets: Iterable[tuple[dt.datetime, dt.datetime]], now: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Nothing after `now` is observed: the last snapshot's hold stops at the present."""
    return [(start, min(end, max(start, now))) for start, end in buckets]


def _average(totals: _HeldTotals | None) -> float | None:
    if totals is None or totals.observed_seconds <= 0:
        return None
    return totals.listener_seconds / totals.observed_seconds


# ---------------------------------------------------------------------------------------
# Listeners over a window


@dataclass(frozen=True)
class ListenerFigures:
    peak: int | None  # largest snapshot (or round total) taken in the window
    average: float | None  # time-weighted over observed time; None when nothing observed
    now: int | None  # latest snapshot (or round) if under FRESH_SECONDS old
    observed_seconds: float


def _encoder_ids(*, station: Station, encoder: StreamProvider | None) -> list[int]:
    if encoder is not None:
        return [encoder.pk]
    return [e.pk for e in _encoders(station=station)]


def listeners_now(
    *, station: Station, encoder: StreamProvider | None = None, now: dt.datetime | None = None
) -> int | None:
    """The encoder's latest count, or the station total of the latest round, if it is under
    FRESH_SECONDS old; else None."""
    now = now or timezone.now()
    since = now - dt.timedelta(seconds=FRESH_SECONDS)
    snapshots = ListenerSnapshot.objects.filter(
        encoder_id__in=_encoder_ids(station=station, encoder=encoder)
    )
    if encoder is not None:
        latest = (
            snapshots.filter(taken_at__gt=since, taken_at__lte=now).order_by("-taken_at").first()
        )
        return None if latest is None else latest.listeners
    return _round_total_at(snapshots=snapshots, at=now)


def listeners_window(
    *,
    station: Station,
    start: dt.datetime,
    end: dt.datetime,
    encoder: StreamProvider | None = None,
    now: dt.datetime | None = None,
) -> ListenerFigures:
    """Peak, time-weighted average and current count over [start, end), for one encoder
    or (encoder None) the station totals per poll round."""
    now = now or timezone.now()
    encoder_ids = _encoder_ids(station=station, encoder=encoder)
    per_round = encoder is None
    buckets = _clip_to_now([(start, end)], now)
    totals = _held_totals(encoder_ids=encoder_ids, per_round=per_round, buckets=buckets)
    series = 0 if per_round else encoder.pk
    window = totals.get((0, series))
    return ListenerFigures(
        peak=window.peak if window else None,
        average=_average(window),
        now=listeners_now(station=station, encoder=encoder, now=now),
        observed_seconds=window.observed_seconds if window else 0.0,
    )


def listeners_points(
    *,
    station: Station,
    start: dt.datetime,
    end: dt.datetime,
    encoder: StreamProvider | None = None,
) -> list[tuple[dt.datetime, int]]:
    """The graph: (taken_at, listeners) per snapshot of one encoder, or (round_at, station
    total) per poll round, oldest first."""
    snapshots = ListenerSnapshot.objects.filter(
        encoder_id__in=_encoder_ids(station=station, encoder=encoder)
    )
    if encoder is not None:
        return list(
            snapshots.filter(taken_at__gte=start, taken_at__lt=end)
            .order_by("taken_at")
            .values_list("taken_at", "listeners")
        )
    return [
        (row["round_at"], row["total"])
        for row in snapshots.filter(round_at__gte=start, round_at__lt=end)
        .values("round_at")
        .annotate(total=Sum("listeners"))
        .order_by("round_at")
    ]


def _round_total_at(*, snapshots, at: dt.datetime) -> int | None:
    latest_round = (
        snapshots.filter(round_at__lte=at, round_at__gt=at - dt.timedelta(seconds=FRESH_SECONDS))
        .order_by("-round_at")
        .values_list("round_at", flat=True)
        .first()
    )
    if latest_round is None:
        return None
    return snapshots.filter(round_at=latest_round).aggregate(total=Sum("listeners"))["total"]


def listeners_at_start(*, station: Station, at: dt.datetime) -> int | None:
    """The station total of the latest poll round at or before `at`, if under
    FRESH_SECONDS old (the listeners_at_start of a play starting at `at`)."""
    snapshots = ListenerSnapshot.objects.filter(
        encoder_id__in=_encoder_ids(station=station, encoder=None)
    )
    return _round_total_at(snapshots=snapshots, at=at)


def listeners_at_starts(
    *, station: Station, instants: Sequence[dt.datetime]
) -> dict[dt.datetime, int | None]:
    """`listeners_at_start` for many instants with one query (the SAM import's chunks)."""
    if not instants:
        return {}
    encoder_ids = _encoder_ids(station=station, encoder=None)
    rounds = list(
        ListenerSnapshot.objects.filter(
            encoder_id__in=encoder_ids,
            round_at__gt=min(instants) - dt.timedelta(seconds=FRESH_SECONDS),
            round_at__lte=max(instants),
        )
        .values("round_at")
        .annotate(total=Sum("listeners"))
        .order_by("round_at")
        .values_list("round_at", "total")
    )
    times = [round_at for round_at, _ in rounds]
    answer: dict[dt.datetime, int | None] = {}
    for at in instants:
        i = bisect.bisect_right(times, at) - 1
        fresh = i >= 0 and (at - times[i]).total_seconds() < FRESH_SECONDS
        answer[at] = rounds[i][1] if fresh else None
    return answer


# ---------------------------------------------------------------------------------------
# Daily listeners and listening


@dataclass(frozen=True)
class ListenerDay:
    date: dt.date  # station-local
    encoder: str | None  # mount or sid; None for the station total
    peak: int | None
    average: float | None
    tlh_hours: float  # total listening hours of counting sessions
    atsl_minutes: float | None  # TLH × 60 / counting sessions
    cume: int  # distinct listeners with a counting session


@dataclass(frozen=True)
class _Listening:
    seconds: float
    sessions: int
    cume: int


def _listening_per_bucket(
    *,
    encoder_ids: Sequence[int],
    buckets: Sequence[tuple[dt.datetime, dt.datetime]],
    per_encoder: bool,
) -> dict[tuple[int, int], _Listening]:
    """Per (bucket, encoder id or 0): seconds of counting sessions that fell in the bucket,
    the counting sessions touching it and their distinct listeners."""
    if not encoder_ids or not buckets:
        return {}
    buckets_sql, bucket_params = _buckets_cte([(s.timestamp(), e.timestamp()) for s, e in buckets])
    in_list = ", ".join(["%s"] * len(encoder_ids))
    lower = min(start for start, _ in buckets)
    upper = max(end for _, end in buckets)
    # A literal in GROUP BY would name a column position; the station total groups by day.
    series, group_by = ("s.encoder_id", "b.idx, s.encoder_id") if per_encoder else ("0", "b.idx")
    overlap = f"({_least('s.t_end', 'b.b_end')} - {_greatest('s.t', 'b.b_start')})"
    sql = f"""
        WITH {buckets_sql},
        sessions AS (
            SELECT encoder_id, listener, {_epoch("started_at")} AS t,
                   {_epoch("last_seen_at")} AS t_end
            FROM {_SESSIONS}
            WHERE encoder_id IN ({in_list}) AND started_at < %s AND last_seen_at > %s
        )
        SELECT b.idx, {series}, SUM({overlap}), COUNT(*), COUNT(DISTINCT s.listener)
        FROM sessions s JOIN buckets b ON s.t < b.b_end AND s.t_end > b.b_start
        WHERE s.t_end - s.t >= {COUNTING_SESSION_SECONDS}
        GROUP BY {group_by}
    """
    params = [*bucket_params, *encoder_ids, _db_datetime(upper), _db_datetime(lower)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        (int(idx), int(key)): _Listening(
            seconds=float(seconds or 0.0), sessions=int(count), cume=int(cume)
        )
        for idx, key, seconds, count, cume in rows
    }


def _listener_day(
    *, day: dt.date, encoder: str | None, held: _HeldTotals | None, listening: _Listening | None
) -> ListenerDay:
    tlh_hours = listening.seconds / 3600 if listening else 0.0
    sessions = listening.sessions if listening else 0
    return ListenerDay(
        date=day,
        encoder=encoder,
        peak=held.peak if held else None,
        average=_average(held),
        tlh_hours=tlh_hours,
        atsl_minutes=tlh_hours * 60 / sessions if sessions else None,
        cume=listening.cume if listening else 0,
    )


def _sum_hours(parts: Iterable[_HeldTotals | None]) -> _HeldTotals | None:
    """A day's held totals from its hours' (None where nothing held in an hour)."""
    present = [part for part in parts if part is not None]
    if not present:
        return None
    peaks = [part.peak for part in present if part.peak is not None]
    return _HeldTotals(
        observed_seconds=sum(part.observed_seconds for part in present),
        listener_seconds=sum(part.listener_seconds for part in present),
        up_seconds=sum(part.up_seconds for part in present),
        peak=max(peaks) if peaks else None,
    )


def raw_hour_totals(
    *, encoder_ids: Sequence[int], hours: Sequence[tuple[dt.datetime, dt.datetime]]
) -> dict[tuple[dt.datetime, int], _HeldTotals]:
    """Per (hour start, encoder id or 0 for the station total): the held totals of each
    [start, end) hour, read from the raw snapshots. Hours of one local day or a few: the
    overlap join compares every snapshot with every hour passed."""
    answer: dict[tuple[dt.datetime, int], _HeldTotals] = {}
    hours = [(start, end) for start, end in hours if end > start]
    if not encoder_ids or not hours:
        return answer
    for per_round in (False, True):
        totals = _held_totals(encoder_ids=encoder_ids, per_round=per_round, buckets=hours)
        for (idx, series), held in totals.items():
            answer[(hours[idx][0], series)] = held
    return answer


def _hour_totals(
    *,
    station: Station,
    encoder_ids: Sequence[int],
    days_hours: Sequence[Sequence[tuple[dt.datetime, dt.datetime]]],
    now: dt.datetime,
) -> dict[tuple[dt.datetime, int], _HeldTotals]:
    """Held totals per (hour start, series) of every hour of the given days: the rolled-up
    ones from `ListenerHour`, the others (today, hours not rolled up yet) from the raw
    snapshots, one day at a time, with anything after `now` unobserved."""
    answer: dict[tuple[dt.datetime, int], _HeldTotals] = {}
    hours = [hour for day_hours in days_hours for hour in day_hours]
    if not encoder_ids or not hours:
        return answer
    # Raw SQL with the bounds as Unix times: a day range is ~150 rows a day, and turning
    # two timestamps a row into aware datetimes would cost more than the query.
    table = ListenerHour._meta.db_table
    sql = f"""
        SELECT {_epoch("start")}, {_epoch('"end"')}, encoder_id, observed_seconds,
               listener_seconds, peak
        FROM {table}
        WHERE station_id = %s AND start >= %s AND start < %s AND "end" <= %s
    """
    params = [station.pk, *(_db_datetime(v) for v in (hours[0][0], hours[-1][1], now))]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    stored: dict[tuple[float, float], dict[int, _HeldTotals | None]] = {}
    for start, end, encoder_id, observed, listener_seconds, peak in rows:
        # An hour nothing held in: the raw read has no row for it either.
        empty = observed == 0 and peak is None
        stored.setdefault((float(start), float(end)), {})[encoder_id or 0] = (
            None
            if empty
            else _HeldTotals(
                observed_seconds=observed,
                listener_seconds=listener_seconds,
                up_seconds=0.0,  # not rolled up: the daily figures have no uptime
                peak=peak,
            )
        )
    for day_hours in days_hours:
        missing = []
        for hour in day_hours:
            rolled_up = stored.get((hour[0].timestamp(), hour[1].timestamp()))
            if rolled_up is None or 0 not in rolled_up:  # the station row marks an hour done
                missing.append(hour)
                continue
            answer.update(
                ((hour[0], series), held) for series, held in rolled_up.items() if held is not None
            )
        answer.update(raw_hour_totals(encoder_ids=encoder_ids, hours=_clip_to_now(missing, now)))
    return answer


def listeners_daily(
    *,
    station: Station,
    date_from: dt.date,
    date_to: dt.date,
    now: dt.datetime | None = None,
) -> list[ListenerDay]:
    """One row per local day and encoder, then the station total (encoder None) of that
    day: peak, time-weighted average, TLH, ATSL and cume."""
    now = now or timezone.now()
    encoders = _encoders(station=station)
    encoder_ids = [e.pk for e in encoders]
    days = local_dates(date_from=date_from, date_to=date_to)
    day_bounds = [local_day_bounds(station=station, day=day) for day in days]
    days_hours = [local_hour_bounds(station=station, day=day) for day in days]
    per_hour = _hour_totals(
        station=station, encoder_ids=encoder_ids, days_hours=days_hours, now=now
    )
    listening = _listening_per_bucket(encoder_ids=encoder_ids, buckets=day_bounds, per_encoder=True)
    listening_total = _listening_per_bucket(
        encoder_ids=encoder_ids, buckets=day_bounds, per_encoder=False
    )
    rows: list[ListenerDay] = []
    for idx, day in enumerate(days):
        for series, name in [(e.pk, e.external_id) for e in encoders] + [(0, None)]:
            rows.append(
                _listener_day(
                    day=day,
                    encoder=name,
                    held=_sum_hours(per_hour.get((start, series)) for start, _ in days_hours[idx]),
                    listening=(listening if series else listening_total).get((idx, series)),
                )
            )
    return rows


@dataclass(frozen=True)
class ListeningFigures:
    tlh_hours: float
    atsl_minutes: float | None
    cume: int
    sessions: int


def listening_window(
    *,
    station: Station,
    start: dt.datetime,
    end: dt.datetime,
    encoder: StreamProvider | None = None,
) -> ListeningFigures:
    """TLH, ATSL and cume of the counting sessions over [start, end) (one encoder, or the
    station: cume counts a listener once across its encoders)."""
    totals = _listening_per_bucket(
        encoder_ids=_encoder_ids(station=station, encoder=encoder),
        buckets=[(start, end)],
        per_encoder=False,
    ).get((0, 0))
    if totals is None:
        return ListeningFigures(tlh_hours=0.0, atsl_minutes=None, cume=0, sessions=0)
    tlh_hours = totals.seconds / 3600
    return ListeningFigures(
        tlh_hours=tlh_hours,
        atsl_minutes=tlh_hours * 60 / totals.sessions if totals.sessions else None,
        cume=totals.cume,
        sessions=totals.sessions,
    )


# ---------------------------------------------------------------------------------------
# Uptime


@dataclass(frozen=True)
class EncoderUptime:
    encoder: str  # mount or sid
    uptime_pct: float | None  # observed time with the source up / observed time × 100
    disconnections: int  # up → down changes in the window
    downtime_seconds: float  # from each disconnection to the next up, inside the window
    observed_seconds: float


def _state_changes(
    *, encoder_id: int, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, bool]]:
    """(taken_at, source_up) of the snapshots in [start, end) whose state differs from the
    snapshot before them (the first one of the window included)."""
    rows = (
        ListenerSnapshot.objects.filter(
            encoder_id=encoder_id, taken_at__gte=start, taken_at__lt=end
        )
        .order_by("taken_at")
        .values_list("taken_at", "source_up")
    )
    sql, params = rows.query.sql_with_params()
    wrapped = f"""
        SELECT taken_at, source_up FROM (
            SELECT taken_at, source_up,
                   LAG(source_up) OVER (ORDER BY taken_at) AS previous_up
            FROM ({sql}) AS window_rows
        ) AS marked
        WHERE previous_up IS NULL OR previous_up <> source_up
        ORDER BY taken_at
    """
    with connection.cursor() as cursor:
        cursor.execute(wrapped, params)
        return [(_aware(taken_at), bool(up)) for taken_at, up in cursor.fetchall()]


def _aware(value) -> dt.datetime:
    """A datetime read by raw SQL: SQLite hands back naive UTC text."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def _uptime_of(
    *, encoder: StreamProvider, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> EncoderUptime:
    end = min(end, max(start, now))
    held = _held_totals(encoder_ids=[encoder.pk], per_round=False, buckets=[(start, end)]).get(
        (0, encoder.pk)
    )
    changes = _state_changes(encoder_id=encoder.pk, start=start, end=end)
    before = (
        ListenerSnapshot.objects.filter(encoder_id=encoder.pk, taken_at__lt=start)
        .order_by("-taken_at")
        .values_list("source_up", flat=True)
        .first()
    )
    disconnections = 0
    downtime = 0.0
    down_since: dt.datetime | None = None
    if (
        before is False
        and ListenerSnapshot.objects.filter(
            encoder_id=encoder.pk, taken_at__lt=start, source_up=True
        ).exists()
    ):
        down_since = start  # a disconnection before the window, still down at its start
    previous_up = before
    for taken_at, up in changes:
        if up == previous_up:
            continue
        if not up and previous_up:
            disconnections += 1
            down_since = taken_at
        elif up and down_since is not None:
            downtime += (taken_at - down_since).total_seconds()
            down_since = None
        previous_up = up
    if down_since is not None:
        downtime += (end - down_since).total_seconds()
    observed = held.observed_seconds if held else 0.0
    return EncoderUptime(
        encoder=encoder.external_id,
        uptime_pct=held.up_seconds / observed * 100 if held and observed > 0 else None,
        disconnections=disconnections,
        downtime_seconds=max(downtime, 0.0),
        observed_seconds=observed,
    )


def uptime(
    *, station: Station, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> list[EncoderUptime]:
    """Per encoder over [start, end): uptime %, disconnections and their downtime."""
    now = now or timezone.now()
    return [
        _uptime_of(encoder=encoder, start=start, end=end, now=now)
        for encoder in _encoders(station=station)
    ]
