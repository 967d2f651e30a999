"""The playout's push API (SPEC §9.2): who may push, what a batch must contain, and
storing it — atomically and exactly once per batchId.

One compiled msgspec schema decodes and type-checks the body (enums, non-negative finite
numbers, ring-buffer fills 0–1, strings within their columns, ISO 8601 times); the few
rules msgspec cannot express (the item count over all parts, metadata size, times in
range) are checked after it, so no input reaches the database in a shape that would make
it fail (§10). Requesters are stored as keyed hashes only.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from echonest_analytics.bulk import insert_rows
from echonest_analytics.ingestion import IngestRejected, decode_body

from .health import health_snapshots_record
from .log import NewLogEntry, log_entries_write
from .models import (
    BroadcastBatch,
    BroadcastLogEntry,
    LogCategory,
    LogLevel,
    Play,
    Song,
    SongRequest,
    Station,
)
from .secrets import identity_hash, station_ingest_key_matches
from .selectors import listeners_at_starts

MAX_ITEMS = 500
METADATA_MAX_BYTES = 4096
MESSAGE_MAX_LENGTH = 4000
REQUESTER_MAX_LENGTH = 500  # hashed before it is stored
INT4_MAX = 2**31 - 1  # PositiveIntegerField on PostgreSQL

PARTS = ("log", "plays", "requests", "health")


def _column_length(model: type[models.Model], field: str) -> int:
    return model._meta.get_field(field).max_length


def _text(max_length: int, *, min_length: int = 0) -> Any:
    # PostgreSQL text cannot hold NUL; refusing it here keeps it a 400, not a 500.
    return Annotated[
        str, msgspec.Meta(min_length=min_length, max_length=max_length, pattern=r"^[^\x00]*$")
    ]


# An id of the playout or SAM: a string or a non-negative 64-bit integer, stored as text.
ExternalId = (
    _text(_column_length(Song, "external_id"), min_length=1)
    | Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
)
Title = _text(_column_length(Song, "title"))
Artist = _text(_column_length(Song, "artist"))
Album = _text(_column_length(Song, "album"))
Genre = _text(_column_length(Song, "genre"))
EventName = _text(_column_length(BroadcastLogEntry, "event"), min_length=1)
Message = _text(MESSAGE_MAX_LENGTH)
Deck = _text(_column_length(BroadcastLogEntry, "deck"))
EncoderName = _text(_column_length(BroadcastLogEntry, "encoder"))
Requester = _text(REQUESTER_MAX_LENGTH)
Count = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]
Amount = Annotated[float, msgspec.Meta(ge=0)]  # JSON has no NaN; 1e999 is out of range
Fill = Annotated[float, msgspec.Meta(ge=0, le=1)]
Level = Literal[tuple(LogLevel.values)]
Category = Literal[tuple(LogCategory.values)]
RequestStatus = Literal[tuple(SongRequest.Status.values)]


class LogItemIn(msgspec.Struct, rename="camel"):
    ts: datetime
    level: Level
    category: Category
    event: EventName
    message: Message
    metadata: dict[str, Any] | None = None
    deck: Deck | None = None
    song_id: ExternalId | None = None
    encoder: EncoderName | None = None


class PlayItemIn(msgspec.Struct, rename="camel"):
    ts: datetime
    song_id: ExternalId
    title: Title
    artist: Artist
    played_ms: Count
    album: Album | None = None
    genre: Genre | None = None
    duration_ms: Count | None = None
    crossfade: bool = False
    listeners: Count | None = None
    request_id: ExternalId | None = None


class RequestItemIn(msgspec.Struct, rename="camel"):
    id: ExternalId
    song_id: ExternalId
    title: Title
    artist: Artist
    ts: datetime
    status: RequestStatus
    decided_at: datetime | None = None
    played_at: datetime | None = None
    requester: Requester | None = None


class HealthItemIn(msgspec.Struct, rename="camel"):
    # Named like the HealthSnapshot fields, so it is a `health.HealthReading` as it is.
    taken_at: datetime = msgspec.field(name="ts")
    cpu_pct: Amount
    memory_mb: Amount
    ring_buffer_fill_deck_a: Fill
    ring_buffer_fill_deck_b: Fill
    decoder_latency_ms: Amount
    stream_connected: bool
    db_connected: bool
    active_encoders: Count
    disk_free_mb: Amount


def _part(item: type) -> Any:
    return Annotated[list[item], msgspec.Meta(max_length=MAX_ITEMS)]


class PushBatchIn(msgspec.Struct, rename="camel"):
    batch_id: uuid.UUID
    log: _part(LogItemIn) = []
    plays: _part(PlayItemIn) = []
    requests: _part(RequestItemIn) = []
    health: _part(HealthItemIn) = []


_decoder = msgspec.json.Decoder(PushBatchIn)
_encoder = msgspec.json.Encoder()

_TIME_FIELDS = {
    "log": (("ts", "ts"),),
    "plays": (("ts", "ts"),),
    "requests": (("ts", "ts"), ("decided_at", "decidedAt"), ("played_at", "playedAt")),
    "health": (("taken_at", "ts"),),
}


@dataclass(frozen=True)
class PushResult:
    ingested: dict[str, int]
    duplicate: bool = False


def station_push_authenticate(*, stream_key: str, authorization: str) -> Station:
    """The station whose ingest key `authorization` ("Bearer <key>") presents, or a 401.

    An unknown station, a missing or malformed header and a key of another station are
    one and the same 401, so an answer never tells which part was wrong.
    """
    scheme, _, raw_key = authorization.strip().partition(" ")
    station = Station.objects.select_related("stream").filter(stream__key=stream_key).first()
    if (
        scheme.lower() != "bearer"
        or station is None
        or not station_ingest_key_matches(station=station, raw_key=raw_key.strip())
    ):
        raise IngestRejected(
            "A valid ingest key for this station is required: Authorization: Bearer <key>.",
            status=401,
        )
    return station


def _as_utc(value: datetime) -> datetime:
    # A time without an offset is taken as UTC; astimezone raises OverflowError near the
    # ends of the datetime range (year 1, year 9999).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def station_push_decode(body: bytes) -> PushBatchIn:
    """The validated batch with every time in UTC, or IngestRejected naming each fault by
    part, index and wire field (`plays[3].playedMs`)."""
    batch: PushBatchIn = decode_body(body, _decoder)
    total = sum(len(getattr(batch, part)) for part in PARTS)
    if total == 0:
        raise IngestRejected(
            "The batch holds no items: send at least one of log, plays, requests, health.",
            {"items": "at least one item"},
        )
    if total > MAX_ITEMS:
        raise IngestRejected(
            f"Too many items: {total} (at most {MAX_ITEMS} in all parts together).",
            {"items": f"at most {MAX_ITEMS} in all, got {total}"},
        )
    details: dict[str, str] = {}
    for part in PARTS:
        for index, item in enumerate(getattr(batch, part)):
            for attribute, wire_name in _TIME_FIELDS[part]:
                value = getattr(item, attribute)
                if value is None:
                    continue
                try:
                    setattr(item, attribute, _as_utc(value))
                except OverflowError:
                    details[f"{part}[{index}].{wire_name}"] = "out of range"
    for index, entry in enumerate(batch.log):
        if entry.metadata is None:
            continue
        encoded = _encoder.encode(entry.metadata)
        if len(encoded) > METADATA_MAX_BYTES:
            details[f"log[{index}].metadata"] = f"larger than {METADATA_MAX_BYTES} bytes as JSON"
        elif b"\\u0000" in encoded:
            details[f"log[{index}].metadata"] = "must not contain NUL characters"
    if details:
        raise IngestRejected(
            "Invalid items: " + "; ".join(f"{path} {why}" for path, why in details.items()),
            details,
        )
    return batch


def station_push_ingest(
    *, station: Station, body: bytes, received_at: datetime | None = None
) -> PushResult:
    """Store one push batch of `station` in one transaction, exactly once per batchId;
    a batch seen before is answered as it was then and stores nothing."""
    received_at = received_at or timezone.now()
    batch = station_push_decode(body)
    ingested = {part: len(getattr(batch, part)) for part in PARTS}
    with transaction.atomic():
        try:
            with transaction.atomic():
                BroadcastBatch.objects.create(
                    station=station,
                    batch_id=batch.batch_id,
                    received_at=received_at,
                    item_count=sum(ingested.values()),
                    ingested=ingested,
                )
        except IntegrityError:  # stored before (or by a concurrent retry that committed)
            previous = BroadcastBatch.objects.get(station=station, batch_id=batch.batch_id)
            return PushResult(ingested=previous.ingested, duplicate=True)
        song_ids = _songs_upsert(station=station, plays=batch.plays, requests=batch.requests)
        request_ids = _requests_upsert(
            station=station, requests=batch.requests, song_ids=song_ids, plays=batch.plays
        )
        _plays_insert(
            station=station, plays=batch.plays, song_ids=song_ids, request_ids=request_ids
        )
        _log_insert(station=station, entries=batch.log)
        health_snapshots_record(station=station, readings=batch.health)
    return PushResult(ingested=ingested)


def _upsert_by_present_fields(
    model: type[models.Model],
    rows: list[tuple[models.Model, tuple[str, ...]]],
    *,
    unique_fields: list[str],
) -> None:
    """Insert each row or, when it exists, update only the fields the batch sent for it
    (`rows` pairs an unsaved instance with those field names): an absent optional field
    never blanks what an earlier batch or the SAM import stored."""
    groups: dict[tuple[str, ...], list[models.Model]] = defaultdict(list)
    for instance, update_fields in rows:
        groups[update_fields].append(instance)
    for update_fields, instances in sorted(groups.items()):
        # In key order: two batches upserting the same rows then take their row locks in
        # the same order, which keeps concurrent pushes from deadlocking each other.
        instances.sort(key=lambda instance: instance.external_id)
        model.objects.bulk_create(
            instances,
            update_conflicts=True,
            unique_fields=unique_fields,
            update_fields=list(update_fields),
        )


def _songs_upsert(
    *, station: Station, plays: list[PlayItemIn], requests: list[RequestItemIn]
) -> dict[str, int]:
    """Upsert the songs the plays and requests name, by (station, songId); their pks by
    external id. A play's metadata wins over a request's; a later item over an earlier."""
    fields_by_song: dict[str, dict[str, Any]] = {}
    for request in requests:
        fields = fields_by_song.setdefault(str(request.song_id), {})
        fields.update(title=request.title, artist=request.artist)
    for play in plays:
        fields = fields_by_song.setdefault(str(play.song_id), {})
        fields.update(title=play.title, artist=play.artist)
        for name, value in (
            ("album", play.album),
            ("genre", play.genre),
            ("duration_ms", play.duration_ms),
        ):
            if value is not None:
                fields[name] = value
    if not fields_by_song:
        return {}
    _upsert_by_present_fields(
        Song,
        [
            (Song(station=station, external_id=external_id, **fields), tuple(sorted(fields)))
            for external_id, fields in fields_by_song.items()
        ],
        unique_fields=["station", "external_id"],
    )
    return dict(
        Song.objects.filter(station=station, external_id__in=fields_by_song).values_list(
            "external_id", "pk"
        )
    )


def _requests_upsert(
    *,
    station: Station,
    requests: list[RequestItemIn],
    song_ids: dict[str, int],
    plays: list[PlayItemIn],
) -> dict[str, int]:
    """Upsert the requests by (station, id): a known id gets its status, decidedAt,
    playedAt (and requester) updated. Returns the pks of every request the batch names,
    plays' requestIds included, by external id."""
    rows: dict[str, tuple[SongRequest, set[str]]] = {}
    for item in requests:
        external_id = str(item.id)
        instance, sent = rows.get(external_id) or (
            SongRequest(station=station, external_id=external_id),
            {"status"},
        )
        instance.song_id = song_ids[str(item.song_id)]
        instance.requested_at = item.ts
        instance.status = item.status
        if item.decided_at is not None:
            instance.decided_at = item.decided_at
            sent.add("decided_at")
        if item.played_at is not None:
            instance.played_at = item.played_at
            sent.add("played_at")
        if item.requester is not None:
            instance.requester = identity_hash(station=station, ip=item.requester, user_agent="")
            sent.add("requester")
        rows[external_id] = (instance, sent)
    if rows:
        _upsert_by_present_fields(
            SongRequest,
            [(instance, tuple(sorted(sent))) for instance, sent in rows.values()],
            unique_fields=["station", "external_id"],
        )
    named = set(rows) | {str(p.request_id) for p in plays if p.request_id is not None}
    if not named:
        return {}
    return dict(
        SongRequest.objects.filter(station=station, external_id__in=named).values_list(
            "external_id", "pk"
        )
    )


