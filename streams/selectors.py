"""Reads of the playback side: stream info for players and stats for staff."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, FloatField, Max, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Floor, Least, TruncDate

from echonest_analytics.days import days_bounds

from .models import (
    BunnyVideoStats,
    Device,
    Organizer,
    Stream,
    StreamProvider,
    StreamStats,
    ViewerSession,
)
from .stream_figures import (
    StreamFigures,
    median_and_percentile_sql,
    startup_ms_rounded,
    stream_figures,
    top_countries,
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

# The video quality figures of SPEC §6.5, in the order the rows and pages show them; the
# CSVs add them after §5.5's columns, so a sheet reading those by position still works.
VIDEO_QUALITY_COLUMNS = [
    "startup_time_median_ms",
    "startup_time_p95_ms",
    "exits_before_start",
    "playback_failure_rate",
    "rebuffer_frequency",
]
STATS_COLUMNS += VIDEO_QUALITY_COLUMNS


def streams_visible_to(*, user, organizer_slug: str | None = None) -> QuerySet[Stream]:
    """Superusers see every stream; other staff only their organizers' streams."""
    streams = Stream.objects.select_related("organizer")
    if not user.is_superuser:
        streams = streams.filter(organizer__members=user)
    if organizer_slug:
        streams = streams.filter(organizer__slug=organizer_slug)
    return streams.order_by("title", "id")


@dataclass
class _RangeViewers:
    unique: int = 0
    countries: list[tuple[str, int]] = field(default_factory=list)
    devices: dict[str, int] = field(default_factory=dict)
    startup_median_ms: float | None = None
    startup_p95_ms: float | None = None


def _range_viewers(
    *, stream_ids: list[int], date_from: date, date_to: date, per_stream: bool
) -> dict[int | None, _RangeViewers]:
    """Unique viewers over [date_from, date_to], per stream (`per_stream`) or across all
    of them (under the key None), with the unique viewers per country and per device.

    These come from ViewerSession, not from StreamStats: a row of StreamStats holds a
    day's unique viewers, and a client seen on several days of the range would count
    once per day in their sum, while SPEC §6.2 counts unique viewers distinct over the
    whole range. So the range read counts distinct clients over the same sessions the
    aggregator counted each day from, by the same rules (bots never count, a session
    counts on the day it starts): over a single day, once the aggregator has run, it is
    that day's stored unique_viewers.
    Every other part of the range figures is a sum of StreamStats rows (`_STATS_SUMS`).
    """
    start, end = days_bounds(date_from, date_to)
    sessions = ViewerSession.objects.filter(
        stream_id__in=stream_ids, started_at__gte=start, started_at__lt=end
    ).exclude(device=Device.BOT)
    distinct_clients = Count("client_id", distinct=True)
    group = ["stream_id"] if per_stream else []
    viewers: dict[int | None, _RangeViewers] = defaultdict(_RangeViewers)
    if per_stream:
        for row in sessions.values("stream_id").annotate(n=distinct_clients):
            viewers[row["stream_id"]].unique = row["n"]
    else:
        viewers[None].unique = sessions.aggregate(n=distinct_clients)["n"]
    for row in sessions.exclude(country="").values(*group, "country").annotate(n=distinct_clients):
        viewers[row.get("stream_id")].countries.append((row["country"], row["n"]))
    for row in sessions.values(*group, "device").annotate(n=distinct_clients):
        viewers[row.get("stream_id")].devices[row["device"]] = row["n"]
    # Startup percentiles do not combine from days: computed over the range's sessions,
    # by the same definition the aggregator uses for one day.
    try:
        source, params = (
            sessions.filter(startup_ms__isnull=False)
            .values("stream_id", "startup_ms")
            .query.sql_with_params()
        )
    except EmptyResultSet:  # no streams to look at
        return viewers
    with connection.cursor() as cursor:
        cursor.execute(
            median_and_percentile_sql(
                source=source, group=["stream_id"] if per_stream else [], value="startup_ms"
            ),
            params,
        )
        for *key, median, upper, _n in cursor.fetchall():
            if median is None:
                continue
            target = viewers[key[0] if per_stream else None]
            target.startup_median_ms, target.startup_p95_ms = float(median), float(upper)
    return viewers


