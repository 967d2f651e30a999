"""Celery tasks of broadcast analytics: thin, each calls one service."""

from __future__ import annotations

from celery import shared_task

from .alerts import webhook_deliver
from .poller import listeners_poll


@shared_task(name="broadcast.alert_webhook_deliver", ignore_result=True)
def alert_webhook_deliver(payload: dict) -> bool:
    """POST one alert change to ALERT_WEBHOOK_URL (retried inside, with backoff)."""
    return webhook_deliver(payload=payload)


@shared_task(name="broadcast.poll_listeners", ignore_result=True)
def poll_listeners() -> dict:
    """One listener poll round over every encoder (SPEC §9.2), every 30 s under beat."""
    return listeners_poll().as_dict()
