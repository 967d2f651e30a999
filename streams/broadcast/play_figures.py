"""Play figures of a station (SPEC §9.3): top songs, genres, the hourly heatmap and a
song's play history.

Top songs, genres and the heatmap read the precomputed `PlayStatsCache` and
`HourlyPlayCount` (written by `play_stats.broadcast_stats_refresh`); a song's plays read
the raw `Play` rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Max, Sum

from .models import HourlyPlayCount, Play, PlayStatsCache, Song, Station
from .selectors import local_dates, local_day_bounds, station_timezone

UNKNOWN_GENRE = "Unknown"

TOP_SONG_COLUMNS = [
    "song_id",
    "title",
    "artist",
    "genre",
    "play_count",
    "total_played_ms",
    "skip_count",
    "crossfade_count",
    "avg_duration_ms",
    "avg_played_ms",
    "last_played_at",
]
HEATMAP_COLUMNS = ["date", "hour", "utc_offset", "play_count", "unique_songs"]
SONG_PLAY_COLUMNS = ["started_at", "played_ms", "crossfade", "listeners_at_start"]


def _local_iso(value: dt.datetime | None, *, station: Station) -> dt.datetime | None:
    return None if value is None else value.astimezone(station_timezone(station=station))


def top_songs(*, station: Station, period: str, limit: int = 50) -> list[dict[str, Any]]:
    """Songs by play_count desc, then total_played_ms desc, then title (then the song id,
    so equal rows keep one order)."""
    rows = (
        PlayStatsCache.objects.filter(station=station, period=period)
        .select_related("song")
        .order_by("-play_count", "-total_played_ms", "song__title", "song__external_id")[:limit]
    )
    return [
        {
            "song_id": row.song.external_id,
            "title": row.song.title,
            "artist": row.song.artist,
            "genre": row.song.genre or UNKNOWN_GENRE,
            "play_count": row.play_count,
            "total_played_ms": row.total_played_ms,
            "skip_count": row.skip_count,
            "crossfade_count": row.crossfade_count,
            # A song has one duration; the mean over its plays is that duration.
            "avg_duration_ms": row.song.duration_ms,
            "avg_played_ms": round(row.total_played_ms / row.measured_count)
            if row.measured_count
            else None,
            "last_played_at": _local_iso(row.last_played_at, station=station),
        }
        for row in rows
    ]


def stats_refreshed_at(*, station: Station) -> dt.datetime | None:
    latest = PlayStatsCache.objects.filter(station=station).aggregate(at=Max("refreshed_at"))["at"]
    return _local_iso(latest, station=station)


def genre_breakdown(*, station: Station, period: str) -> list[dict[str, Any]]:
    """Plays per genre over the period, most played first; an empty genre is `Unknown`."""
    rows = (
        PlayStatsCache.objects.filter(station=station, period=period)
        .values("song__genre")
        .annotate(play_count=Sum("play_count"))
        .order_by()
    )
    totals: dict[str, int] = {}
    for row in rows:
        name = row["song__genre"] or UNKNOWN_GENRE
        totals[name] = totals.get(name, 0) + row["play_count"]
    return [
        {"genre": genre, "play_count": count}
        for genre, count in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    ]


def _offset_text(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_hours(*, station: Station, day: dt.date) -> list[tuple[int, int, str]]:
    """(hour, fold, utc_offset) of every hour of a local day, in time order: 24, or 23 on
    the day DST starts, or 25 on the day it ends (the repeated hour twice, fold 0 then 1,
    told apart by their UTC offsets)."""
    zone = station_timezone(station=station)
    start, end = local_day_bounds(station=station, day=day)
    hours: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    at = start
    while at < end:
        local = at.astimezone(zone)
        hours.append((local.hour, 1 if local.hour in seen else 0, _offset_text(local.utcoffset())))
        seen.add(local.hour)
        at += dt.timedelta(hours=1)
    return hours


def heatmap(*, station: Station, date_from: dt.date, date_to: dt.date) -> list[dict[str, Any]]:
    """One cell per local date and hour of the range, empty hours included (play_count 0)."""
    stored = {
        (row.date, row.hour, row.fold): row
        for row in HourlyPlayCount.objects.filter(
            station=station, date__gte=date_from, date__lte=date_to
        )
    }
    cells = []
    for day in local_dates(date_from=date_from, date_to=date_to):
        for hour, fold, offset in local_hours(station=station, day=day):
            row = stored.get((day, hour, fold))
            cells.append(
                {
                    "date": day,
                    "hour": hour,
                    "utc_offset": offset,
                    "play_count": row.play_count if row else 0,
                    "unique_songs": row.unique_songs if row else 0,
                }
            )
    return cells


def song_for(*, station: Station, song_id: str) -> Song | None:
    return Song.objects.filter(station=station, external_id=song_id).first()


def song_plays(*, station: Station, song: Song, limit: int = 100) -> list[dict[str, Any]]:
    """The song's plays, newest first, with the listeners at each track change."""
    plays = (
        Play.objects.filter(station=station, song=song)
        .order_by("-started_at", "-id")
        .values("started_at", "played_ms", "crossfade", "listeners_at_start")[:limit]
    )
    return [
        {**play, "started_at": _local_iso(play["started_at"], station=station)} for play in plays
    ]


def song_summary(*, song: Song) -> dict[str, Any]:
    return {
        "song_id": song.external_id,
        "title": song.title,
        "artist": song.artist,
        "album": song.album,
        "genre": song.genre or UNKNOWN_GENRE,
        "duration_ms": song.duration_ms,
    }
