from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from streams.models import Organizer, Stream, StreamProvider

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# A fixed instant well inside today's retention window, at a round hour.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)


def at(seconds: float, base: datetime = T0) -> str:
    return (base + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def organizer(db) -> Organizer:
    return Organizer.objects.create(name="Nightjar Records", slug="nightjar")


@pytest.fixture
def other_organizer(db) -> Organizer:
    return Organizer.objects.create(name="Other Label", slug="other-label")


@pytest.fixture
def stream(organizer) -> Stream:
    s = Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)
    StreamProvider.objects.create(
        stream=s, provider="hls", external_id="https://cdn.example/launch.m3u8", is_primary=True
    )
    return s


@pytest.fixture
def post_events(client):
    """POST a batch to /analytics/events like a player does."""

    def post(payload, *, ua: str = DESKTOP_UA, content_type: str = "application/json", **extra):
        body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        return client.post(
            "/analytics/events", data=body, content_type=content_type, HTTP_USER_AGENT=ua, **extra
        )

    return post


def batch(stream_key: str, client_id: str, events: list[dict], **fields) -> dict:
    return {"streamId": stream_key, "clientId": client_id, "events": events, **fields}


def heartbeats(*seconds: float, base: datetime = T0) -> list[dict]:
    return [{"type": "heartbeat", "videoTime": s, "ts": at(s, base)} for s in seconds]


def new_batch_id() -> str:
    return str(uuid.uuid4())