def _figures(stats: dict, viewers: _RangeViewers) -> dict[str, Any]:
    """A range's figures: StreamStats parts summed over its days, then derived."""
    sessions = stats.get("sessions") or 0
    figures = stream_figures(
        sessions=sessions,
        unique_viewers=viewers.unique,
        # Each day's total already follows the Bunny rule; the range's is their sum.
        total_watch_seconds=stats.get("total") or 0.0,
        tracked_watch_seconds=stats.get("tracked") or 0.0,
        buffer_seconds=stats.get("buffer") or 0.0,
        error_sessions=stats.get("errors") or 0,
        fatal_error_sessions=stats.get("fatal") or 0,
        rebuffer_count=stats.get("rebuffers") or 0,
    ).rounded()
    return {
        "unique_viewers": viewers.unique,
        "sessions": sessions,
        "total_watch_seconds": figures["total_watch_seconds"],
        "avg_watch_seconds": figures["avg_watch_seconds"],
        "peak_concurrent_viewers": stats.get("peak") or 0,
        "buffer_ratio": figures["buffer_ratio"],
        "error_rate": figures["error_rate"],
        "startup_time_median_ms": startup_ms_rounded(viewers.startup_median_ms),
        "startup_time_p95_ms": startup_ms_rounded(viewers.startup_p95_ms),
        "exits_before_start": stats.get("exits") or 0,
        "playback_failure_rate": figures["playback_failure_rate"],
        "rebuffer_frequency": figures["rebuffer_frequency"],
        "top_countries": top_countries(viewers.countries),
        "device_breakdown": dict(sorted(viewers.devices.items())),
        "last_calculated_at": stats.get("calculated"),
    }


