"""Celery tasks of the playback side: thin wrappers over one service each."""

from __future__ import annotations

from celery import shared_task

from .aggregation import stream_stats_recompute
from .bunny import bunny_configured, bunny_stats_import


@shared_task(name="streams.aggregate_streams", ignore_result=True)
def aggregate_streams(full: bool = False) -> dict:
    """Finalize stale sessions and recompute stats for (stream, day)s with new events."""
    return stream_stats_recompute(full=full).__dict__


@shared_task(name="streams.import_bunny_stats", ignore_result=True)
def import_bunny_stats(days: int = 3) -> dict:
    """Import Bunny Stream's statistics for the last `days` days (skipped when unconfigured)."""
    if not bunny_configured():
        return {"skipped": "Bunny is not configured"}
    return bunny_stats_import(days=days).as_dict()
