"""Playback event ingestion (SPEC §5.1): decode, validate, enrich, store one batch atomically.

This is the hot path. One compiled msgspec schema decodes and type-checks the
batch; the whole batch — its exactly-once key, the viewer-session updates and the
events (binary COPY on PostgreSQL) — is written in one transaction. On PostgreSQL
that is three statements on one server-side-binding cursor: the claim of the batch id
folded with the locking read of the client's sessions, the session write, the COPY.
"""

from __future__ import annotations

import math
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from django.conf import settings
from django.db import connection, transaction

from echonest_analytics.bulk import copy_rows, insert_rows
from echonest_analytics.ingestion import (
    IngestRejected,
    decode_body,
    quotes_account_for,
    refuse_duplicate_keys,
)

from .live_viewers import live_viewer_may_count, live_viewer_seen
from .models import Device, PlaybackBatch, PlaybackEvent, Stream
from .viewer_sessions import (
    sessions_locked,
    sessions_locking_sql,
    sessions_window,
    viewer_sessions_extend,
)

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
    if ts.tzinfo is not UTC:
        ts = _as_utc(ts)
    occurred = received_at + (ts - sent_at) if sent_at is not None else ts
    return occurred if occurred < received_at else received_at


def playback_batch_decode(
    body: bytes, *, received_at: datetime
) -> tuple[PlaybackBatchIn, list[datetime]]:
    """The validated batch and each event's corrected time, or IngestRejected naming the fault."""
    batch: PlaybackBatchIn = decode_body(body, _decoder, check_duplicates=False)
    details: dict[str, str] = {}
    occurred: list[datetime] = []
    append = occurred.append
    oldest = received_at - timedelta(days=settings.PLAYBACK_EVENT_RETENTION_DAYS)
    sent_at = batch.sentAt
    if sent_at is not None:
        sent_at = _as_utc(sent_at)
    # Quote characters the decoded batch accounts for (`quotes_account_for`): streamId,
    # clientId (key and value), the events key, sentAt and batchId when given.
    quotes = 10 + 4 * (batch.sentAt is not None) + 4 * (batch.batchId is not None)
    for index, event in enumerate(batch.events):
        quotes += 4  # "type": "…"
        video_time = event.videoTime
        if video_time is not None:
            quotes += 2
            if not math.isfinite(video_time):
                details[f"events[{index}].videoTime"] = "must be a finite number >= 0"
        if event.extra is not None:
            encoded = _encoder.encode(event.extra)
            quotes += 2 + encoded.count(b'"')
            if len(encoded) > MAX_EXTRA_BYTES:
                details[f"events[{index}].extra"] = f"larger than {MAX_EXTRA_BYTES} bytes"
            elif b"\\u0000" in encoded:
                details[f"events[{index}].extra"] = "must not contain NUL characters"
        if event.ts is not None:
            quotes += 4
        try:
            when = _occurred_at(event.ts, sent_at, received_at)
        except (OverflowError, ValueError):
            details[f"events[{index}].ts"] = "out of range"
            continue
        if when < oldest:
            details[f"events[{index}].ts"] = (
                f"older than the {settings.PLAYBACK_EVENT_RETENTION_DAYS}-day retention"
            )
        append(when)
    if not quotes_account_for(body, quotes):  # a key may repeat: the exact check decides
        refuse_duplicate_keys(body)
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
    events = batch.events
    times = sorted(occurred)
    if times == occurred:  # as sent (the usual case): no reordering
        order = range(len(events))
    else:  # by time, ties in the order sent
        order = sorted(range(len(events)), key=occurred.__getitem__)
    types = [events[i].type for i in order]
    client_id = batch.clientId
    lo, hi = sessions_window(times)
    claim = {
        "batch_id": batch.batchId,
        "client_id": client_id,
        "event_count": len(times),
        "first_event_at": times[0],
        "last_event_at": times[-1],
        "received_at": received_at,
    }
    with transaction.atomic(), _ingest_cursor() as cursor:
        if connection.vendor == "postgresql":
            stream_id, sessions = _claim_and_lock(
                cursor, stream_key=batch.streamId, claim=claim, lo=lo, hi=hi
            )
        else:
            stream_id = _batch_claim(stream_key=batch.streamId, **claim)
            sessions = (
                sessions_locked(cursor, stream_id=stream_id, client_id=client_id, lo=lo, hi=hi)
                if stream_id is not None
                else []
            )
        if stream_id is None:
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
        session_ids = viewer_sessions_extend(
            cursor,
            stream_id=stream_id,
            client_id=client_id,
            times=times,
            types=types,
            rows=sessions,
            country=country,
            device=device,
        )
        rows = (
            (
                stream_id,
                client_id,
                session_id,
                event_type,
                events[i].videoTime,
                at,
                received_at,
                country,
                device,
                events[i].extra,
            )
            for i, at, event_type, session_id in zip(order, times, types, session_ids, strict=True)
        )
        if connection.vendor == "postgresql":
            copy_rows(cursor, PlaybackEvent, _EVENT_COLUMNS, rows)
        else:
            insert_rows(PlaybackEvent, _EVENT_COLUMNS, rows)
        seen_at = times[-1]
        if device != Device.BOT and live_viewer_may_count(seen_at=seen_at, at=received_at):
            # After commit, best effort: a Redis outage never fails the batch (SPEC §10).
            transaction.on_commit(
                lambda: live_viewer_seen(stream_id=stream_id, client_id=client_id, seen_at=seen_at)
            )
    return IngestResult(ingested=len(times))


