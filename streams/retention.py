"""Retention of raw playback tables (SPEC §7 retention purge).

A raw `PlaybackEvent` goes only once it is older than PLAYBACK_EVENT_RETENTION_DAYS
(whole UTC days: a run on day T removes events of days before T − N) AND its day is
aggregated for good. "Aggregated" means, precisely:

1. the event's session is final: a `ViewerSession` of the same stream and client whose
   [started_at, last_event_at] holds the event (the authoritative session, see
   `PlaybackEvent.session`) is `finalized`, and
2. that session ended more than SESSION_TIMEOUT before the cutoff. Ingestion refuses
   events older than the retention, so no event accepted from now on can fall within
   SESSION_TIMEOUT of it: the aggregator will never widen a run over it and rebuild it
   from the (purged) raw rows, and its `ViewerSessionDay`/`StreamStats` rows stand, and
3. no pending `PlaybackBatch` of that stream and client has events before the cutoff
   (the aggregator has claimed every batch that could still touch the session).

The session, its days and the `StreamStats` computed from them are what the aggregator
made of the events, so they stay (a `--all` rebuild only rebuilds what still has raw
events, and never reaches a session ended a whole SESSION_TIMEOUT before them).
Events of an unfinished, recent-ending or pending session stay until a later run.

`retention_purge` runs the playback and the product purge (`analytics/retention.py`)
together, step after step, for the `purge_analytics` command and the daily task.

On PostgreSQL a month partition that ends before the cutoff and holds only purgeable
events is dropped whole (`playback_partitions_drop`) before the batches run; the months
at the edges (and the default partition) are deleted in batches by the same rule.

`PlaybackBatch` rows — retry keys and the aggregator's work list — go once received
before the same cutoff and no longer pending; a retry that old would be refused anyway.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Exists, Model, OuterRef, QuerySet

from analytics.retention import product_partitions_drop, product_purge
from echonest_analytics.days import day_start
from echonest_analytics.partitions import MonthPartition, expired_month_partitions_drop
from echonest_analytics.purge import (
    BATCH_SIZE,
    PurgeResult,
    purge_step,
    purge_until_done,
    retention_cutoff_day,
    table_name,
)

from .models import PlaybackBatch, PlaybackEvent, ViewerSession

logger = logging.getLogger(__name__)


def playback_cutoff(*, now: dt.datetime | None = None) -> dt.datetime:
    """Playback rows before this instant are older than the retention."""
    return day_start(retention_cutoff_day(days=settings.PLAYBACK_EVENT_RETENTION_DAYS, now=now))


def _aggregated_for_good(cutoff: dt.datetime) -> tuple[Exists, Exists]:
    """(the outer event's session is final and ended long enough before `cutoff`, a
    pending batch of its stream and client still has events before `cutoff`)."""
    session_ended_before = cutoff - dt.timedelta(seconds=settings.SESSION_TIMEOUT)
    final_session = ViewerSession.objects.filter(
        stream_id=OuterRef("stream_id"),
        client_id=OuterRef("client_id"),
        started_at__lte=OuterRef("occurred_at"),
        last_event_at__gte=OuterRef("occurred_at"),
        last_event_at__lt=session_ended_before,
        finalized=True,
    )
    pending_batch = PlaybackBatch.objects.filter(
        pending=True,
        stream_id=OuterRef("stream_id"),
        client_id=OuterRef("client_id"),
        first_event_at__lt=cutoff,
    )
    return Exists(final_session), Exists(pending_batch)


def playback_events_purgeable(*, now: dt.datetime | None = None) -> QuerySet[PlaybackEvent]:
    """Raw playback events older than the retention whose sessions are aggregated for good."""
    cutoff = playback_cutoff(now=now)
    final_session, pending_batch = _aggregated_for_good(cutoff)
    return (
        PlaybackEvent.objects.filter(occurred_at__lt=cutoff)
        .filter(final_session)
        .exclude(pending_batch)
    )


def playback_partitions_drop(
    *, now: dt.datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Drop each month partition of `PlaybackEvent` that ends before the cutoff and whose
    every event is purgeable (the rule above, checked over the whole month once writes to
    it are locked out); returns the rows dropped (with `dry_run`, that would be). The other months keep batched deletes."""
    cutoff = playback_cutoff(now=now)
    final_session, _ = _aggregated_for_good(cutoff)

    def every_event_purgeable(partition: MonthPartition) -> bool:
        month = PlaybackEvent.objects.filter(
            occurred_at__gte=partition.lower, occurred_at__lt=partition.upper
        )
        # Two questions rather than one OR, so each runs as one join: pending batches are
        # few (asked from their side), and the sessions are anti-joined to the month.
        pending_in_month = PlaybackBatch.objects.filter(
            pending=True, first_event_at__lt=cutoff
        ).filter(
            Exists(month.filter(stream_id=OuterRef("stream_id"), client_id=OuterRef("client_id")))
        )
        if pending_in_month.exists():
            return False
        return not month.filter(~final_session).exists()

    dropped = expired_month_partitions_drop(
        PlaybackEvent._meta.db_table,
        before=cutoff,
        still_droppable=every_event_purgeable,
        dry_run=dry_run,
    )
    return {table_name(PlaybackEvent): dropped} if dropped else {}


def playback_batches_purgeable(*, now: dt.datetime | None = None) -> QuerySet[PlaybackBatch]:
    return PlaybackBatch.objects.filter(received_at__lt=playback_cutoff(now=now), pending=False)


def playback_purge(
    *, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, dry_run: bool = False
) -> PurgeResult:
    """One bounded purge step over the raw playback tables (see the module docstring).

    With `dry_run`, nothing changes: `deleted` holds how many rows would go in total.
    """
    purgeable: list[tuple[type[Model], QuerySet]] = [
        (PlaybackEvent, playback_events_purgeable(now=now)),
        (PlaybackBatch, playback_batches_purgeable(now=now)),
    ]
    return purge_step(purgeable, batch_size=batch_size, dry_run=dry_run)


def retention_purge(
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    max_seconds: float | None = None,
) -> PurgeResult:
    """Purge every analytics table (playback and product) until nothing old is left.

    Each step deletes at most `batch_size` rows per table in its own transaction, so
    locks stay short. With `max_seconds`, stops after the step that crosses it and says
    `has_more` when rows remain (the task then re-enqueues itself). With `dry_run`,
    counts what would go and changes nothing.
    """
    return purge_until_done(
        (playback_purge, product_purge),
        name="retention purge",
        now=now,
        batch_size=batch_size,
        dry_run=dry_run,
        max_seconds=max_seconds,
        partition_drops=(playback_partitions_drop, product_partitions_drop),
    )
