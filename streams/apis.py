"""HTTP endpoints of the playback side. Thin: each calls one service or selector."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from echonest_analytics.ingestion import BatchIngestionViewSet, read_body

from .enrichment import country_from_request, device_from_user_agent
from .ingest import playback_batch_ingest
from .selectors import stream_info

_error = inline_serializer(
    "IngestError", {"error": serializers.CharField(), "details": serializers.DictField()}
)


class PlaybackEventIngestApi(BatchIngestionViewSet):
    """POST /analytics/events — anonymous batched player events."""

    @extend_schema(
        operation_id="playback_events_ingest",
        summary="Ingest a batch of playback events",
        description=(
            "Anonymous. Accepts application/json or text/plain (sendBeacon). Up to 100 events; "
            "the whole batch is stored or nothing is. A repeated batchId is answered as before "
            "and stored no second time."
        ),
        request=inline_serializer(
            "PlaybackBatch",
            {
                "streamId": serializers.CharField(),
                "clientId": serializers.CharField(),
                "sentAt": serializers.DateTimeField(required=False),
                "batchId": serializers.UUIDField(required=False),
                "events": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={
            202: inline_serializer("Ingested", {"ingested": serializers.IntegerField()}),
            400: OpenApiResponse(_error, description="The batch is invalid; nothing stored."),
            413: OpenApiResponse(_error, description="Body over 256 KiB."),
            415: OpenApiResponse(_error, description="Not JSON or text/plain."),
            503: OpenApiResponse(_error, description="Database unavailable; retry."),
        },
        examples=[
            OpenApiExample(
                "Batch",
                request_only=True,
                value={
                    "streamId": "launch-party",
                    "clientId": "c-7f3a9e21",
                    "sentAt": "2026-11-21T10:01:00Z",
                    "batchId": "5b0c2a6e-3f1d-4c8e-9a51-0d2f7c1e9b44",
                    "events": [
                        {"type": "play", "videoTime": 0, "ts": "2026-11-21T10:00:00Z"},
                        {"type": "heartbeat", "videoTime": 15.0, "ts": "2026-11-21T10:00:15Z"},
                        {
                            "type": "error",
                            "videoTime": 31.2,
                            "ts": "2026-11-21T10:00:31Z",
                            "extra": {"code": "NETWORK"},
                        },
                    ],
                },
            ),
            OpenApiExample(
                "Accepted", response_only=True, status_codes=["202"], value={"ingested": 3}
            ),
            OpenApiExample(
                "Rejected",
                response_only=True,
                status_codes=["400"],
                value={
                    "error": "Invalid events[1].type: Expected `'play' | 'pause' | …`, got `'seek'`",
                    "details": {"events[1].type": "Expected `'play' | 'pause' | …`, got `'seek'`"},
                },
            ),
        ],
    )
    def create(self, request):
        meta = request.META
        user_agent = meta.get("HTTP_USER_AGENT", "")
        result = playback_batch_ingest(
            body=read_body(request),
            user_agent=user_agent,
            country=country_from_request(meta),
            device=device_from_user_agent(user_agent),
        )
        return Response({"ingested": result.ingested}, status=status.HTTP_202_ACCEPTED)


class StreamInfoApi(APIView):
    """GET /api/streams/<key> — what a player needs to start (anonymous)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="stream_info",
        summary="Stream info for players",
        responses={
            200: inline_serializer(
                "StreamInfo",
                {
                    "streamId": serializers.CharField(),
                    "title": serializers.CharField(),
                    "status": serializers.CharField(),
                    "kind": serializers.CharField(),
                    "providers": serializers.ListField(child=serializers.DictField()),
                    "preferredProvider": serializers.CharField(allow_null=True),
                },
            ),
            404: OpenApiResponse(description="No stream has this key."),
        },
        examples=[
            OpenApiExample(
                "Bunny stream",
                response_only=True,
                value={
                    "streamId": "launch-party",
                    "title": "Launch party",
                    "status": "live",
                    "kind": "video",
                    "providers": [
                        {
                            "provider": "bunny_stream",
                            "externalId": "0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b3c",
                            "config": {"library_id": "12345"},
                        }
                    ],
                    "preferredProvider": "bunny_stream",
                },
            )
        ],
    )
    def get(self, request, key: str):
        info = stream_info(key=key)
        if info is None:
            return Response({"error": f"No stream has the key {key!r}."}, status=404)
        return Response(info)