@contextmanager
def _ingest_cursor():
    """The cursor a batch is written with. On PostgreSQL a server-side-binding psycopg
    cursor on Django's connection (its errors reach callers as Django's, so an outage is
    a 503); elsewhere Django's. Its statements are not prepared: Django turns psycopg's
    automatic preparation off, and preparing these three bought nothing measurable
    (docs/playback-analytics.md)."""
    with connection.cursor() as django_cursor:  # connects, and health-checks if configured
        if connection.vendor != "postgresql":
            yield django_cursor
            return
        import psycopg

        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            yield cursor


_BATCH_COLUMNS = (
    "batch_id",
    "client_id",
    "event_count",
    "first_event_at",
    "last_event_at",
    "received_at",
)
_BATCH_CASTS = ("uuid", "varchar", "integer", "timestamptz", "timestamptz", "timestamptz")

# PostgreSQL: claim the batch id and lock the client's sessions in one statement. No row:
# nothing claimed (unknown stream, or a batch id stored before); else the stream id and the
# sessions that may take the batch's events (all NULL when there are none yet).
_CLAIM_AND_LOCK = (
    f"WITH claim AS (INSERT INTO {PlaybackBatch._meta.db_table} "
    f"({', '.join(_BATCH_COLUMNS)}, stream_id, pending) "
    f"SELECT {', '.join(f'%s::{cast}' for cast in _BATCH_CASTS)}, s.id, TRUE "
    f"FROM {Stream._meta.db_table} s WHERE s.key = %s "
    "ON CONFLICT (batch_id) DO NOTHING RETURNING stream_id) "
    "SELECT claim.stream_id, v.* FROM claim LEFT JOIN LATERAL ("
    f"{sessions_locking_sql('claim.stream_id', lock=True)}) v ON TRUE ORDER BY v.started_at"
)


def _claim_and_lock(
    cursor, *, stream_key: str, claim: dict[str, Any], lo: datetime, hi: datetime
) -> tuple[int | None, list[tuple]]:
    cursor.execute(
        _CLAIM_AND_LOCK,
        [*(claim[name] for name in _BATCH_COLUMNS), stream_key, claim["client_id"], lo, hi],
    )
    rows = cursor.fetchall()
    if not rows:
        return None, []
    return rows[0][0], [row[1:] for row in rows if row[1] is not None]


def _batch_claim(*, stream_key: str, **values: Any) -> int | None:
    """Record the batch for the stream with this key, in one statement; its stream id
    (SQLite: the sessions are read in a second one).

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
