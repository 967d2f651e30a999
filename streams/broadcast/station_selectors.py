"""Station reads of the staff pages and API (SPEC §9.4): which stations a user may see,
the event log, health snapshots, alerts, the listener graph and the overview's KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from streams.models import StreamProvider
from streams.selectors import streams_visible_to

from .models import ENCODER_PROVIDERS, Alert, BroadcastLogEntry, HealthSnapshot, Play, Station
from .selectors import (
    listeners_points,
    listeners_window,
    listening_window,
    local_day_bounds,
    local_today,
    station_timezone,
)

LISTENER_PERIODS = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
}
# The graph of a longer period keeps the largest count per bucket of this many seconds,
# so 7 days of 30 s polls stay a drawable ~700 points.
LISTENER_POINT_SECONDS = {"1h": 0, "24h": 120, "7d": 900}

LOG_COLUMNS = [
    "id",
    "timestamp",
    "level",
    "category",
    "event",
    "message",
    "metadata",
    "deck",
    "song_id",
    "encoder",
]
HEALTH_COLUMNS = [
    "taken_at",
    "cpu_pct",
    "memory_mb",
    "ring_buffer_fill_deck_a",
    "ring_buffer_fill_deck_b",
    "decoder_latency_ms",
    "stream_connected",
    "db_connected",
    "active_encoders",
    "disk_free_mb",
]
ALERT_COLUMNS = ["kind", "subject", "opened_at", "resolved_at", "message"]


def stations_visible_to(*, user) -> QuerySet[Station]:
    """Stations of the streams the user may see (superusers: all; other staff: their
    organizers')."""
    return (
        Station.objects.filter(stream__in=streams_visible_to(user=user))
        .select_related("stream", "stream__organizer")
        .order_by("stream__title", "id")
    )


def station_visible_to(*, user, key: str) -> Station | None:
    return stations_visible_to(user=user).filter(stream__key=key).first()


def station_encoders(*, station: Station) -> list[StreamProvider]:
    return list(
        StreamProvider.objects.filter(
            stream_id=station.stream_id, provider__in=ENCODER_PROVIDERS
        ).order_by("id")
    )


def station_encoder(*, station: Station, mount: str) -> StreamProvider | None:
    return next((e for e in station_encoders(station=station) if e.external_id == mount), None)


def _local(value: dt.datetime | None, *, station: Station) -> dt.datetime | None:
    return None if value is None else value.astimezone(station_timezone(station=station))


# ---------------------------------------------------------------------------------------
# Listeners graph


def listener_graph(
    *,
    station: Station,
    period: str,
    encoder: StreamProvider | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Points (oldest first), peak, time-weighted average and now over the last period."""
    now = now or timezone.now()
    start = now - LISTENER_PERIODS[period]
    end = now + dt.timedelta(seconds=1)
    points = listeners_points(station=station, start=start, end=end, encoder=encoder)
    bucket = LISTENER_POINT_SECONDS[period]
    if bucket:
        kept: dict[int, tuple[dt.datetime, int]] = {}
        for at, value in points:
            key = int(at.timestamp()) // bucket
            if key not in kept or value > kept[key][1]:
                kept[key] = (at, value)
        points = sorted(kept.values())
    figures = listeners_window(station=station, start=start, end=end, encoder=encoder, now=now)
    return {
        "period": period,
        "encoder": encoder.external_id if encoder else None,
        "points": [
            {"timestamp": _local(at, station=station), "listeners": int(value)}
            for at, value in points
        ],
        "peak": figures.peak,
        "average": figures.average,
        "now": figures.now,
    }


# ---------------------------------------------------------------------------------------
# Event log


def log_entries(
    *,
    station: Station,
    level: str | None = None,
    category: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    search: str | None = None,
) -> QuerySet[BroadcastLogEntry]:
    entries = BroadcastLogEntry.objects.filter(station=station)
    if level:
        entries = entries.filter(level=level)
    if category:
        entries = entries.filter(category=category)
    if start is not None:
        entries = entries.filter(timestamp__gte=start)
    if end is not None:
        entries = entries.filter(timestamp__lt=end)
    if search:
        entries = entries.filter(Q(event__icontains=search) | Q(message__icontains=search))
    return entries.order_by("-timestamp", "-id")


def log_page(*, station: Station, limit: int = 50, offset: int = 0, **filters) -> dict[str, Any]:
    """Newest first; `total` counts every entry matching the filters."""
    entries = log_entries(station=station, **filters)
    return {
        "events": [
            log_entry_row(entry, station=station) for entry in entries[offset : offset + limit]
        ],
        "total": entries.count(),
        "limit": limit,
        "offset": offset,
    }


def log_entries_delete(*, station: Station, before: dt.datetime) -> int:
    """Delete the station's log entries older than `before` (the log's Clear)."""
    deleted, _ = BroadcastLogEntry.objects.filter(station=station, timestamp__lt=before).delete()
    return deleted


def log_entry_row(entry: BroadcastLogEntry, *, station: Station) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "timestamp": _local(entry.timestamp, station=station),
        "level": entry.level,
        "category": entry.category,
        "event": entry.event,
        "message": entry.message,
        "metadata": entry.metadata,
        "deck": entry.deck or None,
        "song_id": entry.song_external_id or None,
        "encoder": entry.encoder or None,
    }


# ---------------------------------------------------------------------------------------
# Health and alerts


def health_row(snapshot: HealthSnapshot | None, *, station: Station) -> dict[str, Any]:
    if snapshot is None:
        return dict.fromkeys(HEALTH_COLUMNS)
    row = {column: getattr(snapshot, column) for column in HEALTH_COLUMNS}
    row["taken_at"] = _local(snapshot.taken_at, station=station)
    return row


def health_latest(*, station: Station) -> dict[str, Any]:
    """The latest snapshot's fields (every one null when the station sent none)."""
    latest = HealthSnapshot.objects.filter(station=station).order_by("-taken_at", "-id").first()
    return health_row(latest, station=station)


def health_history(
    *, station: Station, minutes: int, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    now = now or timezone.now()
    snapshots = HealthSnapshot.objects.filter(
        station=station, taken_at__gte=now - dt.timedelta(minutes=minutes), taken_at__lte=now
    ).order_by("taken_at", "id")
    return [health_row(s, station=station) for s in snapshots]


def alerts(*, station: Station, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    rows = Alert.objects.filter(station=station)
    if open_only:
        rows = rows.filter(resolved_at__isnull=True)
    return [
        {
            "kind": a.kind,
            "subject": a.subject,
            "opened_at": _local(a.opened_at, station=station),
            "resolved_at": _local(a.resolved_at, station=station),
            "message": a.message,
        }
        for a in rows.order_by("-opened_at", "-id")[:limit]
    ]


# ---------------------------------------------------------------------------------------
# Overview


def station_overview(*, station: Station, now: dt.datetime | None = None) -> dict[str, Any]:
    """Today's KPIs (local day so far): listeners now, peak and average, TLH, plays,
    requests and open alerts."""
    now = now or timezone.now()
    today = local_today(station=station, now=now)
    start, end = local_day_bounds(station=station, day=today)
    listeners = listeners_window(station=station, start=start, end=end, now=now)
    listening = listening_window(station=station, start=start, end=min(end, now))
    return {
        "station": station_row(station),
        "date": today,
        "listeners_now": listeners.now,
        "peak_today": listeners.peak,
        "average_today": listeners.average,
        "tlh_today": listening.tlh_hours,
        "plays_today": Play.objects.filter(
            station=station, started_at__gte=start, started_at__lt=end
        ).count(),
        "requests_today": station.requests.filter(
            requested_at__gte=start, requested_at__lt=end
        ).count(),
        "open_alerts": Alert.objects.filter(station=station, resolved_at__isnull=True).count(),
        "encoders": [e.external_id for e in station_encoders(station=station)],
    }


def station_row(station: Station) -> dict[str, Any]:
    return {
        "key": station.key,
        "title": station.stream.title,
        "organizer": station.stream.organizer.slug if station.stream.organizer_id else None,
        "timezone": station.timezone,
    }
