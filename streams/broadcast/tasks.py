"""Celery tasks of broadcast analytics: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from .alerts import webhook_deliver
from .sam import import_sam as sam_import_run


@shared_task(name="broadcast.alert_webhook_deliver", ignore_result=True)
def alert_webhook_deliver(payload: dict) -> bool:
    """POST one alert change to ALERT_WEBHOOK_URL (retried inside, with backoff)."""
    return webhook_deliver(payload=payload)


@shared_task(name="broadcast.import_sam", ignore_result=True)
def import_sam() -> dict:
    """Import new SAM rows for every station with a SAM database URL (SPEC §9.2)."""
    return sam_import_run().as_dict()
