"""Playout health (SPEC §9.3): storing the pushed `HealthSnapshot`s and the alert rules
they drive.

The rules, each an `Alert` of (kind, subject):
- `database_lost` / "database": the playout lost its SAM database (dbConnected false);
- `disk_low` / "disk": less than 1 GB free for recordings (diskFreeMb < 1024);
- `buffer_underrun` / "deck_a", "deck_b": a deck's ring buffer under 10 % full.

Snapshots are evaluated in time order: an alert opens at the first snapshot where its
condition holds and resolves at the first one where it no longer does. Only snapshots
newer than every snapshot stored before drive the rules, so a late or replayed batch of
old readings cannot reopen an alert that newer readings resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from django.db.models import Max

from echonest_analytics.bulk import insert_rows

from .alerts import alert_open, alert_resolve
from .models import Alert, HealthSnapshot, Station

DISK_LOW_MB = 1024
BUFFER_UNDERRUN_FILL = 0.10

HEALTH_ALERT_KINDS = (Alert.Kind.DATABASE_LOST, Alert.Kind.DISK_LOW, Alert.Kind.BUFFER_UNDERRUN)

_COLUMNS = (
    "station_id",
    "taken_at",
    "cpu_pct",
    "memory_mb",
    "ring_buffer_fill_deck_a",
    "ring_buffer_fill_deck_b",
    "decoder_latency_ms",
    "stream_connected",
    "db_connected",
    "active_encoders",
    "disk_free_mb",
)


class HealthReading(Protocol):
    """One reading as the playout reports it, named like the `HealthSnapshot` fields."""

    taken_at: datetime
    cpu_pct: float
    memory_mb: float
    ring_buffer_fill_deck_a: float
    ring_buffer_fill_deck_b: float
    decoder_latency_ms: float
    stream_connected: bool
    db_connected: bool
    active_encoders: int
    disk_free_mb: float


def health_alert_conditions(reading: HealthReading) -> dict[tuple[str, str], str | None]:
    """Per (kind, subject) of the health rules: the alert message while its condition
    holds in `reading`, None when it does not."""
    fill_a, fill_b = reading.ring_buffer_fill_deck_a, reading.ring_buffer_fill_deck_b
    return {
        (Alert.Kind.DATABASE_LOST, "database"): (
            None if reading.db_connected else "SAM database connection lost"
        ),
        (Alert.Kind.DISK_LOW, "disk"): (
            f"Recording disk space low: {reading.disk_free_mb:.0f} MB free"
            if reading.disk_free_mb < DISK_LOW_MB
            else None
        ),
        (Alert.Kind.BUFFER_UNDERRUN, "deck_a"): (
            f"Buffer underrun risk on Deck A (ring buffer {fill_a:.0%} full)"
            if fill_a < BUFFER_UNDERRUN_FILL
            else None
        ),
        (Alert.Kind.BUFFER_UNDERRUN, "deck_b"): (
            f"Buffer underrun risk on Deck B (ring buffer {fill_b:.0%} full)"
            if fill_b < BUFFER_UNDERRUN_FILL
            else None
        ),
    }


def health_snapshots_record(*, station: Station, readings: Sequence[HealthReading]) -> int:
    """Store `readings` as the station's health snapshots and run the alert rules over the
    new ones in time order. Joins the caller's transaction (the alert webhooks go after
    it commits). Returns how many snapshots were stored."""
    if not readings:
        return 0
    latest_stored = HealthSnapshot.objects.filter(station=station).aggregate(
        latest=Max("taken_at")
    )["latest"]
    insert_rows(
        HealthSnapshot,
        _COLUMNS,
        (
            (station.pk, *(getattr(reading, column) for column in _COLUMNS[1:]))
            for reading in readings
        ),
    )
    fresh = [r for r in readings if latest_stored is None or r.taken_at > latest_stored]
    health_alerts_evaluate(station=station, readings=fresh)
    return len(readings)


def health_alerts_evaluate(*, station: Station, readings: Sequence[HealthReading]) -> None:
    """Open and resolve the health alerts as `readings` (taken in time order) require."""
    open_alerts = set(
        Alert.objects.filter(
            station=station, kind__in=HEALTH_ALERT_KINDS, resolved_at__isnull=True
        ).values_list("kind", "subject")
    )
    for reading in sorted(readings, key=lambda r: r.taken_at):
        for (kind, subject), message in health_alert_conditions(reading).items():
            is_open = (kind, subject) in open_alerts
            if message is not None and not is_open:
                alert_open(
                    station=station,
                    kind=kind,
                    subject=subject,
                    message=message,
                    at=reading.taken_at,
                )
                open_alerts.add((kind, subject))
            elif message is None and is_open:
                alert_resolve(station=station, kind=kind, subject=subject, at=reading.taken_at)
                open_alerts.discard((kind, subject))
