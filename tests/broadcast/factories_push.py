"""Test data for the push API: an audio station with its ingest key, and push items as the
playout sends them (SPEC §9.2)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from streams.broadcast.models import (
    Alert,
    BroadcastBatch,
    BroadcastLogEntry,
    HealthSnapshot,
    Play,
    Song,
    SongRequest,
    Station,
)
from streams.broadcast.secrets import station_ingest_key_rotate
from streams.models import Organizer, Stream

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

PUSH_TABLES = (BroadcastBatch, BroadcastLogEntry, Play, Song, SongRequest, HealthSnapshot, Alert)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def station_with_key(key: str = "nightjar-fm", title: str = "Nightjar FM") -> tuple[Station, str]:
    organizer, _ = Organizer.objects.get_or_create(slug="nightjar", defaults={"name": "Nightjar"})
    stream = Stream.objects.create(
        key=key, title=title, organizer=organizer, kind=Stream.Kind.AUDIO
    )
    station = Station.objects.create(stream=stream)
    return station, station_ingest_key_rotate(station=station)


def log_item(**fields) -> dict:
    return {
        "ts": at(0),
        "level": "info",
        "category": "audio",
        "event": "track_loaded",
        "message": "Deck A: Nightcall",
        **fields,
    }


def play_item(**fields) -> dict:
    return {
        "ts": at(0),
        "songId": 4711,
        "title": "Nightcall",
        "artist": "Kavinsky",
        "playedMs": 251_000,
        **fields,
    }


def request_item(**fields) -> dict:
    return {
        "id": "r-93",
        "songId": 4711,
        "title": "Nightcall",
        "artist": "Kavinsky",
        "ts": at(-480),
        "status": "pending",
        **fields,
    }


def health_item(**fields) -> dict:
    return {
        "ts": at(0),
        "cpuPct": 12.5,
        "memoryMb": 245.0,
        "ringBufferFillDeckA": 0.87,
        "ringBufferFillDeckB": 0.92,
        "decoderLatencyMs": 3.1,
        "streamConnected": True,
        "dbConnected": True,
        "activeEncoders": 3,
        "diskFreeMb": 48_000.0,
        **fields,
    }


def push_batch(**parts) -> dict:
    return {"batchId": str(uuid.uuid4()), **parts}


def push(client, station_key: str, raw_key: str | None, payload, **extra):
    """POST `payload` (a dict, or a raw str/bytes body) to the station's push endpoint."""
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"} if raw_key is not None else {}
    extra.setdefault("content_type", "application/json")
    return client.post(f"/api/broadcast/{station_key}/ingest", data=body, **headers, **extra)


def stored_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in PUSH_TABLES}


NOTHING_STORED = {model.__name__: 0 for model in PUSH_TABLES}
