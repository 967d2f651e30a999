"""The station event log (SPEC §9.1 BroadcastLogEntry): the one writer every source uses
(the push API, the poller, the alert rules, the SAM import): one entry at a time with
`log_entry_write`, a pushed batch of them with `log_entries_write` (binary COPY on
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from echonest_analytics.bulk import insert_rows

from .models import BroadcastLogEntry, LogCategory, LogLevel, Station


@dataclass(frozen=True)
class NewLogEntry:
    timestamp: datetime
    level: str
    category: str
    event: str
    message: str
    metadata: dict = field(default_factory=dict)
    deck: str = ""
    song_external_id: str = ""
    encoder: str = ""


_COLUMNS = (
    "station_id",
    "timestamp",
    "level",
    "category",
    "event",
    "message",
    "metadata",
    "deck",
    "song_external_id",
    "encoder",
)


def _check_level_and_category(level: str, category: str) -> None:
    if level not in LogLevel.values:
        raise ValueError(f"unknown log level {level!r}")
    if category not in LogCategory.values:
        raise ValueError(f"unknown log category {category!r}")


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
    _check_level_and_category(level, category)
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


def log_entries_write(*, station: Station, entries: Sequence[NewLogEntry]) -> int:
    """Append `entries` to the station's log in one write; joins the caller's transaction."""
    for entry in entries:
        _check_level_and_category(entry.level, entry.category)
    if entries:
        insert_rows(
            BroadcastLogEntry,
            _COLUMNS,
            (
                (station.pk, *(getattr(entry, column) for column in _COLUMNS[1:]))
                for entry in entries
            ),
        )
    return len(entries)
