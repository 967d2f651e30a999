"""The station event log (SPEC §9.1 BroadcastLogEntry): the one writer every source uses
(the push API, the poller, the alert rules, the SAM import)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import BroadcastLogEntry, LogCategory, LogLevel, Station


def log_entry_write(
    *,
    station: Station,
    level: str,
    category: str,
    event: str,
    message: str,
    metadata: dict | None = None,
    encoder: str = "",
    deck: str = "",
    song_external_id: str = "",
    timestamp: datetime | None = None,
) -> BroadcastLogEntry:
    if level not in LogLevel.values:
        raise ValueError(f"unknown log level {level!r}")
    if category not in LogCategory.values:
        raise ValueError(f"unknown log category {category!r}")
    return BroadcastLogEntry.objects.create(
        station=station,
        timestamp=timestamp or timezone.now(),
        level=level,
        category=category,
        event=event,
        message=message,
        metadata=metadata or {},
        encoder=encoder,
        deck=deck,
        song_external_id=song_external_id,
    )
