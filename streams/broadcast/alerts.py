"""Alerts (SPEC §9.3): opened once per (station, kind, subject) while the condition holds,
resolved when it ends. Every change is also a log entry and, with `ALERT_WEBHOOK_URL`
set, a JSON POST delivered off the caller's path (retried, never blocking a poll or an
ingestion request).

The rules themselves live with their data: `stream_down` in the poller, the health rules
(`database_lost`, `disk_low`, `buffer_underrun`) in `health.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

import requests
from django.conf import settings
from django.db import IntegrityError, transaction

from .log import log_entry_write
from .models import Alert, LogCategory, LogLevel, Station

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 5.0  # seconds per attempt
WEBHOOK_ATTEMPTS = 4
WEBHOOK_BACKOFF = 1.0  # seconds, doubling

_CATEGORY = {
    Alert.Kind.STREAM_DOWN: LogCategory.STREAM,
    Alert.Kind.DATABASE_LOST: LogCategory.DATABASE,
    Alert.Kind.DISK_LOW: LogCategory.DATABASE,  # storage: the closest category
    Alert.Kind.BUFFER_UNDERRUN: LogCategory.BUFFER,
}


def _payload(alert: Alert, state: str) -> dict:
    return {
        "state": state,
        "station": alert.station.key,
        "kind": alert.kind,
        "subject": alert.subject,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def alert_open(
    *, station: Station, kind: str, subject: str, message: str, at: datetime
) -> Alert | None:
    """Open the alert unless one is open for the same kind and subject; returns the new
    alert, or None when it was open already."""
    if Alert.objects.filter(
        station=station, kind=kind, subject=subject, resolved_at__isnull=True
    ).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                station=station, kind=kind, subject=subject, message=message, opened_at=at
            )
    except IntegrityError:  # opened meanwhile by a concurrent run
        return None
    log_entry_write(
        station=station,
        level=LogLevel.ERROR if kind != Alert.Kind.DISK_LOW else LogLevel.WARN,
        category=_CATEGORY[kind],
        event=f"alert_{kind}",
        message=message,
        metadata={"alert": kind, "subject": subject},
        encoder=subject if kind == Alert.Kind.STREAM_DOWN else "",
        timestamp=at,
    )
    _webhook_send_on_commit(_payload(alert, "open"))
    return alert


def alert_resolve(*, station: Station, kind: str, subject: str, at: datetime) -> Alert | None:
    """Resolve the open alert of this kind and subject, if any."""
    alert = Alert.objects.filter(
        station=station, kind=kind, subject=subject, resolved_at__isnull=True
    ).first()
    if alert is None:
        return None
    alert.resolved_at = at
    alert.save(update_fields=["resolved_at"])
    log_entry_write(
        station=station,
        level=LogLevel.INFO,
        category=_CATEGORY[kind],
        event=f"alert_{kind}_resolved",
        message=f"Resolved: {alert.message}",
        metadata={"alert": kind, "subject": subject},
        encoder=subject if kind == Alert.Kind.STREAM_DOWN else "",
        timestamp=at,
    )
    _webhook_send_on_commit(_payload(alert, "resolved"))
    return alert


def _webhook_send_on_commit(payload: dict) -> None:
    if not settings.ALERT_WEBHOOK_URL:
        return
    transaction.on_commit(lambda: webhook_deliver_later(payload))


def webhook_deliver_later(payload: dict) -> None:
    """Hand the POST to a worker (a Celery task with a broker; a background thread when
    tasks run eagerly, so an eager run still never waits on the webhook)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        threading.Thread(target=webhook_deliver, kwargs={"payload": payload}, daemon=True).start()
    else:
        from .tasks import alert_webhook_deliver

        alert_webhook_deliver.delay(payload)


def webhook_deliver(*, payload: dict, url: str | None = None) -> bool:
    """POST `payload` as JSON, retrying connection errors and 5xx/429 with backoff.
    Returns whether the receiver accepted it (2xx)."""
    url = url or settings.ALERT_WEBHOOK_URL
    delay = WEBHOOK_BACKOFF
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        try:
            response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT)
        except requests.RequestException as exc:
            logger.warning("alert webhook attempt %d failed: %s", attempt, type(exc).__name__)
        else:
            if response.ok:
                return True
            if response.status_code < 500 and response.status_code != 429:
                logger.warning("alert webhook refused the alert: HTTP %d", response.status_code)
                return False
            logger.warning("alert webhook attempt %d: HTTP %d", attempt, response.status_code)
        if attempt < WEBHOOK_ATTEMPTS:
            time.sleep(delay)
            delay *= 2
    return False
