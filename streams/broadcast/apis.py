"""HTTP endpoints of broadcast analytics. Thin: each calls one service or selector."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from echonest_analytics.ingestion import (
    ACCEPTED_CONTENT_TYPES,
    BatchIngestionViewSet,
    read_body,
)

from .models import LogCategory, LogLevel, SongRequest
from .push import MAX_ITEMS, station_push_authenticate, station_push_ingest

_error = inline_serializer(
    "BroadcastIngestError",
    {"error": serializers.CharField(), "details": serializers.DictField(required=False)},
)
_song_id = serializers.CharField(help_text="The playout's song id (a string or an integer).")
_push_batch = inline_serializer(
    "BroadcastPushBatch",
    {
        "batchId": serializers.UUIDField(help_text="Exactly-once key: a retry sends the same."),
        "log": inline_serializer(
            "BroadcastPushLogItem",
            {
                "ts": serializers.DateTimeField(),
                "level": serializers.ChoiceField(LogLevel.values),
                "category": serializers.ChoiceField(LogCategory.values),
                "event": serializers.CharField(max_length=100),
                "message": serializers.CharField(allow_blank=True),
                "metadata": serializers.DictField(required=False, help_text="At most 4 KiB."),
                "deck": serializers.CharField(required=False, max_length=16),
                "songId": serializers.CharField(required=False),
                "encoder": serializers.CharField(required=False, max_length=200),
            },
            many=True,
            required=False,
        ),
        "plays": inline_serializer(
            "BroadcastPushPlay",
            {
                "ts": serializers.DateTimeField(help_text="When the song started."),
                "songId": _song_id,
                "title": serializers.CharField(max_length=500, allow_blank=True),
                "artist": serializers.CharField(max_length=500, allow_blank=True),
                "album": serializers.CharField(required=False, max_length=500),
                "genre": serializers.CharField(required=False, max_length=200),
                "durationMs": serializers.IntegerField(required=False, min_value=0),
                "playedMs": serializers.IntegerField(min_value=0),
                "crossfade": serializers.BooleanField(required=False),
                "listeners": serializers.IntegerField(required=False, min_value=0),
                "requestId": serializers.CharField(required=False),
            },
            many=True,
            required=False,
        ),
        "requests": inline_serializer(
            "BroadcastPushRequest",
            {
                "id": serializers.CharField(help_text="The same id again updates the request."),
                "songId": _song_id,
                "title": serializers.CharField(max_length=500, allow_blank=True),
                "artist": serializers.CharField(max_length=500, allow_blank=True),
                "ts": serializers.DateTimeField(help_text="When it was requested."),
                "status": serializers.ChoiceField(SongRequest.Status.values),
                "decidedAt": serializers.DateTimeField(required=False),
                "playedAt": serializers.DateTimeField(required=False),
                "requester": serializers.CharField(
                    required=False, help_text="IP or session; stored only as a keyed hash."
                ),
            },
            many=True,
            required=False,
        ),
        "health": inline_serializer(
            "BroadcastPushHealth",
            {
                "ts": serializers.DateTimeField(),
                "cpuPct": serializers.FloatField(min_value=0),
                "memoryMb": serializers.FloatField(min_value=0),
                "ringBufferFillDeckA": serializers.FloatField(min_value=0, max_value=1),
                "ringBufferFillDeckB": serializers.FloatField(min_value=0, max_value=1),
                "decoderLatencyMs": serializers.FloatField(min_value=0),
                "streamConnected": serializers.BooleanField(),
                "dbConnected": serializers.BooleanField(),
                "activeEncoders": serializers.IntegerField(min_value=0),
                "diskFreeMb": serializers.FloatField(min_value=0),
            },
            many=True,
            required=False,
        ),
    },
)
_ingested = inline_serializer(
    "BroadcastPushIngested",
    {
        "ingested": inline_serializer(
            "BroadcastPushCounts",
            {part: serializers.IntegerField() for part in ("log", "plays", "requests", "health")},
        )
    },
)


class StationPushIngestApi(BatchIngestionViewSet):
    """POST /api/broadcast/<station>/ingest — the playout pushes log, plays, requests and
    health with the station's ingest key."""

    metrics_endpoint = "broadcast"

    @extend_schema(
        operation_id="broadcast_push_ingest",
        summary="Push a batch of broadcast data (playout → EchoNest)",
        description=(
            "Authorization: Bearer <the station's ingest key> (made by "
            "`manage.py broadcast_station_key <stream key>`). Every part is optional, "
            f"at least 1 and at most {MAX_ITEMS} items in all; body at most 1 MiB. The whole "
            "batch is stored or nothing is; a repeated batchId is answered as before and "
            "stored no second time. A request with a known id updates its status."
        ),
        parameters=[
            OpenApiParameter(
                "station", OpenApiTypes.STR, OpenApiParameter.PATH, description="Stream key."
            )
        ],
        # Per media type: the view has no DRF parsers, so none would be inferred.
        request={media_type: _push_batch for media_type in sorted(ACCEPTED_CONTENT_TYPES)},
        responses={
            202: _ingested,
            400: OpenApiResponse(_error, description="The batch is invalid; nothing stored."),
            401: OpenApiResponse(_error, description="No valid ingest key for this station."),
            413: OpenApiResponse(_error, description="Body over 1 MiB."),
            415: OpenApiResponse(_error, description="Not JSON or text/plain."),
            503: OpenApiResponse(_error, description="Database unavailable; retry."),
        },
        examples=[
            OpenApiExample(
                "Batch",
                request_only=True,
                value={
                    "batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b",
                    "log": [
                        {
                            "ts": "2026-11-21T10:00:00Z",
                            "level": "info",
                            "category": "audio",
                            "event": "track_loaded",
                            "message": "Deck A: Nightcall",
                            "deck": "a",
                            "songId": 4711,
                        }
                    ],
                    "plays": [
                        {
                            "ts": "2026-11-21T10:00:02Z",
                            "songId": 4711,
                            "title": "Nightcall",
                            "artist": "Kavinsky",
                            "genre": "Synthwave",
                            "durationMs": 258000,
                            "playedMs": 251000,
                            "crossfade": True,
                            "requestId": "r-93",
                        }
                    ],
                    "requests": [
                        {
                            "id": "r-93",
                            "songId": 4711,
                            "title": "Nightcall",
                            "artist": "Kavinsky",
                            "ts": "2026-11-21T09:52:00Z",
                            "status": "played",
                            "decidedAt": "2026-11-21T09:53:10Z",
                            "playedAt": "2026-11-21T10:00:02Z",
                            "requester": "203.0.113.7",
                        }
                    ],
                    "health": [
                        {
                            "ts": "2026-11-21T10:00:05Z",
                            "cpuPct": 12.5,
                            "memoryMb": 245,
                            "ringBufferFillDeckA": 0.87,
                            "ringBufferFillDeckB": 0.92,
                            "decoderLatencyMs": 3.1,
                            "streamConnected": True,
                            "dbConnected": True,
                            "activeEncoders": 3,
                            "diskFreeMb": 48000,
                        }
                    ],
                },
            ),
            OpenApiExample(
                "Accepted",
                response_only=True,
                status_codes=["202"],
                value={"ingested": {"log": 1, "plays": 1, "requests": 1, "health": 1}},
            ),
            OpenApiExample(
                "Rejected",
                response_only=True,
                status_codes=["400"],
                value={
                    "error": "Invalid plays[3].playedMs: Expected `int` >= 0",
                    "details": {"plays[3].playedMs": "Expected `int` >= 0"},
                },
            ),
        ],
    )
    def create(self, request, station: str):
        pushing_station = station_push_authenticate(
            stream_key=station, authorization=request.META.get("HTTP_AUTHORIZATION", "")
        )
        result = station_push_ingest(
            station=pushing_station,
            body=read_body(request, max_bytes=settings.BROADCAST_INGEST_MAX_BODY_BYTES),
        )
        return Response({"ingested": result.ingested}, status=status.HTTP_202_ACCEPTED)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = 'Bearer realm="broadcast-ingest"'
        return response
