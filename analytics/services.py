"""Writing product events: the one store path shared by telemetry ingestion and server code.

Events go into the database in the caller's transaction (uuid-deduplicated,
binary COPY on PostgreSQL); once that transaction commits, the newly stored
events are counted in the Redis live counters, best effort.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from echonest_analytics.bulk import insert_rows_skipping_conflicts
from echonest_analytics.redis import get_redis, redis_breaker

from . import live_counters, step_times
from .models import Event
from .rollups import (
    closed_rollup_days,
    closed_rollup_fold_in,
    intraday_usage_add,
    rollup_days_mark_for_recompute,
)

logger = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "uuid",
    "event_type",
    "user_id",
    "feature",
    "url",
    "metadata",
    "occurred_at",
    "received_at",
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event ready to store (occurred_at timezone-aware)."""

    uuid: uuid.UUID
    event_type: str
    occurred_at: dt.datetime
    user_id: str = ""
    feature: str = ""
    url: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def events_store(*, events: Sequence[NewEvent], received_at: dt.datetime) -> set[uuid.UUID]:
    """Store `events` atomically, skipping uuids already stored; return the uuids stored now.

    Late events (on a day before today) flag that day's rollup for recompute, and every
    stored event is added to its day's intraday usage rows, in the same transaction. Only the newly stored events feed the live counters, so
    a retried batch is not counted twice there either.
    """
    if not events:
        return set()
    rows = [
        (
            e.uuid,
            e.event_type,
            e.user_id,
            e.feature,
            e.url,
            dict(e.metadata),
            e.occurred_at,
            received_at,
        )
        for e in events
    ]
    today = received_at.astimezone(dt.UTC).date()
    with transaction.atomic():
        # Before the insert, so each store ranks its events after earlier-stored ones.
        step_times.user_locks_take(user_ids=[e.user_id for e in events])
        inserted = insert_rows_skipping_conflicts(Event, EVENT_COLUMNS, rows, unique_column="uuid")
        stored = [e for e in events if e.uuid in inserted]
        event_days = {e.occurred_at.astimezone(dt.UTC).date() for e in stored}
        past_days = {day for day in event_days if day < today}
        closed = closed_rollup_days(days=past_days, today=today)
        for day in sorted(closed):
            closed_rollup_fold_in(
                day=day,
                events=[e for e in stored if e.occurred_at.astimezone(dt.UTC).date() == day],
            )
        if past_days - closed:
            rollup_days_mark_for_recompute(days=past_days - closed)
        # Today's usage figures read these rows instead of scanning today's raw events.
        intraday_usage_add(events=stored, today=today)
        tracked = _live_counter_events(events=stored, today=today)
        if tracked:
            transaction.on_commit(lambda: live_counters_feed(events=tracked))
    return inserted


def _live_counter_events(
    *, events: Sequence[NewEvent], today: dt.date
) -> list[live_counters.TrackedEvent]:
    # Daily keys expire after 90 days; an older event would only recreate a key
    # that has already expired, so the live counters cover the last 90 days.
    oldest = today - dt.timedelta(days=live_counters.DAILY_KEY_TTL_DAYS - 1)
    tracked = []
    for e in events:
        day = e.occurred_at.astimezone(dt.UTC).date()
        if day >= oldest:
            tracked.append(live_counters.TrackedEvent(e.event_type, e.user_id or None, day))
    return tracked


def live_counters_feed(*, events: Sequence[live_counters.TrackedEvent]) -> bool:
    """Count stored events in Redis; never raises (SPEC §10: Redis down is logged, not fatal).

    While `redis_breaker` is open after a failure, Redis is not asked at all.
    """
    if not redis_breaker.available():
        logger.warning("live counters: Redis recently failed, %d events not counted", len(events))
        return False
    try:
        client = get_redis()
    except Exception:  # noqa: BLE001 — a misconfigured Redis must not fail ingestion
        logger.warning("live counters: no Redis client, events not counted", exc_info=True)
        redis_breaker.failed()
        return False
    counted = live_counters.track_many(client, events)
    if not counted:
        redis_breaker.failed()
    return counted


def track(
    *,
    event_type: str,
    user_id: str = "",
    feature: str = "",
    url: str = "",
    metadata: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Event:
    """Record one product event from server code (the Django-side `track`).

    Stores an `Event` and, after commit, counts it in the live counters with
    `user_id` as the member (EchoNest keys its counters by email, so pass the
    email there when you have one).
    """
    now = timezone.now()
    event = NewEvent(
        uuid=uuid.uuid4(),
        event_type=event_type,
        user_id=user_id or "",
        feature=feature or "",
        url=url or "",
        metadata=dict(metadata or {}),
        occurred_at=occurred_at or now,
    )
    events_store(events=[event], received_at=now)
    return Event.objects.get(uuid=event.uuid)
