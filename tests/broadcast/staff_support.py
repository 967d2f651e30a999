"""Shared test data of the broadcast staff figures, API, pages and reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from streams.broadcast.models import Play, Song, SongRequest, Station
from streams.models import Organizer, Stream, StreamProvider

T0 = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)


def make_station(
    key: str = "night-radio", tz: str = "Europe/Berlin", organizer: str = "wavelength"
) -> Station:
    org, _ = Organizer.objects.get_or_create(slug=organizer, defaults={"name": organizer.title()})
    stream = Stream.objects.create(
        key=key, title=key.replace("-", " ").title(), organizer=org, kind="audio"
    )
    return Station.objects.create(stream=stream, timezone=tz, plays_from_poller=False)


def make_encoder(station: Station, mount: str = "/live.mp3") -> StreamProvider:
    return StreamProvider.objects.create(
        stream=station.stream, provider="icecast", external_id=mount, config={"url": "http://x"}
    )


def song(
    station: Station,
    external_id: str,
    title: str,
    *,
    genre: str = "",
    duration_ms=200_000,
    artist="A",
):
    return Song.objects.create(
        station=station,
        external_id=external_id,
        title=title,
        artist=artist,
        genre=genre,
        duration_ms=duration_ms,
    )


def play(
    station: Station, played: Song, at: datetime, played_ms: int | None = 180_000, **extra
) -> Play:
    return Play.objects.create(
        station=station, song=played, started_at=at, played_ms=played_ms, source="push", **extra
    )


def request(
    station: Station,
    external_id: str,
    at: datetime,
    status: str,
    *,
    played_at=None,
    song=None,
    requester="",
):
    return SongRequest.objects.create(
        station=station,
        external_id=external_id,
        requested_at=at,
        status=status,
        played_at=played_at,
        song=song,
        requester=requester,
    )


def staff_user(
    username: str = "staff", *, superuser: bool = False, organizer: str | None = "wavelength"
):
    user = get_user_model().objects.create_user(
        username, password="pw", is_staff=True, is_superuser=superuser
    )
    if organizer:
        org, _ = Organizer.objects.get_or_create(
            slug=organizer, defaults={"name": organizer.title()}
        )
        org.members.add(user)
    return user


def minutes(n: float, base: datetime = T0) -> datetime:
    return base + timedelta(minutes=n)
