"""Database unavailable (SPEC §5, §10): the ingestion endpoints answer 503 with
Retry-After and store nothing, and the next request after recovery is stored.

The outage is real, not mocked: the connection is pointed at a PostgreSQL port where
nothing listens, or at an SQLite file in a directory that does not exist."""

from __future__ import annotations

import contextlib
import json

import pytest
from django.db import connection

from analytics.models import Event
from streams.models import Organizer, PlaybackBatch, PlaybackEvent, Stream

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_down():
    """Point the connection where no database can be reached, then put it back."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1)  # nothing listens there
    else:
        connection.settings_dict["NAME"] = "/nonexistent-directory/echonest.sqlite3"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def stream(db):
    organizer = Organizer.objects.create(name="Org", slug="org")
    return Stream.objects.create(key="outage", title="Outage", organizer=organizer)


def playback_batch(batch_id: str) -> str:
    return json.dumps(
        {
            "streamId": "outage",
            "clientId": "c-1",
            "batchId": batch_id,
            "events": [{"type": "play", "videoTime": 0}, {"type": "heartbeat", "videoTime": 15}],
        }
    )


def test_playback_ingestion_answers_503_with_retry_after_and_stores_nothing(client, stream):
    body = playback_batch("6f0c2a6e-3f1d-4c8e-9a51-0d2f7c1e9b44")
    with database_down():
        response = client.post("/analytics/events", body, content_type="application/json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Database unavailable" in response.json()["error"]
    assert PlaybackEvent.objects.count() == 0
    assert PlaybackBatch.objects.count() == 0
    # The client retries the same batch once the database is back: stored exactly once.
    retry = client.post("/analytics/events", body, content_type="application/json")
    assert retry.status_code == 202
    assert retry.json() == {"ingested": 2}
    assert PlaybackEvent.objects.count() == 2


def test_product_telemetry_answers_503_with_retry_after_and_stores_nothing(client):
    body = json.dumps(
        {
            "events": [
                {
                    "event_type": "page_view",
                    "user_id": "u1",
                    "uuid": "0b8f3e4a-1d2c-4e5f-8a9b-0c1d2e3f4a5b",
                }
            ]
        }
    )
    with database_down():
        response = client.post("/api/analytics/event", body, content_type="text/plain")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["ok"] is False
    assert Event.objects.count() == 0
    retry = client.post("/api/analytics/event", body, content_type="text/plain")
    assert retry.status_code == 200
    assert retry.json() == {"ok": True, "logged": 1}
    assert Event.objects.count() == 1
