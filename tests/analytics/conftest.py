"""Helpers for the product-analytics tests: a frozen UTC clock and events stored the real way."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from analytics.services import NewEvent, events_store

# Wednesday of ISO week 11 of 2026; ISO week 10 runs Mon 2026-03-02 .. Sun 2026-03-08.
FROZEN_NOW = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen_now(monkeypatch) -> dt.datetime:
    """Freeze Django's clock (timezone.now) at FROZEN_NOW; only the clock is faked."""
    monkeypatch.setattr("django.utils.timezone.now", lambda: FROZEN_NOW)
    return FROZEN_NOW


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=dt.UTC)


def store(rows, *, received_at: dt.datetime = FROZEN_NOW) -> set[uuid.UUID]:
    """Store (event_type, user_id, feature, occurred_at) tuples through the real service."""
    return events_store(
        events=[
            NewEvent(
                uuid=uuid.uuid4(),
                event_type=event_type,
                user_id=user_id,
                feature=feature,
                occurred_at=occurred_at,
            )
            for event_type, user_id, feature, occurred_at in rows
        ],
        received_at=received_at,
    )


def post_batch(client, payload, content_type: str = "application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/api/analytics/event", data=body, content_type=content_type)


# The hand-built dataset of the usage tests (SPEC §6.4), 2026-02-20 .. 2026-03-11.
USAGE_DATASET = [
    ("page_view", "gina", "dashboard", at("2026-02-20")),  # outside a 14-day window
    ("page_view", "alice", "dashboard", at("2026-03-05", 9)),
    ("action", "alice", "dashboard", at("2026-03-05", 10)),
    ("page_view", "bob", "search", at("2026-03-05", 23, 59)),
    ("page_view", "frank", "settings", at("2026-03-06", 0, 0)),
    ("page_view", "alice", "dashboard", at("2026-03-07")),
    ("conversion", "carol", "checkout", at("2026-03-07")),
    ("page_view", "", "dashboard", at("2026-03-07")),
    ("action", "bob", "search", at("2026-03-10")),
    ("page_view", "dave", "dashboard", at("2026-03-10")),
    ("action", "carol", "player", at("2026-03-10")),
    ("action", "", "player", at("2026-03-10")),
    ("page_view", "alice", "dashboard", at("2026-03-11", 8)),
    ("page_view", "erin", "", at("2026-03-11", 9)),
    ("conversion", "erin", "checkout", at("2026-03-11", 10)),
    ("page_view", "bob", "dashboard", at("2026-03-11", 11)),
]
