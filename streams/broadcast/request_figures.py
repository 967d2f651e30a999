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
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import ExtractHour
from django.utils import timezone

from .models import SongRequest, Station
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
    expired = _expired(now)
    status = SongRequest.Status
    counts = requests.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status=status.PENDING) & ~expired),
        approved=Count("id", filter=Q(status=status.APPROVED) & ~expired),
        denied=Count("id", filter=Q(status=status.DENIED)),
        played=Count("id", filter=Q(status=status.PLAYED)),
        expired=Count("id", filter=expired),
    )
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
        "by_hour": _by_hour(requests, station=station),
        "top_songs": _top_songs(requests),
        "top_requesters": _top_requesters(requests),
    }


def _response_seconds(requests: QuerySet[SongRequest]) -> dict[str, float | None]:
    """played_at − requested_at over played requests: median and mean, in seconds."""
    seconds = [
        (played_at - requested_at).total_seconds()
        for requested_at, played_at in requests.filter(
            status=SongRequest.Status.PLAYED, played_at__isnull=False
        ).values_list("requested_at", "played_at")
    ]
    if not seconds:
        return {"median": None, "mean": None}
    return {"median": float(statistics.median(seconds)), "mean": statistics.fmean(seconds)}


def _by_hour(requests: QuerySet[SongRequest], *, station: Station) -> list[dict[str, int]]:
    counts = dict(
        requests.annotate(
            hour=ExtractHour("requested_at", tzinfo=station_timezone(station=station))
        )
        .values("hour")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("hour", "count")
    )
    return [{"hour": hour, "count": counts.get(hour, 0)} for hour in range(24)]


def _top_songs(requests: QuerySet[SongRequest]) -> list[dict[str, Any]]:
    rows = (
        requests.filter(song__isnull=False)
        .values("song__external_id", "song__title")
        .annotate(count=Count("id"))
        .order_by("-count", "song__title", "song__external_id")[:TOP_COUNT]
    )
    return [
        {"song_id": row["song__external_id"], "title": row["song__title"], "count": row["count"]}
        for row in rows
    ]


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
