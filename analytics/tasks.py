"""Celery tasks of product analytics: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from echonest_analytics.locks import job_lock

from .rollups import daily_rollups_refresh

ROLLUP_LOCK = "analytics.daily-rollups"


@shared_task(name="analytics.daily_rollups_refresh")
def daily_rollups_refresh_task() -> list[str]:
    """Nightly product rollup (03:15 UTC): yesterday, flagged days, recent gaps."""
    # Re-running is safe (each day is recomputed, not added to), but two runs at
    # once would only duplicate work: skip when one holds the lock.
    with job_lock(ROLLUP_LOCK) as acquired:
        if not acquired:
            return []
        return [rollup.day.isoformat() for rollup in daily_rollups_refresh()]
