"""Rolled-up days past the product-event retention are closed: their raw events may be
purged, so late events fold into the rollup exactly once and nothing recomputes them
from raw rows (which would wipe their figures)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from analytics.gdpr import user_erase
from analytics.models import DailyActiveUser, DailyRollup, Event
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute
from echonest_analytics.days import utc_today

pytestmark = pytest.mark.django_db


def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def post(api_client, *events):
    response = api_client.post("/api/analytics/event", {"events": list(events)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["logged"]


@pytest.fixture
def closed_day(api_client, settings):
    """A day 120 days ago with 3 events of 3 users, rolled up, raw events purged."""
    settings.PRODUCT_EVENT_RETENTION_DAYS = 90
    day = utc_today() - dt.timedelta(days=120)
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    for user in ("ana", "ben", "cy"):
        post(
            api_client,
            {"event_type": "song_add", "user_id": user, "feature": "queue", "ts": iso(noon)},
        )
    daily_rollup_recompute(day=day)
    product_purge(dry_run=False)
    assert not Event.objects.filter(occurred_at__date=day).exists()
    return day, noon


def rollup(day) -> DailyRollup:
    return DailyRollup.objects.get(day=day)


def test_a_closed_day_keeps_its_figures_when_recomputed(closed_day):
    day, _ = closed_day
    kept = daily_rollup_recompute(day=day)
    assert (kept.total_events, kept.dau, kept.event_counts) == (3, 3, {"song_add": 3})


def test_a_late_event_on_a_closed_day_is_folded_in_exactly_once(api_client, closed_day):
    day, noon = closed_day
    late = {
        "event_type": "vote",
        "user_id": "ana",
        "feature": "queue",
        "ts": iso(noon + dt.timedelta(hours=1)),
        "uuid": str(uuid.uuid4()),
    }
    newcomer = {**late, "user_id": "dee", "uuid": str(uuid.uuid4())}
    assert post(api_client, late, newcomer) == 2
    assert post(api_client, late, newcomer) == 2  # a retry: stored once, counted once
    r = rollup(day)
    assert r.total_events == 5
    assert r.event_counts == {"song_add": 3, "vote": 2}
    assert r.feature_usage == {"queue": 5}
    assert r.dau == 4  # ana was already active; dee is new
    assert DailyActiveUser.objects.get(day=day, user_id="ana").events == 2
    assert r.needs_recompute is False
    # The late raw rows are past retention too; purging them leaves the figures.
    product_purge(dry_run=False)
    assert not Event.objects.filter(occurred_at__date=day).exists()
    assert (rollup(day).total_events, rollup(day).dau) == (5, 4)


def test_erasing_a_user_on_a_closed_day_removes_them_without_wiping_the_day(closed_day):
    day, _ = closed_day
    user_erase(user_id="ben")
    r = rollup(day)
    assert r.dau == 2
    assert not DailyActiveUser.objects.filter(user_id="ben").exists()
    # The day's totals no longer name anyone and stay as they were.
    assert (r.total_events, r.event_counts) == (3, {"song_add": 3})
