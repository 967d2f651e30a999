"""HTTP API of live viewers now (SPEC §6.5): staff only, JSON (or `?format=csv`).

Thin: each class calls one reader of `streams.live_viewers`. The stream page and the
dashboard show these figures and refresh them every LIVE_VIEWERS_REFRESH_SECONDS.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from echonest_analytics.query_params import SlugParam
from echonest_analytics.renderers import CSVRenderer

from .apis import StaffReportApi
from .live_viewers import live_viewers_overview, stream_live_viewers

_VIEWERS_HELP = (
    "Sessions with an event in the last 2 × HEARTBEAT_INTERVAL (window_seconds); "
    "null while Redis is unavailable."
)


class LiveViewersApi(StaffReportApi):
    """Base: JSON and CSV, no HTML page of its own (the stream pages show the figure)."""

    renderer_classes = [JSONRenderer, CSVRenderer]


class StreamLiveViewersApi(LiveViewersApi):
    """GET /admin/analytics/streams/<key>/live — one stream's viewers right now."""

    @extend_schema_serializer(component_name="StreamLiveViewers")
    class OutputSerializer(serializers.Serializer):
        stream_id = serializers.CharField()
        viewers = serializers.IntegerField(allow_null=True, help_text=_VIEWERS_HELP)
        as_of = serializers.DateTimeField(help_text="When the figure was read.")
        window_seconds = serializers.IntegerField(help_text="2 × HEARTBEAT_INTERVAL.")

    def csv_table(self, data):
        return list(self.OutputSerializer().fields), [data]

    def csv_filename(self, data) -> str:
        return f"stream-{data['stream_id']}-live.csv"

    @extend_schema(
        operation_id="stream_live_viewers",
        summary="One stream's live viewers now (staff)",
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(description="No stream with this key that you may see."),
        },
        examples=[
            OpenApiExample(
                "Live",
                response_only=True,
                value={
                    "stream_id": "launch-party",
                    "viewers": 42,
                    "as_of": "2026-11-21T20:15:00Z",
                    "window_seconds": 30,
                },
            )
        ],
    )
    def get(self, request, key: str):
        live = stream_live_viewers(user=request.user, key=key)
        if live is None:
            raise NotFound(f"No stream {key!r} that you may see.")
        return Response(live)


class LiveViewersOverviewApi(LiveViewersApi):
    """GET /admin/analytics/live — live viewers over all matching streams (the dashboard)."""

    csv_name = "live-viewers"

    class FilterSerializer(serializers.Serializer):
        organizer = SlugParam(
            message="expected an organizer slug", required=False, help_text="Organizer slug."
        )

    @extend_schema_serializer(component_name="LiveViewersOverview")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="LiveViewersStream")
        class StreamSerializer(serializers.Serializer):
            stream_id = serializers.CharField()
            title = serializers.CharField()
            viewers = serializers.IntegerField()

        organizer = serializers.CharField(allow_null=True)
        viewers = serializers.IntegerField(
            allow_null=True, help_text="The sum over the matching streams. " + _VIEWERS_HELP
        )
        as_of = serializers.DateTimeField()
        window_seconds = serializers.IntegerField()
        streams = StreamSerializer(many=True, help_text="Streams watched now, most viewers first.")

    def csv_table(self, data):
        return ["stream_id", "title", "viewers"], data["streams"]

    def csv_filename(self, data) -> str:
        return f"{self.csv_name}.csv"

    @extend_schema(
        operation_id="live_viewers_overview",
        summary="Live viewers now over all matching streams (staff)",
        parameters=[FilterSerializer],
        responses=OutputSerializer,
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        organizer = filters.validated_data.get("organizer") or None
        return Response(live_viewers_overview(user=request.user, organizer_slug=organizer))