_PLAY_COLUMNS = (
    "station_id",
    "song_id",
    "started_at",
    "played_ms",
    "crossfade",
    "listeners_at_start",
    "request_id",
    "source",
    "encoder_id",
    "external_ref",
)


def _plays_insert(
    *,
    station: Station,
    plays: list[PlayItemIn],
    song_ids: dict[str, int],
    request_ids: dict[str, int],
) -> None:
    # A requestId no request of this station has is kept unlinked rather than refusing
    # the batch: the playout may report the play before (or without) the request.
    if not plays:
        return
    # SPEC §9.3: a play the playout sent without a listener count takes the station total
    # of the latest poll round at or before its start, when that round is fresh.
    polled = listeners_at_starts(
        station=station, instants=[play.ts for play in plays if play.listeners is None]
    )
    insert_rows(
        Play,
        _PLAY_COLUMNS,
        (
            (
                station.pk,
                song_ids[str(play.song_id)],
                play.ts,
                play.played_ms,
                play.crossfade,
                play.listeners if play.listeners is not None else polled.get(play.ts),
                request_ids.get(str(play.request_id)) if play.request_id is not None else None,
                Play.Source.PUSH,
                None,
                "",
            )
            for play in plays
        ),
    )


def _log_insert(*, station: Station, entries: list[LogItemIn]) -> None:
    log_entries_write(
        station=station,
        entries=[
            NewLogEntry(
                timestamp=entry.ts,
                level=entry.level,
                category=entry.category,
                event=entry.event,
                message=entry.message,
                metadata=entry.metadata or {},
                deck=entry.deck or "",
                song_external_id=str(entry.song_id) if entry.song_id is not None else "",
                encoder=entry.encoder or "",
            )
            for entry in entries
        ],
    )
