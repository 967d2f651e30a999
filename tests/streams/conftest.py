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


MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
TABLET_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def ev(event_type: str, seconds: float, base: datetime = T0, **fields) -> dict:
    """One player event `seconds` after `base`, with videoTime following the clock."""
    return {"type": event_type, "videoTime": max(seconds, 0), "ts": at(seconds, base), **fields}


@pytest.fixture
def send_batch(post_events, stream):
    """Send one batch for `client_id` as a player does and insist it is accepted (202)."""

    def send(client_id: str, events: list[dict], *, stream_key: str = "launch-party", **extra):
        response = post_events(batch(stream_key, client_id, events), **extra)
        assert response.status_code == 202, response.content
        assert response.json() == {"ingested": len(events)}
        return response

    return send


@pytest.fixture
def second_stream(organizer) -> Stream:
    return Stream.objects.create(key="after-party", title="After party", organizer=organizer)
