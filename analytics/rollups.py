"""Daily rollups of product events (SPEC §4 DailyRollup, §7 product rollup).

A day's rollup is always recomputed from that day's raw events and written over
the old one (Zulip style): re-running a day, or running it after a crash
halfway, gives the same figures as one clean run, never a `+=`. Only complete
UTC days (before today) are rolled up; today is always read from raw events.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from echonest_analytics.days import day_bounds, utc_today

from .models import DailyActiveUser, DailyRollup, Event

logger = logging.getLogger(__name__)

# Days before yesterday that the nightly run also fills when their rollup is
# missing (e.g. beat was down), so a gap heals itself.
BACKFILL_DAYS = 7


def raw_events_kept_since(*, today: dt.date | None = None) -> dt.date:
    """The first day whose raw events retention never deletes.

    A day before it whose rollup is computed is *closed*: the purge may have deleted its raw
    events, so its rollup (with its DailyActiveUser rows) is the whole record and
    is never recomputed from raw rows again.
    """
    today = today or utc_today()
    return today - dt.timedelta(days=settings.PRODUCT_EVENT_RETENTION_DAYS)


def closed_rollup_days(*, days: Iterable[dt.date], today: dt.date | None = None) -> set[dt.date]:
    kept_since = raw_events_kept_since(today=today)
    old = [day for day in days if day < kept_since]
    if not old:
        return set()
    # Only a computed, unflagged rollup can have lost raw events to the purge (which
    # skips days without one); a placeholder made by a flag still has all its rows.
    return set(
        DailyRollup.objects.filter(
            day__in=old, computed_at__isnull=False, needs_recompute=False
        ).values_list("day", flat=True)
    )


def closed_rollup_fold_in(*, day: dt.date, events: Iterable) -> None:
    """Add late events to a closed day's rollup, exactly once.

    Runs in the transaction that stores the events (each uuid is stored once), so
    it never counts an event twice; distinct users stay exact through the day's
    DailyActiveUser rows.
    """
    rollup = DailyRollup.objects.select_for_update().get(day=day)
    for event in events:
        rollup.total_events += 1
        rollup.event_counts[event.event_type] = rollup.event_counts.get(event.event_type, 0) + 1
        if event.feature:
            rollup.feature_usage[event.feature] = rollup.feature_usage.get(event.feature, 0) + 1
        if event.user_id:
            updated = DailyActiveUser.objects.filter(day=day, user_id=event.user_id).update(
                events=F("events") + 1
            )
            if not updated:
                DailyActiveUser.objects.create(day=day, user_id=event.user_id, events=1)
                rollup.dau += 1
    rollup.event_counts = dict(sorted(rollup.event_counts.items(), key=lambda kv: (-kv[1], kv[0])))
    rollup.feature_usage = dict(
        sorted(rollup.feature_usage.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    rollup.save(update_fields=["total_events", "event_counts", "feature_usage", "dau"])


def rollup_days_mark_for_recompute(*, days: Iterable[dt.date]) -> None:
    """Flag days whose raw events changed after (or while) they were rolled up.

    Upserts so a day whose rollup is being computed right now is flagged once
    that computation commits (it holds the row lock), and is recomputed later.
    Sorted, so concurrent writers lock rows in the same order.
    """
    DailyRollup.objects.bulk_create(
        [DailyRollup(day=day, needs_recompute=True) for day in sorted(set(days))],
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=["needs_recompute"],
    )


def daily_rollup_recompute(*, day: dt.date) -> DailyRollup:
    """Recompute one complete UTC day from its raw events and store it (idempotent)."""
    if day >= utc_today():
        raise ValueError(f"{day} is not a complete UTC day yet; only days before today roll up.")
    if closed_rollup_days(days=[day]):
        # Its raw events may be purged: recomputing would wipe the figures.
        DailyRollup.objects.filter(day=day, needs_recompute=True).update(needs_recompute=False)
        logger.info("rollup of %s kept: the day is closed (raw events past retention)", day)
        return DailyRollup.objects.get(day=day)
    start, end = day_bounds(day)
    with transaction.atomic():
        # Take the day's row lock first: a late event for this day then waits and
        # flags the fresh rollup for recompute, instead of being silently missed.
        DailyRollup.objects.bulk_create(
            [DailyRollup(day=day, needs_recompute=True)], ignore_conflicts=True
        )
        rollup = DailyRollup.objects.select_for_update().get(day=day)

        counts = (
            Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
            .values_list("event_type", "feature")
            .annotate(events=Count("id"))
            .order_by()
        )
        event_counts: dict[str, int] = {}
        feature_usage: dict[str, int] = {}
        for event_type, feature, events in counts:
            event_counts[event_type] = event_counts.get(event_type, 0) + events
            if feature:
                feature_usage[feature] = feature_usage.get(feature, 0) + events

        DailyActiveUser.objects.filter(day=day).delete()
        dau = _daily_active_users_insert(day=day, start=start, end=end)

        rollup.total_events = sum(event_counts.values())
        rollup.event_counts = dict(sorted(event_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        rollup.feature_usage = dict(sorted(feature_usage.items(), key=lambda kv: (-kv[1], kv[0])))
        rollup.dau = dau
        rollup.needs_recompute = False
        rollup.computed_at = timezone.now()
        rollup.save()
    return rollup


def _daily_active_users_insert(*, day: dt.date, start: dt.datetime, end: dt.datetime) -> int:
    """One set-based `INSERT … SELECT … GROUP BY` of the day's (day, user) rows."""
    ops = connection.ops
    dau_table = ops.quote_name(DailyActiveUser._meta.db_table)
    event_table = ops.quote_name(Event._meta.db_table)
    sql = (
        f"INSERT INTO {dau_table} (day, user_id, events) "  # noqa: S608 — names from model metadata
        f"SELECT %s, user_id, COUNT(*) FROM {event_table} "
        "WHERE occurred_at >= %s AND occurred_at < %s AND user_id <> '' GROUP BY user_id"
    )
    params = [
        ops.adapt_datefield_value(day) if connection.vendor == "sqlite" else day,
        ops.adapt_datetimefield_value(start),
        ops.adapt_datetimefield_value(end),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return DailyActiveUser.objects.filter(day=day).count()


def rollup_due_days(*, today: dt.date | None = None) -> list[dt.date]:
    """Days the nightly run recomputes: yesterday, flagged days, and recent days never rolled up."""
    today = today or utc_today()
    due = set(
        DailyRollup.objects.filter(needs_recompute=True, day__lt=today).values_list(
            "day", flat=True
        )
    )
    recent = {today - dt.timedelta(days=n) for n in range(1, BACKFILL_DAYS + 1)}
    rolled = set(
        DailyRollup.objects.filter(day__in=recent, needs_recompute=False).values_list(
            "day", flat=True
        )
    )
    due |= recent - rolled
    due.add(today - dt.timedelta(days=1))
    return sorted(due)


def daily_rollups_refresh(*, today: dt.date | None = None) -> list[DailyRollup]:
    """The nightly job (03:15 UTC): recompute every due day, oldest first."""
    rollups = [daily_rollup_recompute(day=day) for day in rollup_due_days(today=today)]
    logger.info("product rollups refreshed: %s", ", ".join(str(r.day) for r in rollups))
    return rollups
