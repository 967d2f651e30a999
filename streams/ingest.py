"""Playback event ingestion (SPEC §5.1): decode, validate, enrich, store one batch atomically.

This is the hot path. One compiled msgspec schema decodes and type-checks the
batch; the whole batch — its exactly-once key, the viewer-session updates and the
events (binary COPY on PostgreSQL) — is written in one transaction.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from django.conf import settings
from django.db import connection, transaction

from echonest_analytics.bulk import insert_rows
from echonest_analytics.ingestion import IngestRejected, decode_body

from .live_viewers import live_viewer_seen
from .models import Device, PlaybackBatch, PlaybackEvent, Stream
from .viewer_sessions import TimedEvent, viewer_sessions_extend

MAX_EVENTS_PER_BATCH = 100
MAX_EXTRA_BYTES = 2048

EventType = Literal["play", "pause", "heartbeat", "ended", "error", "buffer_start", "buffer_end"]


class PlaybackEventIn(msgspec.Struct):
    type: EventType
    videoTime: Annotated[float, msgspec.Meta(ge=0)] | None = None  # noqa: N815 (wire name)
    ts: datetime | None = None
    extra: dict[str, Any] | None = None


class PlaybackBatchIn(msgspec.Struct):
    streamId: Annotated[  # noqa: N815
        str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[-a-zA-Z0-9_]+\Z")
    ]
    clientId: Annotated[  # noqa: N815
        str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+\Z")
    ]
    events: Annotated[
        list[PlaybackEventIn], msgspec.Meta(min_length=1, max_length=MAX_EVENTS_PER_BATCH)
    ]
    sentAt: datetime | None = None  # noqa: N815
    batchId: uuid.UUID | None = None  # noqa: N815


_decoder = msgspec.json.Decoder(PlaybackBatchIn)
_encoder = msgspec.json.Encoder()

_EVENT_COLUMNS = (
    "stream_id",
    "client_id",
    "session_id",
    "type",
    "video_time",
    "occurred_at",
    "received_at",
    "country",
    "device",
    "extra",
)


@dataclass(frozen=True)
class IngestResult:
    ingested: int


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _occurred_at(ts: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Client time corrected for clock skew, never in the future."""
    if ts is None:
        return received_at
    ts = _as_utc(ts)
    occurred = received_at + (ts - _as_utc(sent_at)) if sent_at is not None else ts
    return min(occurred, received_at)


def playback_batch_decode(
    body: bytes, *, received_at: datetime
) -> tuple[PlaybackBatchIn, list[datetime]]:
    """The validated batch and each event's corrected time, or IngestRejected naming the fault."""
    batch: PlaybackBatchIn = decode_body(body, _decoder)
    details: dict[str, str] = {}
    occurred: list[datetime] = []
    oldest = received_at - timedelta(days=settings.PLAYBACK_EVENT_RETENTION_DAYS)
    for index, event in enumerate(batch.events):
        if event.videoTime is not None and not math.isfinite(event.videoTime):
            details[f"events[{index}].videoTime"] = "must be a finite number >= 0"
        if event.extra is not None:
            encoded = _encoder.encode(event.extra)
            if len(encoded) > MAX_EXTRA_BYTES:
                details[f"events[{index}].extra"] = f"larger than {MAX_EXTRA_BYTES} bytes"
            elif b"\\u0000" in encoded:
                details[f"events[{index}].extra"] = "must not contain NUL characters"
        try:
            when = _occurred_at(event.ts, batch.sentAt, received_at)
        except (OverflowError, ValueError):
            details[f"events[{index}].ts"] = "out of range"
            continue
        if when < oldest:
            details[f"events[{index}].ts"] = (
                f"older than the {settings.PLAYBACK_EVENT_RETENTION_DAYS}-day retention"
            )
        occurred.append(when)
    if details:
        raise IngestRejected(
            "Invalid events: " + "; ".join(f"{k} {v}" for k, v in details.items()), details
        )
    return batch, occurred


def playback_batch_ingest(
    *, body: bytes, country: str, device: str, received_at: datetime | None = None
) -> IngestResult:
    """Store one batch of playback events exactly once, or raise IngestRejected."""
    received_at = received_at or datetime.now(UTC)
    batch, occurred = playback_batch_decode(body, received_at=received_at)
    timed = sorted(
        (
            TimedEvent(at=at, type=event.type, index=i)
            for i, (event, at) in enumerate(zip(batch.events, occurred, strict=True))
        ),
        key=lambda e: (e.at, e.index),
    )
    with transaction.atomic():
        claim = _batch_claim(
            stream_key=batch.streamId,
            batch_id=batch.batchId,
            client_id=batch.clientId,
            event_count=len(timed),
            first_event_at=timed[0].at,
            last_event_at=timed[-1].at,
            received_at=received_at,
        )
        if claim is None:
            previous = (
                PlaybackBatch.objects.filter(batch_id=batch.batchId).first()
                if batch.batchId is not None
                else None
            )
            if previous is None:
                raise IngestRejected(
                    f"Unknown streamId {batch.streamId!r}.",
                    {"streamId": "no stream has this key"},
                )
            return IngestResult(ingested=previous.event_count)
        stream_id = claim
        session_ids = viewer_sessions_extend(
            stream_id=stream_id,
            client_id=batch.clientId,
            events=timed,
            country=country,
            device=device,
        )
        events = batch.events
        insert_rows(
            PlaybackEvent,
            _EVENT_COLUMNS,
            (
                (
                    stream_id,
                    batch.clientId,
                    session_id,
                    event.type,
                    events[event.index].videoTime,
                    event.at,
                    received_at,
                    country,
                    device,
                    events[event.index].extra,
                )
                for event, session_id in zip(timed, session_ids, strict=True)
            ),
        )
        if device != Device.BOT:
            # After commit, best effort: a Redis outage never fails the batch (SPEC §10).
            seen_at = timed[-1].at
            transaction.on_commit(
                lambda: live_viewer_seen(
                    stream_id=stream_id, client_id=batch.clientId, seen_at=seen_at
                )
            )
    return IngestResult(ingested=len(timed))


_BATCH_COLUMNS = (
    "batch_id",
    "client_id",
    "event_count",
    "first_event_at",
    "last_event_at",
    "received_at",
)


def _batch_claim(*, stream_key: str, **values: Any) -> int | None:
    """Record the batch for the stream with this key, in one statement; its stream id.

    None when nothing was written: the key names no stream, or the batchId was
    stored before (a retry) — the caller tells which.
    """
    quote = connection.ops.quote_name
    table, streams = quote(PlaybackBatch._meta.db_table), quote(Stream._meta.db_table)
    field = {f.column: f for f in PlaybackBatch._meta.concrete_fields}
    params = [field[name].get_db_prep_save(values[name], connection) for name in _BATCH_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(_BATCH_COLUMNS)}, stream_id, pending) "
            f"SELECT {', '.join(['%s'] * len(_BATCH_COLUMNS))}, s.id, TRUE FROM {streams} s "
            "WHERE s.key = %s ON CONFLICT (batch_id) DO NOTHING RETURNING stream_id",
            [*params, stream_key],
        )
        row = cursor.fetchone()
    return row[0] if row else None
