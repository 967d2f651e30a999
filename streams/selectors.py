"""Reads of the playback side: stream info for players and stats for staff."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, QuerySet, Sum

from .aggregation import top_countries
from .models import (
    BunnyVideoStats,
    Device,
    Organizer,
    Stream,
    StreamProvider,
    StreamStats,
    ViewerSession,
)


def stream_info(*, key: str) -> dict[str, Any] | None:
    stream = Stream.objects.filter(key=key).prefetch_related("providers").first()
    if stream is None:
        return None
    providers = list(stream.providers.all())
    primary = next((p for p in providers if p.is_primary), providers[0] if providers else None)
    return {
        "streamId": stream.key,
        "title": stream.title,
        "status": stream.status,
        "kind": stream.kind,
        "providers": [
            {"provider": p.provider, "externalId": p.external_id, "config": p.config}
            for p in providers
        ],
        "preferredProvider": primary.provider if primary else None,
    }


# --- Staff stats over a date range (SPEC §5.5, §6.2) ------------------------------------

STATS_COLUMNS = [
    "stream_id",
    "title",
    "organizer",
    "provider",
    "unique_viewers",
    "sessions",
    "total_watch_seconds",
    "avg_watch_seconds",
    "peak_concurrent_viewers",
    "buffer_ratio",
    "error_rate",
    "top_countries",
    "device_breakdown",
    "bunny",
    "last_calculated_at",
]


def streams_visible_to(*, user, organizer_slug: str | None = None) -> QuerySet[Stream]:
    """Superusers see every stream; other staff only their organizers' streams."""
    streams = Stream.objects.select_related("organizer")
    if not user.is_superuser:
        streams = streams.filter(organizer__members=user)
    if organizer_slug:
        streams = streams.filter(organizer__slug=organizer_slug)
    return streams.order_by("title", "id")


def _day_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    return start, end


def _viewers(stream_ids: list[int], date_from: date, date_to: date):
    """Non-bot sessions that started in the range (viewers count on their start day)."""
    start, end = _day_bounds(date_from, date_to)
    return ViewerSession.objects.filter(
        stream_id__in=stream_ids, started_at__gte=start, started_at__lt=end
    ).exclude(device=Device.BOT)


def _figures(stats: dict, unique: int, countries, devices) -> dict[str, Any]:
    total = stats.get("total") or 0.0
    tracked = stats.get("tracked") or 0.0
    sessions = stats.get("sessions") or 0
    return {
        "unique_viewers": unique,
        "sessions": sessions,
        "total_watch_seconds": round(total, 3),
        "avg_watch_seconds": round(total / unique, 3) if unique else 0.0,
        "peak_concurrent_viewers": stats.get("peak") or 0,
        "buffer_ratio": round((stats.get("buffer") or 0.0) / tracked, 6) if tracked else 0.0,
        "error_rate": round((stats.get("errors") or 0) / sessions, 6) if sessions else 0.0,
        "top_countries": top_countries(countries),
        "device_breakdown": dict(sorted(devices.items())),
        "last_calculated_at": stats.get("calculated"),
    }


_STATS_SUMS = {
    "sessions": Sum("sessions"),
    "total": Sum("total_watch_seconds"),
    "tracked": Sum("tracked_watch_seconds"),
    "buffer": Sum("buffer_seconds"),
    "errors": Sum("error_sessions"),
    "events": Sum("event_count"),
    "peak": Max("peak_concurrent_viewers"),
    "calculated": Max("last_calculated_at"),
}


def stream_stats_list(
    *, user, date_from: date, date_to: date, organizer_slug: str | None = None
) -> list[dict[str, Any]]:
    """Per visible stream, its figures over [date_from, date_to] (UTC days)."""
    streams = list(
        streams_visible_to(user=user, organizer_slug=organizer_slug).prefetch_related("providers")
    )
    return _stream_rows(streams=streams, date_from=date_from, date_to=date_to)


def _stream_rows(*, streams: list[Stream], date_from: date, date_to: date) -> list[dict[str, Any]]:
    ids = [s.id for s in streams]
    stats = {
        row["stream_id"]: row
        for row in StreamStats.objects.filter(stream_id__in=ids, day__range=(date_from, date_to))
        .values("stream_id")
        .annotate(**_STATS_SUMS)
    }
    viewers = _viewers(ids, date_from, date_to)
    unique = dict(
        viewers.values("stream_id")
        .annotate(n=Count("client_id", distinct=True))
        .values_list("stream_id", "n")
    )
    countries: dict[int, list] = defaultdict(list)
    for stream_id, country, n in (
        viewers.exclude(country="")
        .values("stream_id", "country")
        .annotate(n=Count("client_id", distinct=True))
        .values_list("stream_id", "country", "n")
    ):
        countries[stream_id].append((country, n))
    devices: dict[int, dict] = defaultdict(dict)
    for stream_id, device, n in (
        viewers.values("stream_id", "device")
        .annotate(n=Count("client_id", distinct=True))
        .values_list("stream_id", "device", "n")
    ):
        devices[stream_id][device] = n
    bunny = bunny_figures(streams=streams, date_from=date_from, date_to=date_to)
    rows = []
    for stream in streams:
        providers = list(stream.providers.all())
        primary = next((p for p in providers if p.is_primary), providers[0] if providers else None)
        rows.append(
            {
                "stream_id": stream.key,
                "title": stream.title,
                "organizer": stream.organizer.slug,
                "provider": primary.provider if primary else None,
                **_figures(
                    stats.get(stream.id, {}),
                    unique.get(stream.id, 0),
                    countries.get(stream.id, []),
                    devices.get(stream.id, {}),
                ),
                "bunny": bunny.get(stream.id),
            }
        )
    return rows


