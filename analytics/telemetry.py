"""Product telemetry batches (SPEC §5.3): what a payload must contain, and storing it.

The body is decoded and type-checked by one compiled msgspec schema; the rules
msgspec cannot express (non-blank event types, text PostgreSQL can store,
metadata size and depth) are checked here, so no input reaches the database
in a shape that would make it fail (§10: no input causes a 5xx).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

from echonest_analytics.ingestion import IngestRejected, decode_body

from . import live_counters
from .models import (
    EVENT_TYPE_MAX_LENGTH,
    FEATURE_MAX_LENGTH,
    URL_MAX_LENGTH,
    USER_ID_MAX_LENGTH,
)
from .services import NewEvent, events_store

MAX_EVENTS_PER_BATCH = 100
MAX_EVENT_AGE = dt.timedelta(days=365)
METADATA_MAX_BYTES = 2048
METADATA_MAX_DEPTH = 8
_DISTANT_PAST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)


class TelemetryEvent(msgspec.Struct, forbid_unknown_fields=False):
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=EVENT_TYPE_MAX_LENGTH)]
    user_id: Annotated[str, msgspec.Meta(max_length=USER_ID_MAX_LENGTH)] | None = None
    feature: Annotated[str, msgspec.Meta(max_length=FEATURE_MAX_LENGTH)] | None = None
    url: Annotated[str, msgspec.Meta(max_length=URL_MAX_LENGTH)] | None = None
    metadata: dict[str, Any] | None = None
    ts: dt.datetime | None = None
    uuid: uuid.UUID | None = None


class TelemetryBatch(msgspec.Struct, forbid_unknown_fields=False):
    events: list[TelemetryEvent]
    batchId: uuid.UUID | None = None  # noqa: N815 — the wire name (SPEC §5)


_decoder = msgspec.json.Decoder(TelemetryBatch)


def telemetry_batch_decode(body: bytes) -> TelemetryBatch:
    """Decode a request body, or raise `IngestRejected` (400) naming what is wrong."""
    batch = decode_body(body, _decoder)
    if len(batch.events) > MAX_EVENTS_PER_BATCH:
        raise IngestRejected(
            f"Too many events: {len(batch.events)} (at most {MAX_EVENTS_PER_BATCH} per batch).",
            {"events": f"at most {MAX_EVENTS_PER_BATCH} events"},
        )
    return batch


def _has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def _check_text(value: str | None, path: str) -> str:
    if value is None:
        return ""
    if "\x00" in value:
        raise IngestRejected(f"Invalid {path}: NUL characters are not allowed.", {path: "NUL"})
    return value


def _check_metadata(value: Any, path: str, depth: int = 0) -> None:
    if depth > METADATA_MAX_DEPTH:
        raise IngestRejected(
            f"Invalid {path}: nested deeper than {METADATA_MAX_DEPTH} levels.",
            {path: "too deep"},
        )
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            _check_metadata(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_metadata(item, f"{path}[{index}]", depth + 1)


def _event_from_wire(
    wire: TelemetryEvent, *, index: int, batch_id: uuid.UUID | None, received_at: dt.datetime
) -> NewEvent:
    at = f"events[{index}]"
    event_type = wire.event_type.strip()
    if not event_type:
        raise IngestRejected(
            f"Invalid {at}.event_type: must not be blank.", {f"{at}.event_type": "blank"}
        )
    if _has_control_characters(event_type):
        raise IngestRejected(
            f"Invalid {at}.event_type: control characters are not allowed.",
            {f"{at}.event_type": "control characters"},
        )
    if event_type in live_counters.RESERVED_EVENT_TYPES:
        raise IngestRejected(
            f"Invalid {at}.event_type: {event_type!r} is reserved.",
            {f"{at}.event_type": "reserved"},
        )
    metadata = wire.metadata or {}
    _check_metadata(metadata, f"{at}.metadata")
    if len(msgspec.json.encode(metadata)) > METADATA_MAX_BYTES:
        raise IngestRejected(
            f"Invalid {at}.metadata: larger than {METADATA_MAX_BYTES} bytes as JSON.",
            {f"{at}.metadata": "too large"},
        )
    occurred_at = wire.ts or received_at
    if occurred_at.tzinfo is None:  # a timestamp without offset is taken as UTC
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    try:
        occurred_at = occurred_at.astimezone(dt.UTC)
    except OverflowError:  # beyond year 1..9999 once shifted to UTC
        occurred_at = received_at if occurred_at.year > 1 else _DISTANT_PAST
    occurred_at = min(occurred_at, received_at)  # a future ts clamps to the receive time
    if wire.uuid is not None:
        event_uuid = wire.uuid
    elif batch_id is not None:
        # A retried batch carries the same batchId, so its events get the same uuids.
        event_uuid = uuid.uuid5(batch_id, str(index))
    else:
        event_uuid = uuid.uuid4()
    return NewEvent(
        uuid=event_uuid,
        event_type=event_type,
        occurred_at=occurred_at,
        user_id=_check_text(wire.user_id, f"{at}.user_id").strip(),
        feature=_check_text(wire.feature, f"{at}.feature").strip(),
        url=_check_text(wire.url, f"{at}.url"),
        metadata=metadata,
    )


def telemetry_batch_ingest(*, batch: TelemetryBatch, received_at: dt.datetime) -> int:
    """Validate and store one batch atomically; return `logged` (SPEC §5.3).

    `logged` counts the batch's distinct events that are stored once the call
    returns, whether this call or an earlier try stored them: a retried batch
    gets the same answer as the first try and stores nothing twice. Events over
    365 days old are ignored and not counted.
    """
    received_at = received_at.astimezone(dt.UTC)
    oldest = received_at - MAX_EVENT_AGE
    events: dict[uuid.UUID, NewEvent] = {}
    for index, wire in enumerate(batch.events):
        event = _event_from_wire(wire, index=index, batch_id=batch.batchId, received_at=received_at)
        if event.occurred_at < oldest:
            continue
        events.setdefault(event.uuid, event)
    events_store(events=list(events.values()), received_at=received_at)
    return len(events)
