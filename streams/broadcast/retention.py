"""Event log retention (SPEC §9.3): `BroadcastLogEntry` rows older than
BROADCAST_LOG_RETENTION_DAYS go daily, in bounded batches, with the purge mechanics every
purge shares (`echonest_analytics.purge`).

Whole UTC days, like the other purges: a run on day T removes entries timestamped before
00:00 UTC of T − N. The log is raw and nothing points to it, so nothing else must be
aggregated first. On PostgreSQL a month partition that ends before the cutoff is
dropped whole; the month at the cutoff is deleted in batches.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet

from echonest_analytics.days import day_start
from echonest_analytics.partitions import expired_month_partitions_drop
from echonest_analytics.purge import (
    BATCH_SIZE,
    PurgeResult,
    purge_step,
    purge_until_done,
    retention_cutoff_day,
    table_name,
)

from .models import BroadcastLogEntry


def broadcast_log_cutoff(*, now: dt.datetime | None = None) -> dt.datetime:
    """Log entries before this instant are older than the retention."""
    return day_start(retention_cutoff_day(days=settings.BROADCAST_LOG_RETENTION_DAYS, now=now))


def broadcast_log_purgeable(*, now: dt.datetime | None = None) -> QuerySet[BroadcastLogEntry]:
    return BroadcastLogEntry.objects.filter(timestamp__lt=broadcast_log_cutoff(now=now))


def broadcast_log_partitions_drop(
    *, now: dt.datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Drop each month partition of the log that ends before the cutoff; returns the rows
    dropped. The month at the cutoff keeps batched deletes."""
    dropped = expired_month_partitions_drop(
        BroadcastLogEntry._meta.db_table,
        before=broadcast_log_cutoff(now=now),
        dry_run=dry_run,
    )
    return {table_name(BroadcastLogEntry): dropped} if dropped else {}


def broadcast_log_purge_step(
    *, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, dry_run: bool = False
) -> PurgeResult:
    """One bounded batch of old log entries (with `dry_run`, the count of all of them)."""
    return purge_step(
        [(BroadcastLogEntry, broadcast_log_purgeable(now=now))],
        batch_size=batch_size,
        dry_run=dry_run,
    )


def broadcast_log_purge(
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    max_seconds: float | None = None,
) -> PurgeResult:
    """Delete old log entries batch after batch until none is left (or `max_seconds` is
    spent: then `has_more` says rows remain). With `dry_run`, counts and deletes nothing."""
    return purge_until_done(
        (broadcast_log_purge_step,),
        name="broadcast log purge",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        max_seconds=max_seconds,
        partition_drops=(broadcast_log_partitions_drop,),
    )