_STATS_SUMS = {
    "sessions": Sum("sessions"),
    "total": Sum("total_watch_seconds"),
    "tracked": Sum("tracked_watch_seconds"),
    "buffer": Sum("buffer_seconds"),
    "errors": Sum("error_sessions"),
    "fatal": Sum("fatal_error_sessions"),
    "exits": Sum("exits_before_start"),
    "rebuffers": Sum("rebuffer_count"),
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
    viewers = _range_viewers(stream_ids=ids, date_from=date_from, date_to=date_to, per_stream=True)
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
                **_figures(stats.get(stream.id, {}), viewers.get(stream.id, _RangeViewers())),
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
    viewers = _range_viewers(stream_ids=ids, date_from=date_from, date_to=date_to, per_stream=False)
    return {
        "streams": len(ids),
        "events": stats.get("events") or 0,
        **_figures(stats, viewers[None]),
    }


def stream_stats_daily_totals(
    *, user, date_from: date, date_to: date, organizer_slug: str | None = None
) -> list[dict[str, Any]]:
    """Per UTC day of the range, oldest first, over all visible streams together (the
    dashboard's time series): unique viewers distinct across the streams that day, the
    watch time summed, and the peak as the summary counts it (the highest stream's)."""
    ids = list(
        streams_visible_to(user=user, organizer_slug=organizer_slug).values_list("id", flat=True)
    )
    stored = {
        row["day"]: row
        for row in StreamStats.objects.filter(stream_id__in=ids, day__range=(date_from, date_to))
        .values("day")
        .annotate(total=Sum("total_watch_seconds"), peak=Max("peak_concurrent_viewers"))
    }
    start, end = days_bounds(date_from, date_to)
    viewers = {
        row["day"]: row["n"]
        for row in ViewerSession.objects.filter(
            stream_id__in=ids, started_at__gte=start, started_at__lt=end
        )
        .exclude(device=Device.BOT)
        .annotate(day=TruncDate("started_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("client_id", distinct=True))
    }
    rows = []
    for offset in range((date_to - date_from).days + 1):
        day = date_from + timedelta(days=offset)
        row = stored.get(day, {})
        rows.append(
            {
                "day": day,
                "unique_viewers": viewers.get(day, 0),
                "total_watch_seconds": round(row.get("total") or 0.0, 3),
                "peak_concurrent_viewers": row.get("peak") or 0,
            }
        )
    return rows


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
    *VIDEO_QUALITY_COLUMNS,
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
        figures = StreamFigures(
            total_watch_seconds=row.total_watch_seconds if row else 0.0,
            avg_watch_seconds=row.avg_watch_seconds if row else 0.0,
            buffer_ratio=row.buffer_ratio if row else 0.0,
            error_rate=row.error_rate if row else 0.0,
            playback_failure_rate=row.playback_failure_rate if row else 0.0,
            rebuffer_frequency=row.rebuffer_frequency if row else 0.0,
        ).rounded()
        rows.append(
            {
                "day": day,
                "unique_viewers": row.unique_viewers if row else 0,
                "sessions": row.sessions if row else 0,
                "total_watch_seconds": figures["total_watch_seconds"],
                "avg_watch_seconds": figures["avg_watch_seconds"],
                "peak_concurrent_viewers": row.peak_concurrent_viewers if row else 0,
                "buffer_ratio": figures["buffer_ratio"],
                "error_rate": figures["error_rate"],
                "startup_time_median_ms": startup_ms_rounded(
                    row.startup_time_median_ms if row else None
                ),
                "startup_time_p95_ms": startup_ms_rounded(row.startup_time_p95_ms if row else None),
                "exits_before_start": row.exits_before_start if row else 0,
                "playback_failure_rate": figures["playback_failure_rate"],
                "rebuffer_frequency": figures["rebuffer_frequency"],
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


def stream_range_totals(*, user, key: str, date_from: date, date_to: date) -> dict[str, Any] | None:
    """One visible stream's figures over the range (its list row), without the days: what
    the stream page compares its range with."""
    stream = streams_visible_to(user=user).filter(key=key).prefetch_related("providers").first()
    if stream is None:
        return None
    (totals,) = _stream_rows(streams=[stream], date_from=date_from, date_to=date_to)
    return totals


# --- Audience retention (SPEC §6.5) -----------------------------------------------------

AUDIENCE_COLUMNS = ["percent", "share"]
# Provider config keys that may hold the video's length in seconds (`length` is the field
# of Bunny Stream's video object).
_PROVIDER_DURATION_KEYS = ("length", "duration")


def provider_video_duration(*, stream: Stream) -> float | None:
    """The video's length in seconds as its providers know it (primary first), or None."""
    providers = sorted(stream.providers.all(), key=lambda p: (not p.is_primary, p.id))
    for provider in providers:
        for key in _PROVIDER_DURATION_KEYS:
            value = (provider.config or {}).get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                if math.isfinite(value):
                    return float(value)
    return None


def stream_audience_retention(*, user, key: str, day: date) -> dict[str, Any] | None:
    """For each percent 0…100 of the video, the share of `day`'s sessions whose furthest
    videoTime reached that percent of its duration; None when `user` may not see the
    stream.

    The sessions are the day's (counted on the day they start, bots never count, as for
    `sessions`). The duration is the provider's (`provider_video_duration`), else the
    largest `extra.duration` the day's sessions reported. A session reached percent p
    when furthest videoTime ≥ p % of the duration (watching to the end reaches 100, a
    session with no videoTime reaches 0; a millisecond short of a mark still reaches it).
    No known duration (a live stream): no points.
    """
    stream = streams_visible_to(user=user).filter(key=key).prefetch_related("providers").first()
    if stream is None:
        return None
    start, end = days_bounds(day, day)
    sessions = ViewerSession.objects.filter(
        stream=stream, started_at__gte=start, started_at__lt=end
    ).exclude(device=Device.BOT)
    totals = sessions.aggregate(n=Count("id"), reported=Max("video_duration"))
    duration = provider_video_duration(stream=stream) or totals["reported"]
    count = totals["n"] or 0
    base = {
        "stream_id": stream.key,
        "day": day,
        "sessions": count,
        "duration_seconds": round(duration, 3) if duration else None,
    }
    if not duration:
        return {**base, "points": []}
    # A millisecond short of a mark still reaches it (players stop just before the end).
    position = Coalesce("furthest_video_time", Value(0.0)) + Value(0.001)
    percent = Least(
        Value(100.0),
        Floor(position * Value(100.0) / Value(float(duration))),
        output_field=FloatField(),
    )
    reached_by_percent = {
        int(p): n
        for p, n in sessions.annotate(percent=percent)
        .values("percent")
        .annotate(n=Count("id"))
        .values_list("percent", "n")
    }
    points, still = [], 0
    for percent in range(100, -1, -1):
        still += reached_by_percent.get(percent, 0)
        points.append({"percent": percent, "share": round(still / count, 3) if count else 0.0})
    return {**base, "points": points[::-1]}