def stream_stats_summary(
    *, user, date_from: date, date_to: date, organizer_slug: str | None = None
) -> dict[str, Any]:
    """The same figures over all visible streams together, plus `streams` and `events`.

    Unique viewers are distinct clients across every stream; the peak is the highest
    single-stream daily peak.
    """
    ids = list(
        streams_visible_to(user=user, organizer_slug=organizer_slug).values_list("id", flat=True)
    )
    stats = StreamStats.objects.filter(
        stream_id__in=ids, day__range=(date_from, date_to)
    ).aggregate(**_STATS_SUMS)
    viewers = _viewers(ids, date_from, date_to)
    unique = viewers.aggregate(n=Count("client_id", distinct=True))["n"]
    countries = list(
        viewers.exclude(country="")
        .values("country")
        .annotate(n=Count("client_id", distinct=True))
        .values_list("country", "n")
    )
    devices = dict(
        viewers.values("device")
        .annotate(n=Count("client_id", distinct=True))
        .values_list("device", "n")
    )
    return {
        "streams": len(ids),
        "events": stats.get("events") or 0,
        **_figures(stats, unique, countries, devices),
    }


def bunny_figures(*, streams: list[Stream], date_from: date, date_to: date) -> dict[int, dict]:
    """Bunny's own statistics per Bunny stream over the range (none for other streams)."""
    bunny = {
        p.stream_id: p
        for stream in streams
        for p in stream.providers.all()
        if p.provider == StreamProvider.Provider.BUNNY_STREAM
    }
    if not bunny:
        return {}
    rows: dict[str, list[BunnyVideoStats]] = defaultdict(list)
    for row in BunnyVideoStats.objects.filter(
        video_guid__in=[p.external_id for p in bunny.values()], day__range=(date_from, date_to)
    ).order_by("day"):
        rows[row.video_guid].append(row)
    figures = {}
    for stream_id, provider in bunny.items():
        days = rows.get(provider.external_id, [])
        countries: dict[str, float] = defaultdict(float)
        for day in days:
            for country, views in day.country_views.items():
                countries[country] += views
        figures[stream_id] = {
            "video_guid": provider.external_id,
            "views": sum(d.views for d in days),
            "watch_time_seconds": round(sum(d.watch_time_seconds for d in days), 3),
            "engagement_score": days[-1].engagement_score if days else None,
            "country_views": dict(sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))[:10]),
            "days": len(days),
            "fetched_at": max((d.fetched_at for d in days), default=None),
        }
    return figures


# --- The staff dashboard (SPEC §5.5): filters and the page per stream -------------------

DAILY_COLUMNS = [
    "day",
    "unique_viewers",
    "sessions",
    "total_watch_seconds",
    "avg_watch_seconds",
    "peak_concurrent_viewers",
    "buffer_ratio",
    "error_rate",
    "events",
    "top_countries",
    "device_breakdown",
]


def organizers_visible_to(*, user) -> QuerySet[Organizer]:
    """The organizers whose streams `user` may see (the dashboard's organizer filter)."""
    organizers = Organizer.objects.all()
    if not user.is_superuser:
        organizers = organizers.filter(members=user)
    return organizers.distinct().order_by("name", "slug")


def stream_daily_stats(*, stream: Stream, date_from: date, date_to: date) -> list[dict[str, Any]]:
    """One row per UTC day of [date_from, date_to], oldest first, from the precomputed
    StreamStats; a day nothing was recorded on is a row of zeros."""
    stored = {
        row.day: row
        for row in StreamStats.objects.filter(stream=stream, day__range=(date_from, date_to))
    }
    rows = []
    for offset in range((date_to - date_from).days + 1):
        day = date_from + timedelta(days=offset)
        row = stored.get(day)
        rows.append(
            {
                "day": day,
                "unique_viewers": row.unique_viewers if row else 0,
                "sessions": row.sessions if row else 0,
                "total_watch_seconds": round(row.total_watch_seconds, 3) if row else 0.0,
                "avg_watch_seconds": round(row.avg_watch_seconds, 3) if row else 0.0,
                "peak_concurrent_viewers": row.peak_concurrent_viewers if row else 0,
                "buffer_ratio": round(row.buffer_ratio, 6) if row else 0.0,
                "error_rate": round(row.error_rate, 6) if row else 0.0,
                "events": row.event_count if row else 0,
                "top_countries": row.top_countries if row else [],
                "device_breakdown": row.device_breakdown if row else {},
            }
        )
    return rows


def stream_stats_detail(*, user, key: str, date_from: date, date_to: date) -> dict[str, Any] | None:
    """One stream's range totals (the list row) and its daily rows, or None when `user`
    may not see a stream with this key (the organizer boundary)."""
    stream = streams_visible_to(user=user).filter(key=key).prefetch_related("providers").first()
    if stream is None:
        return None
    (totals,) = _stream_rows(streams=[stream], date_from=date_from, date_to=date_to)
    return {
        "stream": {
            "stream_id": stream.key,
            "title": stream.title,
            "organizer": stream.organizer.slug,
            "organizer_name": stream.organizer.name,
            "status": stream.status,
            "kind": stream.kind,
            "providers": [
                {"provider": p.provider, "external_id": p.external_id, "is_primary": p.is_primary}
                for p in stream.providers.all()
            ],
        },
        "totals": {k: v for k, v in totals.items() if k not in ("stream_id", "title", "organizer")},
        "days": stream_daily_stats(stream=stream, date_from=date_from, date_to=date_to),
    }
