"""Celery tasks of product analytics: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from .rollups import daily_rollups_refresh

ROLLUP_LOCK_KEY = "analytics:daily-rollups:lock"
ROLLUP_LOCK_SECONDS = 60 * 60


@shared_task(name="analytics.daily_rollups_refresh")
def daily_rollups_refresh_task() -> list[str]:
    """Nightly product rollup (03:15 UTC): yesterday, flagged days, recent gaps."""
    # Re-running is safe (each day is recomputed, not added to), but two runs at
    # once would only duplicate work: skip when one holds the lock.
    if not cache.add(ROLLUP_LOCK_KEY, "1", timeout=ROLLUP_LOCK_SECONDS):
        return []
    try:
        return [rollup.day.isoformat() for rollup in daily_rollups_refresh()]
    finally:
        cache.delete(ROLLUP_LOCK_KEY)
