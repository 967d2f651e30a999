"""GDPR erasure of one product user: raw events, rollup contributions, live counters (SPEC §5.5).

Export (right of access) is a read: `selectors.user_events_export`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models.functions import TruncDate

from echonest_analytics.days import utc_today
from echonest_analytics.redis import get_redis

from . import live_counters, step_times
from .models import DailyActiveUser, DailyRollup, Event
from .rollups import (
    closed_rollup_days,
    daily_rollup_recompute,
    intraday_usage_erase_user,
    user_activity_rebuild,
)

logger = logging.getLogger(__name__)


class LiveCountersUnavailable(Exception):
    """The database part of an erasure is done, the Redis part is not: retry the erasure."""


@dataclass(frozen=True)
class UserErasure:
    user_id: str
    events_deleted: int
    rollup_days_recomputed: list[dt.date]
    live_counter_keys_cleaned: int


def user_erase(*, user_id: str) -> UserErasure:
    """Erase one user everywhere. Idempotent: running it again finds nothing and succeeds.

    The events are deleted and every rolled-up day they touched is recomputed from
    the remaining raw rows in the same transaction, then the user is removed from
    the live counters. Raises `LiveCountersUnavailable` when Redis fails, so the
    caller can report the erasure as incomplete and retry it.
    """
    if not user_id:
        raise ValueError("user_id is required")
    today = utc_today()
    with transaction.atomic():
        events = Event.objects.filter(user_id=user_id)
        days = set(
            events.annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
            .values_list("day", flat=True)
            .distinct()
            .order_by()
        )
        days |= set(DailyActiveUser.objects.filter(user_id=user_id).values_list("day", flat=True))
        deleted, _ = events.delete()
        # Today's (and any unrolled day's) intraday rows are rebuilt without the user.
        intraday_usage_erase_user(user_id=user_id, days=days)
        rolled_days = set(DailyRollup.objects.filter(day__in=days).values_list("day", flat=True))
        # A closed day (raw events past retention) cannot be recomputed: the user's
        # (day, user) row goes and the day's DAU with it; its event totals, which no
        # longer name anyone, stay.
        closed = closed_rollup_days(days=rolled_days, today=today)
        recomputed = sorted(day for day in rolled_days - closed if day < today)
        for day in recomputed:
            # Only this user's events changed (unless the day is flagged anyway).
            daily_rollup_recompute(day=day, only_users=[user_id])
        DailyActiveUser.objects.filter(user_id=user_id).delete()
        user_activity_rebuild(user_ids=[user_id])  # no rows left: the user's row goes
        step_times.user_delete(user_id=user_id)
        for day in closed:
            DailyRollup.objects.filter(day=day).update(
                dau=DailyActiveUser.objects.filter(day=day).count()
            )
    try:
        cleaned = live_counters.erase_member(get_redis(), user_id)
    except Exception as exc:  # noqa: BLE001 — any Redis failure leaves the erasure incomplete
        # Never the user id in a log: the log would outlive the erasure it records.
        logger.warning("GDPR erase: live counters not cleaned, retry needed", exc_info=True)
        raise LiveCountersUnavailable(
            f"Events and rollups of {user_id!r} were erased, but Redis failed ({exc}); "
            "retry the erasure to clean the live counters."
        ) from exc
    logger.info("GDPR erase: %d events, %d rollup days", deleted, len(recomputed))
    return UserErasure(
        user_id=user_id,
        events_deleted=deleted,
        rollup_days_recomputed=recomputed,
        live_counter_keys_cleaned=cleaned,
    )
