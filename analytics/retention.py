"""Retention of product analytics tables (SPEC §7 retention purge).

- `analytics.Event` (raw product events): older than PRODUCT_EVENT_RETENTION_DAYS, and
  only on UTC days that are rolled up — a `DailyRollup` exists for the day and is not
  flagged `needs_recompute`. Events of a day never rolled up, or flagged by a late event
  or an erasure, stay until the nightly rollup has recomputed that day.
- `analytics.DailyRollup` and its `analytics.DailyActiveUser` rows: older than
  ROLLUP_RETENTION_DAYS, except a day that still has raw events (its rollup stays until
  they are purged, so raw rows never outlive the aggregate that justified deleting them).
  `analytics.UserActivity` rows then lose those days too (they hold the same days).

"Older than N days" is counted in whole UTC days: a purge run on day T removes rows of
days before T − N, so nothing younger than N days ever goes.

Deletes run in bounded batches (`echonest_analytics.purge`). On PostgreSQL a month
partition of `Event` that ends before the cutoff and whose every day with events is
rolled up and current is dropped whole first (`product_partitions_drop`).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.db.models.functions import TruncDate

from echonest_analytics.days import day_start
from echonest_analytics.partitions import MonthPartition, expired_month_partitions_drop
from echonest_analytics.purge import (
    BATCH_SIZE,
    PurgeResult,
    purge_step,
    retention_cutoff_day,
    table_name,
)

from . import step_times
from .models import DailyActiveUser, DailyRollup, Event, UserActivity
from .rollups import user_activity_rebuild

logger = logging.getLogger(__name__)

ONE_DAY = dt.timedelta(days=1)


def product_events_purgeable(*, now: dt.datetime | None = None) -> QuerySet[Event]:
    """Product events older than the retention whose UTC day is rolled up and current."""
    cutoff = retention_cutoff_day(days=settings.PRODUCT_EVENT_RETENTION_DAYS, now=now)
    rolled_up = DailyRollup.objects.filter(day=OuterRef("utc_day"), needs_recompute=False)
    return (
        Event.objects.filter(occurred_at__lt=day_start(cutoff))
        .annotate(utc_day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .filter(Exists(rolled_up))
    )


def product_partitions_drop(
    *, now: dt.datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Drop each month partition of `Event` that ends before the cutoff and whose every
    UTC day with events is rolled up and current; returns the rows dropped (with `dry_run`, that would be). The other
    months keep batched deletes."""
    cutoff = day_start(retention_cutoff_day(days=settings.PRODUCT_EVENT_RETENTION_DAYS, now=now))

    def every_day_rolled_up(partition: MonthPartition) -> bool:
        days = {
            (partition.lower + dt.timedelta(days=n)).date()
            for n in range((partition.upper - partition.lower).days)
        }
        current = DailyRollup.objects.filter(day__in=days, needs_recompute=False)
        not_rolled_up = days - set(current.values_list("day", flat=True))
        return not any(
            Event.objects.filter(
                occurred_at__gte=day_start(day), occurred_at__lt=day_start(day + ONE_DAY)
            ).exists()
            for day in not_rolled_up
        )

    dropped = expired_month_partitions_drop(
        Event._meta.db_table,
        before=cutoff,
        still_droppable=every_day_rolled_up,
        dry_run=dry_run,
    )
    return {table_name(Event): dropped} if dropped else {}


def _rollup_day_has_raw_events(
    *, cutoff: dt.date, dry_run: bool, now: dt.datetime | None
) -> Exists:
    """The outer row's `day` still holds raw product events (evaluated when the row is
    deleted, so events purged earlier in the same step no longer count). A dry run
    counts what a whole run removes: events it would purge first do not hold the day."""
    events = (
        Event.objects.filter(occurred_at__lt=day_start(cutoff))
        .annotate(utc_day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .filter(utc_day=OuterRef("day"))
    )
    if dry_run:
        events = events.exclude(pk__in=product_events_purgeable(now=now).values("pk"))
    return Exists(events)


def product_purge(
    *, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, dry_run: bool = False
) -> PurgeResult:
    """One bounded purge step over the product tables (see the module docstring).

    With `dry_run`, nothing changes: `deleted` holds how many rows would go in total.
    """
    rollup_cutoff = retention_cutoff_day(days=settings.ROLLUP_RETENTION_DAYS, now=now)
    day_held = _rollup_day_has_raw_events(cutoff=rollup_cutoff, dry_run=dry_run, now=now)
    # Raw events first: a rollup only goes once its day has no raw events left, so events
    # never lose the rollup that makes them purgeable.
    purgeable: list[tuple[type[Model], QuerySet]] = [
        (Event, product_events_purgeable(now=now)),
        (DailyActiveUser, DailyActiveUser.objects.filter(day__lt=rollup_cutoff).exclude(day_held)),
        (DailyRollup, DailyRollup.objects.filter(day__lt=rollup_cutoff).exclude(day_held)),
    ]
    result = purge_step(purgeable, batch_size=batch_size, dry_run=dry_run)
    if not dry_run:
        # Users whose first active day may just have gone with its DailyActiveUser rows.
        user_activity_rebuild(
            user_ids=UserActivity.objects.filter(first_day__lt=rollup_cutoff).values_list(
                "user_id", flat=True
            )
        )
        if not result.has_more:
            # Funnels read nothing older than the raw retention: its moments go too.
            step_times.trim(
                kept_since=retention_cutoff_day(days=settings.PRODUCT_EVENT_RETENTION_DAYS, now=now)
            )
    return result
