"""Celery tasks of the playback side: thin wrappers over one service each."""

from __future__ import annotations

from celery import shared_task

from echonest_analytics.locks import job_lock
from echonest_analytics.purge import PURGE_RUN_SECONDS, purge_task_run

from .aggregation import stream_stats_recompute
from .bunny import bunny_configured, bunny_stats_import
from .partition_upkeep import partition_upkeep as partition_upkeep_run
from .retention import BATCH_SIZE, retention_purge

PURGE_LOCK = "streams.retention-purge"
BUNNY_IMPORT_LOCK = "streams.bunny-import"
PARTITION_UPKEEP_LOCK = "streams.partition-upkeep"


@shared_task(name="streams.aggregate_streams", ignore_result=True)
def aggregate_streams(full: bool = False) -> dict:
    """Finalize stale sessions and recompute stats for (stream, day)s with new events."""
    return stream_stats_recompute(full=full).__dict__


@shared_task(name="streams.import_bunny_stats", ignore_result=True)
def import_bunny_stats(days: int = 3) -> dict:
    """Import Bunny Stream's statistics for the last `days` days (skipped when unconfigured)."""
    if not bunny_configured():
        return {"skipped": "Bunny is not configured"}
    with job_lock(BUNNY_IMPORT_LOCK) as acquired:
        if not acquired:
            return {"skipped": "another Bunny import holds the lock"}
        return bunny_stats_import(days=days).as_dict()


@shared_task(name="streams.purge_analytics", bind=True, ignore_result=True)
def purge_analytics(
    self, batch_size: int = BATCH_SIZE, max_seconds: float = PURGE_RUN_SECONDS
) -> dict:
    """Retention purge (SPEC §7): old raw playback and product events once aggregated,
    old rollups. Re-enqueues itself while rows remain; skips while another run purges."""
    return purge_task_run(
        self,
        lock=PURGE_LOCK,
        purge=retention_purge,
        batch_size=batch_size,
        max_seconds=max_seconds,
        skipped="another purge run holds the lock",
    )


@shared_task(name="streams.partition_upkeep", ignore_result=True)
def partition_upkeep() -> dict:
    """Partition upkeep (SPEC §13): create the coming month partitions, drop expired ones."""
    with job_lock(PARTITION_UPKEEP_LOCK) as acquired:
        if not acquired:
            return {"skipped": "another partition upkeep holds the lock"}
        return partition_upkeep_run().as_dict()
