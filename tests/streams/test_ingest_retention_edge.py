"""SPEC §5.1 / §7: ingestion refuses playback events older than PLAYBACK_EVENT_RETENTION_DAYS
(90 days): such a batch is a 400 naming the event's ts, and nothing of it is stored.

Just inside and just outside the 90 days, over HTTP, and at the exact instant through
`playback_batch_ingest` with a fixed receive time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from echonest_analytics.ingestion import IngestRejected
from streams.ingest import playback_batch_ingest
from streams.models import PlaybackBatch, PlaybackEvent, ViewerSession

from .conftest import batch, ev

pytestmark = pytest.mark.django_db

RECEIVED_AT = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def stored() -> tuple[int, int, int]:
    return (
        PlaybackEvent.objects.count(),
        ViewerSession.objects.count(),
        PlaybackBatch.objects.count(),
    )


def test_the_playback_retention_is_90_days():
    assert settings.PLAYBACK_EVENT_RETENTION_DAYS == 90


def test_an_event_89_days_23_hours_old_is_accepted_and_stored(stream, post_events):
    base = timezone.now() - timedelta(days=89, hours=23)
    response = post_events(batch("launch-party", "c-1", [ev("play", 0, base)]))
    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": 1}
    event = PlaybackEvent.objects.get()
    assert event.occurred_at == base
    assert stored() == (1, 1, 1)


def test_an_event_90_days_1_hour_old_rejects_its_batch_and_nothing_is_stored(stream, post_events):
    recent = timezone.now() - timedelta(hours=1)
    old = timezone.now() - timedelta(days=90, hours=1)
    response = post_events(
        batch("launch-party", "c-1", [ev("play", 0, recent), ev("play", 0, old)])
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["details"] == {"events[1].ts": "older than the 90-day retention"}
    assert stored() == (0, 0, 0)


def ingest(age: timedelta):
    body = json.dumps(batch("launch-party", "c-1", [ev("play", 0, RECEIVED_AT - age)])).encode()
    return playback_batch_ingest(body=body, country="", device="desktop", received_at=RECEIVED_AT)


def test_an_event_exactly_90_days_old_is_accepted(stream):
    assert ingest(timedelta(days=90)).ingested == 1
    assert PlaybackEvent.objects.get().occurred_at == RECEIVED_AT - timedelta(days=90)


def test_an_event_90_days_and_1_millisecond_old_is_refused(stream):
    with pytest.raises(IngestRejected) as refused:
        ingest(timedelta(days=90, milliseconds=1))
    assert refused.value.details == {"events[0].ts": "older than the 90-day retention"}
    assert stored() == (0, 0, 0)
