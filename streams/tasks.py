"""Celery tasks of the playback side: thin wrappers over one service each."""

from __future__ import annotations

from celery import shared_task

from .aggregation import stream_stats_recompute


@shared_task(name="streams.aggregate_streams", ignore_result=True)
def aggregate_streams(full: bool = False) -> dict:
    """Finalize stale sessions and recompute stats for (stream, day)s with new events."""
    return stream_stats_recompute(full=full).__dict__
