"""Celery tasks of broadcast analytics: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from echonest_analytics.purge import PURGE_RUN_SECONDS, purge_task_run

from .alerts import webhook_deliver
from .models import Station
from .play_stats import broadcast_stats_refresh
from .poller import listeners_poll
from .retention import BATCH_SIZE, broadcast_log_purge
from .sam import import_sam as sam_import_run

LOG_PURGE_LOCK = "broadcast.log-purge"


@shared_task(name="broadcast.alert_webhook_deliver", ignore_result=True)
def alert_webhook_deliver(payload: dict) -> bool:
    """POST one alert change to ALERT_WEBHOOK_URL (retried inside, with backoff)."""
    return webhook_deliver(payload=payload)


@shared_task(name="broadcast.purge_log", bind=True, ignore_result=True)
def purge_log(self, batch_size: int = BATCH_SIZE, max_seconds: float = PURGE_RUN_SECONDS) -> dict:
    """Event log retention (SPEC §9.3). Re-enqueues itself while old entries remain;
    skips while another run purges."""
    return purge_task_run(
        self,
        lock=LOG_PURGE_LOCK,
        purge=broadcast_log_purge,
        batch_size=batch_size,
        max_seconds=max_seconds,
        skipped="another broadcast log purge holds the lock",
    )


@shared_task(name="broadcast.poll_listeners", ignore_result=True)
def poll_listeners() -> dict:
    """One listener poll round over every encoder (SPEC §9.2), every 30 s under beat."""
    return listeners_poll().as_dict()


@shared_task(name="broadcast.import_sam", ignore_result=True)
def import_sam() -> dict:
    """Import new SAM rows for every station with a SAM database URL (SPEC §9.2)."""
    return sam_import_run().as_dict()


@shared_task(name="broadcast.refresh_stats", ignore_result=True)
def refresh_stats(station_key: str | None = None) -> dict:
    """Recompute the play caches (SPEC §9.4): hourly under beat for every station, and for
    one station after a SAM import brought it plays."""
    station = None
    if station_key is not None:
        station = Station.objects.filter(stream__key=station_key).first()
        if station is None:
            return {"skipped": f"no station {station_key!r}"}
    return broadcast_stats_refresh(station=station).as_dict()
