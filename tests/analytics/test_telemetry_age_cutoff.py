"""SPEC §5.3: events whose ts is over 365 days old are ignored (not logged, not an error).

The edge is pinned to the hour over HTTP and to the microsecond through the service,
so moving the cut-off by one day either way turns a test red.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from analytics.models import Event
from analytics.telemetry import telemetry_batch_decode, telemetry_batch_ingest

from .conftest import post_batch

pytestmark = pytest.mark.django_db

RECEIVED_AT = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def stored_types() -> list[str]:
    return sorted(Event.objects.values_list("event_type", flat=True))


def ingest_at_received(*ages: tuple[str, dt.timedelta]) -> int:
    """Ingest one event per (event_type, age) through the public service, received at RECEIVED_AT."""
    body = json.dumps(
        {"events": [{"event_type": name, "ts": iso(RECEIVED_AT - age)} for name, age in ages]}
    ).encode()
    return telemetry_batch_ingest(batch=telemetry_batch_decode(body), received_at=RECEIVED_AT)


def test_an_event_365_days_and_1_hour_old_is_ignored_and_one_364_days_23_hours_old_is_logged(
    api_client,
):
    now = timezone.now()
    response = post_batch(
        api_client,
        {
            "events": [
                {"event_type": "just_over", "ts": iso(now - dt.timedelta(days=365, hours=1))},
                {"event_type": "just_under", "ts": iso(now - dt.timedelta(days=364, hours=23))},
            ]
        },
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "logged": 1}
    assert stored_types() == ["just_under"]


def test_an_event_exactly_365_days_old_is_logged():
    # "Over 365 days old" is ignored; exactly 365 days is not over.
    assert ingest_at_received(("exactly_365_days", dt.timedelta(days=365))) == 1
    assert stored_types() == ["exactly_365_days"]


def test_an_event_365_days_and_1_microsecond_old_is_ignored():
    logged = ingest_at_received(
        ("over_by_1_us", dt.timedelta(days=365, microseconds=1)),
        ("366_days", dt.timedelta(days=366)),
        ("364_days", dt.timedelta(days=364)),
    )
    assert logged == 1
    assert stored_types() == ["364_days"]
