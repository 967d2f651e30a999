"""Song request figures of a station (SPEC §9.3), read from the raw `SongRequest` rows.

Every request is in exactly one of five states: `pending`, `approved` (not played yet),
`denied`, `played`, or `expired` — a pending or approved request not played within
BROADCAST_REQUEST_EXPIRY_HOURS of requested_at. The five counts add up to `total`; the
shares of approved (played included), denied and expired are over the non-pending ones
and add up to 1.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import ExtractHour
from django.utils import timezone

from .models import Song, SongRequest, Station
from .selectors import local_period_start, station_timezone

TOP_COUNT = 10
REQUEST_LOG_COLUMNS = [
    "requested_at",
    "request_id",
    "song_id",
    "title",
    "artist",
    "status",
    "decided_at",
    "played_at",
    "requester",
]


def _expiry_cutoff(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(hours=settings.BROADCAST_REQUEST_EXPIRY_HOURS)


def _expired(now: dt.datetime) -> Q:
    return Q(
        status__in=[SongRequest.Status.PENDING, SongRequest.Status.APPROVED],
        requested_at__lt=_expiry_cutoff(now),
    )


def requests_in(
    *, station: Station, start: dt.datetime | None, end: dt.datetime | None = None
) -> QuerySet[SongRequest]:
    requests = SongRequest.objects.filter(station=station)
    if start is not None:
        requests = requests.filter(requested_at__gte=start)
    if end is not None:
        requests = requests.filter(requested_at__lt=end)
    return requests


def request_state(*, request: SongRequest, now: dt.datetime) -> str:
    """The status a request reads as (`expired` for one waiting too long)."""
    waiting = request.status in (SongRequest.Status.PENDING, SongRequest.Status.APPROVED)
    return "expired" if waiting and request.requested_at < _expiry_cutoff(now) else request.status


def request_figures(
    *, station: Station, period: str = "30d", now: dt.datetime | None = None
) -> dict[str, Any]:
    now = now or timezone.now()
    requests = requests_in(
        station=station, start=local_period_start(station=station, period=period, now=now)
    )
    per_hour = _counts_by_hour(requests, station=station, now=now)
    counts = {
        state: sum(hour[state] for hour in per_hour.values())
        for state in ("total", "pending", "approved", "denied", "played", "expired")
    }
    decided = counts["total"] - counts["pending"]
    shares = {
        "approved": (counts["approved"] + counts["played"]) / decided if decided else None,
        "denied": counts["denied"] / decided if decided else None,
        "expired": counts["expired"] / decided if decided else None,
    }
    return {
        "period": period,
        **counts,
        "shares": shares,
        "response_seconds": _response_seconds(requests),
        "by_hour": [
            {"hour": hour, "count": per_hour[hour]["total"] if hour in per_hour else 0}
            for hour in range(24)
        ],
        "top_songs": _top_songs(requests),
        "top_requesters": _top_requesters(requests),
    }


def _counts_by_hour(
    requests: QuerySet[SongRequest], *, station: Station, now: dt.datetime
) -> dict[int, dict[str, int]]:
    """Per local hour of requested_at: the requests in each state (one pass over them)."""
    expired = _expired(now)
    status = SongRequest.Status
    rows = (
        requests.annotate(
            hour=ExtractHour("requested_at", tzinfo=station_timezone(station=station))
        )
        .values("hour")
        .annotate(
            total=Count("id"),
            pending=Count("id", filter=Q(status=status.PENDING) & ~expired),
            approved=Count("id", filter=Q(status=status.APPROVED) & ~expired),
            denied=Count("id", filter=Q(status=status.DENIED)),
            played=Count("id", filter=Q(status=status.PLAYED)),
            expired=Count("id", filter=expired),
        )
        .order_by()
    )
    return {row.pop("hour"): row for row in rows}


def _response_seconds(requests: QuerySet[SongRequest]) -> dict[str, float | None]:
    """played_at − requested_at over played requests: median and mean, in seconds. The
    difference is taken in the database (an interval, not two timestamps to convert)."""
    seconds = [
        wait.total_seconds()
        for wait in requests.filter(status=SongRequest.Status.PLAYED, played_at__isnull=False)
        .annotate(
            wait=ExpressionWrapper(F("played_at") - F("requested_at"), output_field=DurationField())
        )
        .order_by()
        .values_list("wait", flat=True)
    ]
    if not seconds:
        return {"median": None, "mean": None}
    return {"median": float(statistics.median(seconds)), "mean": statistics.fmean(seconds)}


def _top_songs(requests: QuerySet[SongRequest]) -> list[dict[str, Any]]:
    """Most requested songs, ties by title then song id. Counted per song id first and
    joined to the songs after: grouping the requests by two text columns costs more."""
    per_song = (
        requests.filter(song__isnull=False).values("song_id").annotate(count=Count("id")).order_by()
    )
    inner, params = per_song.query.sql_with_params()
    sql = f"""
        SELECT s.external_id, s.title, c.count
        FROM ({inner}) AS c JOIN {Song._meta.db_table} AS s ON s.id = c.song_id
        ORDER BY c.count DESC, s.title, s.external_id
        LIMIT {TOP_COUNT}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [{"song_id": song_id, "title": title, "count": count} for song_id, title, count in rows]


def _top_requesters(requests: QuerySet[SongRequest]) -> list[dict[str, Any]]:
    rows = (
        requests.exclude(requester="")
        .values("requester")
        .annotate(count=Count("id"))
        .order_by("-count", "requester")[:TOP_COUNT]
    )
    return [{"requester": row["requester"], "count": row["count"]} for row in rows]


def request_log(
    *, station: Station, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Every request of [start, end), oldest first, with the state it reads as."""
    now = now or timezone.now()
    zone = station_timezone(station=station)

    def local(value):
        return None if value is None else value.astimezone(zone)

    return [
        {
            "requested_at": local(r.requested_at),
            "request_id": r.external_id,
            "song_id": r.song.external_id if r.song else None,
            "title": r.song.title if r.song else "",
            "artist": r.song.artist if r.song else "",
            "status": request_state(request=r, now=now),
            "decided_at": local(r.decided_at),
            "played_at": local(r.played_at),
            "requester": r.requester,
        }
        for r in requests_in(station=station, start=start, end=end)
        .select_related("song")
        .order_by("requested_at", "id")
    ]
