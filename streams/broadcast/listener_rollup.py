"""The listener rollup (SPEC §9.3, §11): `ListenerHour` rows per station-local hour, the one
writer of them.

An hour is rolled up once it is over and settled (`SETTLE_SECONDS` later, when the poll
rounds started in it have all been written): its held totals per encoder and per poll
round, computed by the same SQL the raw reads use (`selectors.raw_hour_totals`), so a day
read from the rollup gives the numbers the raw snapshots give. Hours are final once
written; snapshots are written as they are polled, never into a past hour.

`listener_hours_refresh` goes on from the last rolled-up hour (or the station's first
snapshot), a local day at a time. The poller calls it after each round with a small
`max_hours`, so the rollup trails the present by about an hour; the hourly
`broadcast_refresh` catches up whatever is left (a first run backfills the history). Both
may roll up the same hour: the rows are the same and a conflicting insert is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from .models import ListenerHour, ListenerSnapshot, Station
from .selectors import local_date, local_day_bounds, local_hour_bounds, raw_hour_totals
from .station_selectors import station_encoders

logger = logging.getLogger(__name__)

SETTLE_SECONDS = 120  # a poll round's snapshots are written within its 30 s
POLLER_MAX_HOURS = 2  # per station and poll round: keeps a round short


def _first_snapshot_at(*, encoder_ids: list[int]) -> dt.datetime | None:
    """The earliest round_at of the encoders' snapshots (one index probe per encoder)."""
    firsts = [
        ListenerSnapshot.objects.filter(encoder_id=encoder_id)
        .order_by("round_at")
        .values_list("round_at", flat=True)
        .first()
        for encoder_id in encoder_ids
    ]
    firsts = [first for first in firsts if first is not None]
    return min(firsts) if firsts else None


def _resume_at(*, station: Station, encoder_ids: list[int]) -> dt.datetime | None:
    """Where rolling up goes on: the end of the last rolled-up hour, or the start of the
    local day of the first snapshot; None when there is nothing to roll up."""
    last_end = (
        ListenerHour.objects.filter(station=station, encoder__isnull=True)
        .order_by("-start")
        .values_list("end", flat=True)
        .first()
    )
    if last_end is not None:
        return last_end
    first = _first_snapshot_at(encoder_ids=encoder_ids)
    if first is None:
        return None
    return local_day_bounds(station=station, day=local_date(station=station, at=first))[0]


def listener_hours_refresh(
    *, station: Station, now: dt.datetime | None = None, max_hours: int | None = None
) -> int:
    """Roll up the station's settled hours not rolled up yet (at most `max_hours`); returns
    how many hours it rolled up."""
    now = now or timezone.now()
    encoder_ids = [encoder.pk for encoder in station_encoders(station=station)]
    if not encoder_ids:
        return 0
    resume_at = _resume_at(station=station, encoder_ids=encoder_ids)
    if resume_at is None:
        return 0
    settled = now - dt.timedelta(seconds=SETTLE_SECONDS)
    day = local_date(station=station, at=resume_at)
    done = 0
    while max_hours is None or done < max_hours:
        if local_day_bounds(station=station, day=day)[0] >= settled:
            break
        hours = [
            (start, end)
            for start, end in local_hour_bounds(station=station, day=day)
            if start >= resume_at and end <= settled
        ]
        if max_hours is not None:
            hours = hours[: max_hours - done]
        if hours:
            _hours_write(station=station, encoder_ids=encoder_ids, hours=hours, now=now)
            done += len(hours)
        day += dt.timedelta(days=1)
    return done


def _hours_write(
    *,
    station: Station,
    encoder_ids: list[int],
    hours: list[tuple[dt.datetime, dt.datetime]],
    now: dt.datetime,
) -> None:
    totals = raw_hour_totals(encoder_ids=encoder_ids, hours=hours)
    rows = []
    for start, end in hours:
        for encoder_id in [*encoder_ids, None]:
            held = totals.get((start, encoder_id or 0))
            if held is None and encoder_id is not None:
                continue  # nothing held for this encoder; the station row marks the hour
            rows.append(
                ListenerHour(
                    station=station,
                    encoder_id=encoder_id,
                    start=start,
                    end=end,
                    observed_seconds=held.observed_seconds if held else 0.0,
                    listener_seconds=held.listener_seconds if held else 0.0,
                    peak=held.peak if held else None,
                )
            )
    with transaction.atomic():
        ListenerHour.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


def listener_hours_follow(*, stations: list[Station], now: dt.datetime) -> None:
    """After a poll round: roll up the hours that just settled. A failure is logged and
    the next round (or the hourly refresh) catches up; it never fails the round."""
    for station in stations:
        try:
            listener_hours_refresh(station=station, now=now, max_hours=POLLER_MAX_HOURS)
        except Exception:
            logger.exception("rolling up the listener hours of %s failed", station.key)
