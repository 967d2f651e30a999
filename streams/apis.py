"""HTTP endpoints of the playback side. Thin: each calls one service or selector."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import (
    ErrorDetail,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from echonest_analytics.days import utc_today
from echonest_analytics.db_router import StaffReadsFromReplica
from echonest_analytics.ingestion import (
    ACCEPTED_CONTENT_TYPES,
    BatchIngestionViewSet,
    ingestion_fast_path,
    read_body,
)
from echonest_analytics.query_params import (
    DayParam,
    IntegerParam,
    KeywordNamedFields,
    SlugParam,
    invalid_query_body,
)
from echonest_analytics.renderers import CSVRenderer

from .bunny import bunny_configured, bunny_stats_import
from .charts import (
    count_text,
    duration_text,
    milliseconds_text,
    percent_text,
    svg_chart,
    svg_retention_chart,
)
from .dashboard import (
    STREAM_CARDS,
    SUMMARY_CARDS,
    definitions,
    kpi_cards,
    previous_period,
    range_presets,
    video_quality_definitions,
    video_quality_rows,
)
from .enrichment import country_from_request, device_from_user_agent
from .ingest import playback_batch_ingest
from .selectors import (
    AUDIENCE_COLUMNS,
    DAILY_COLUMNS,
    STATS_COLUMNS,
    VIDEO_QUALITY_COLUMNS,
    organizers_visible_to,
    stream_audience_retention,
    stream_info,
    stream_range_totals,
    stream_stats_daily_totals,
    stream_stats_detail,
    stream_stats_list,
    stream_stats_summary,
)

_error = inline_serializer(
    "IngestError",
    {"error": serializers.CharField(), "details": serializers.DictField(required=False)},
)
_TIME = {"type": "string", "format": "date-time", "nullable": True}
# The JSON shape `streams.ingest.PlaybackBatchIn` decodes (SPEC §5.1). What a schema
# cannot say is checked there too: the stream must exist, `extra` is at most 2 KiB.
PLAYBACK_BATCH_SCHEMA = {
    "type": "object",
    "required": ["streamId", "clientId", "events"],
    "properties": {
        "streamId": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "pattern": "^[-a-zA-Z0-9_]+$",
            "description": "The key of a known stream.",
        },
        "clientId": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[A-Za-z0-9_.:-]+$",
        },
        "sentAt": {**_TIME, "description": "When the client sent the batch (clock skew)."},
        "batchId": {"type": "string", "format": "uuid", "nullable": True},
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": [
                            "play",
                            "pause",
                            "heartbeat",
                            "ended",
                            "error",
                            "buffer_start",
                            "buffer_end",
                        ],
                    },
                    "videoTime": {"type": "number", "minimum": 0, "nullable": True},
                    "ts": _TIME,
                    "extra": {
                        "type": "object",
                        "nullable": True,
                        "additionalProperties": {},
                        "description": "Free-form, at most 2 KiB as JSON. Read by the "
                        "video quality figures (SPEC §6.5): `startupMs` (number, on play: "
                        "play request to first frame), `duration` (number, seconds: the "
                        "video's length), `fatal` (true on an error that stopped playback).",
                    },
                },
            },
        },
    },
}


class PlaybackEventIngestApi(BatchIngestionViewSet):
    """POST /analytics/events — anonymous batched player events."""

    metrics_endpoint = "playback"

    @extend_schema(
        operation_id="playback_events_ingest",
        summary="Ingest a batch of playback events",
        description=(
            "Anonymous. Accepts application/json or text/plain (sendBeacon). Up to 100 events; "
            "the whole batch is stored or nothing is. A repeated batchId is answered as before "
            "and stored no second time."
        ),
        request={
            media_type: PLAYBACK_BATCH_SCHEMA for media_type in sorted(ACCEPTED_CONTENT_TYPES)
        },
        responses={
            202: inline_serializer("Ingested", {"ingested": serializers.IntegerField()}),
            400: OpenApiResponse(_error, description="The batch is invalid; nothing stored."),
            413: OpenApiResponse(_error, description="Body over 256 KiB."),
            415: OpenApiResponse(
                _error, description="Not JSON or text/plain, or an encoding other than gzip."
            ),
            429: OpenApiResponse(_error, description="Too many requests (rate limit)."),
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
                    "error": (
                        "Invalid events[1].type: Expected `'play' | 'pause' | …`, got `'seek'`"
                    ),
                    "details": {"events[1].type": "Expected `'play' | 'pause' | …`, got `'seek'`"},
                },
            ),
        ],
    )
    def create(self, request):
        return Response(_playback_ingest(request), status=status.HTTP_202_ACCEPTED)


def _playback_ingest(request) -> dict:
    meta = request.META
    result = playback_batch_ingest(
        body=read_body(request),
        country=country_from_request(meta),
        device=device_from_user_agent(meta.get("HTTP_USER_AGENT", "")),
    )
    return {"ingested": result.ingested}


# POST /analytics/events: the usual batch skips DRF's layers (echonest_analytics/ingestion.py).
playback_events_ingest = ingestion_fast_path(
    PlaybackEventIngestApi.as_view({"post": "create"}), _playback_ingest
)


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


# --- Staff stats (SPEC §5.5) ---------------------------------------------------------

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660
MIN_DAY, MAX_DAY = date(1970, 1, 1), date(9000, 12, 31)


class StatsRangeFilter(KeywordNamedFields, serializers.Serializer):
    """`from`/`to` as YYYY-MM-DD, by default the last 30 UTC days up to today."""

    from_ = DayParam(
        first=MIN_DAY,
        last=MAX_DAY,
        required=False,
        help_text="First UTC day (default: 29 days before `to`).",
    )
    to = DayParam(
        first=MIN_DAY, last=MAX_DAY, required=False, help_text="Last UTC day (default: today)."
    )

    def validate(self, attrs: dict) -> dict:
        date_to = attrs.get("to") or utc_today()
        date_from = attrs.get("from") or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if date_from > date_to:
            raise ValidationError({"from": ErrorDetail("must not be after to", code="after_to")})
        if (date_to - date_from).days >= MAX_RANGE_DAYS:
            raise ValidationError({"from": f"the range is limited to {MAX_RANGE_DAYS} days"})
        return {**attrs, "from": date_from, "to": date_to}


class OrganizerStatsRangeFilter(StatsRangeFilter):
    """The range, and the streams of one organizer (`organizer`, a slug) or of all."""

    organizer = SlugParam(
        message="expected an organizer slug", required=False, help_text="Organizer slug."
    )

    def validate(self, attrs: dict) -> dict:
        return {"organizer": None, **super().validate(attrs)}


class CountryViewersSerializer(serializers.Serializer):
    country = serializers.CharField()
    viewers = serializers.IntegerField()


class BunnyFiguresSerializer(serializers.Serializer):
    """Bunny Stream's own statistics of a stream over the range (SPEC §6.2)."""

    video_guid = serializers.CharField()
    views = serializers.IntegerField()
    watch_time_seconds = serializers.FloatField()
    engagement_score = serializers.FloatField(allow_null=True)
    country_views = serializers.DictField(child=serializers.FloatField())
    days = serializers.IntegerField()
    fetched_at = serializers.DateTimeField(allow_null=True)


class DayFiguresSerializer(serializers.Serializer):
    """The §6.2 figures of a stream, a day or a range."""

    unique_viewers = serializers.IntegerField()
    sessions = serializers.IntegerField()
    total_watch_seconds = serializers.FloatField()
    avg_watch_seconds = serializers.FloatField()
    peak_concurrent_viewers = serializers.IntegerField()
    buffer_ratio = serializers.FloatField()
    error_rate = serializers.FloatField()
    startup_time_median_ms = serializers.FloatField(
        allow_null=True,
        help_text="Median video startup time (a play's extra.startupMs: play request to first "
        "frame) over the sessions that report one, in ms; the mean of the two middle values "
        "for an even count. Null when none reports one.",
    )
    startup_time_p95_ms = serializers.FloatField(
        allow_null=True,
        help_text="95th percentile of the same startup times (nearest rank: the value at rank "
        "ceil(0.95 × n)), in ms.",
    )
    exits_before_start = serializers.IntegerField(
        help_text="Sessions with a play and no playing time (the viewer left before the video "
        "started)."
    )
    playback_failure_rate = serializers.FloatField(
        help_text="Sessions with a fatal error (an error event with extra.fatal true) / sessions."
    )
    rebuffer_frequency = serializers.FloatField(
        help_text="buffer_start events per minute watched (watch time includes rebuffering)."
    )
    top_countries = CountryViewersSerializer(many=True)
    device_breakdown = serializers.DictField(child=serializers.IntegerField())


class RangeFiguresSerializer(DayFiguresSerializer):
    last_calculated_at = serializers.DateTimeField(allow_null=True)


class StaffStatsHTMLRenderer(TemplateHTMLRenderer):
    """Browsers get an admin-styled page; the view names its template and may add what
    only the page needs (charts, display texts, filter choices) with `html_context`."""

    def get_template_context(self, data, renderer_context):
        context = super().get_template_context(data, renderer_context)
        request = renderer_context["request"]
        view = renderer_context.get("view")
        page = view.html_context(context) if hasattr(view, "html_context") else {}
        return {
            **admin.site.each_context(request),
            **context,
            "report": context,
            "query": request.GET.urlencode(),
            **page,
        }


class StaffReportApi(StaffReadsFromReplica, APIView):
    """Base for staff reports: JSON to API clients, HTML to browsers, CSV with ?format=csv.

    Like every staff API here, a report answers its selector's dict as it is (the page
    and the CSV need the dates and times as Python values) and its `OutputSerializer`
    describes that answer for the schema; tests/core/test_output_serializers.py holds
    each answer equal to its serializer, so the two cannot drift apart.
    """

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer, StaffStatsHTMLRenderer, CSVRenderer]
    template_name = ""
    csv_name = "report"

    def handle_exception(self, exc):
        html = isinstance(getattr(self.request, "accepted_renderer", None), TemplateHTMLRenderer)
        # A signed-out browser (it asks for text/html) is sent to the login page; any other
        # client, `?format=html` or not, gets its 401/403.
        browser = "text/html" in self.request.META.get("HTTP_ACCEPT", "")
        if html and browser and isinstance(exc, NotAuthenticated | PermissionDenied):
            if not self.request.user.is_authenticated:
                return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        if isinstance(exc, ValidationError):
            if html and self.template_name:
                return self.invalid_filters_page(exc)
            response = Response(invalid_query_body(exc), status=400)
        else:
            response = super().handle_exception(exc)
        if html:
            # A plain HttpResponse: DRF would render a Response with the report template.
            return TemplateResponse(
                self.request._request,
                "streams/report_error.html",
                {
                    **admin.site.each_context(self.request._request),
                    "status": response.status_code,
                    "error": response.data.get("error") or response.data.get("detail"),
                    "details": response.data.get("details") or {},
                },
                status=response.status_code,
            ).render()
        return response

    def options(self, request, *args, **kwargs):
        # The metadata is no report: JSON, whatever `?format=` asks (CSV and the report
        # page would look for the report's rows in it and fail).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
        return super().options(request, *args, **kwargs)

    def csv_filename(self, data) -> str:
        return f"{self.csv_name}_{data['from']}_{data['to']}.csv"

    def invalid_filters_page(self, exc: ValidationError):
        """A browser's bad filter: the page with its form, the values as typed and the
        message next to the field (400), rather than a page of nothing but the error."""
        request = self.request._request
        messages = invalid_query_body(exc)["details"]
        codes = exc.get_codes() if isinstance(exc.detail, dict) else {}
        errors = {}
        for name, message in messages.items():
            code = codes.get(name) if isinstance(codes, dict) else None
            code = code[0] if isinstance(code, list) and code else code
            errors[name] = FRIENDLY_MESSAGES.get(code, message)
        context = {
            **admin.site.each_context(request),
            "report": None,
            "filters": filters_display(request.GET, errors=errors),
            "presets": range_presets(date_from=None, date_to=None),
            "custom_range": True,
            "organizers": self.organizer_choices(),
            "invalid": True,
            **self.invalid_context(),
        }
        return TemplateResponse(request, self.template_name, context, status=400).render()

    def organizer_choices(self):
        """The organizer filter's choices; None on pages without that filter."""
        return None

    def invalid_context(self) -> dict:
        return {}

    def html_request(self) -> bool:
        return isinstance(getattr(self.request, "accepted_renderer", None), TemplateHTMLRenderer)

    def known_organizer_or_error(self, slug: str | None) -> None:
        """Browsers asking for an organizer they may not see (or that does not exist) get
        the form back saying so; API clients keep the empty answer of a filter that
        matches nothing."""
        if slug and self.html_request():
            if not organizers_visible_to(user=self.request.user).filter(slug=slug).exists():
                raise ValidationError(
                    {
                        "organizer": ErrorDetail(
                            f"No organizer \u201c{slug}\u201d among the ones you may see.",
                            code="unknown_organizer",
                        )
                    }
                )


# How a browser's form says what the API says in its own words.
FRIENDLY_MESSAGES = {"after_to": "The start date must not be after the end date."}


def filters_display(query, *, errors: dict | None = None) -> dict:
    """The range form's values as the request sent them, and a message per field."""
    errors = dict(errors or {})
    return {
        "from": query.get("from", ""),
        "to": query.get("to", ""),
        "organizer": query.get("organizer", ""),
        "errors": errors,
        "other_errors": {k: v for k, v in errors.items() if k not in ("from", "to", "organizer")},
    }


def report_filters(report: dict) -> dict:
    return {
        "from": report["from"].isoformat(),
        "to": report["to"].isoformat(),
        "organizer": report.get("organizer") or "",
        "errors": {},
        "other_errors": {},
    }


class StreamStatsListApi(StaffReportApi):
    """GET /admin/analytics/streams — per-stream figures over a date range."""

    template_name = "streams/stats_list.html"
    csv_name = "stream-stats"

    class FilterSerializer(OrganizerStatsRangeFilter):
        pass

    @extend_schema_serializer(component_name="StreamStatsList")
    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        """The range, the organizer asked for, and a row per visible stream by title."""

        @extend_schema_serializer(component_name="StreamStatsRow")
        class RowSerializer(RangeFiguresSerializer):
            """One stream's figures over the range (the CSV's columns)."""

            stream_id = serializers.CharField()
            title = serializers.CharField()
            organizer = serializers.CharField()
            provider = serializers.CharField(allow_null=True)
            bunny = BunnyFiguresSerializer(allow_null=True)

        from_ = serializers.DateField()
        to = serializers.DateField()
        organizer = serializers.CharField(allow_null=True)
        streams = RowSerializer(many=True)

    def csv_table(self, data):
        return STATS_COLUMNS, data["streams"]

    def organizer_choices(self):
        return organizers_visible_to(user=self.request.user)

    def html_context(self, report: dict) -> dict:
        user, organizer = self.request.user, report["organizer"]
        date_from, date_to = report["from"], report["to"]
        summary = stream_stats_summary(
            user=user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        previous_from, previous_to = previous_period(date_from=date_from, date_to=date_to)
        previous = stream_stats_summary(
            user=user, date_from=previous_from, date_to=previous_to, organizer_slug=organizer
        )
        organizers = self.organizer_choices()
        names = {o.slug: o.name for o in organizers}
        days = stream_stats_daily_totals(
            user=user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        return {
            **page_common(report),
            "summary": figures_display(summary),
            "cards": kpi_cards(
                figures=summary,
                previous=previous,
                names=SUMMARY_CARDS,
            ),
            "definitions": definitions(SUMMARY_CARDS),
            "previous_from": previous_from,
            "previous_to": previous_to,
            "rows": [
                {
                    **figures_display(row),
                    "organizer_name": names.get(row["organizer"], row["organizer"]),
                }
                for row in report["streams"]
            ],
            "organizers": organizers,
            "charts": daily_charts(days, over="all matching streams"),
        }

    @extend_schema(
        operation_id="stream_stats_list",
        summary="Per-stream analytics over a date range (staff)",
        parameters=[FilterSerializer],
        responses=OutputSerializer,
        examples=[
            OpenApiExample(
                "Streams",
                response_only=True,
                value={
                    "from": "2026-10-23",
                    "to": "2026-11-21",
                    "organizer": None,
                    "streams": [
                        {
                            "stream_id": "launch-party",
                            "title": "Launch party",
                            "organizer": "nightjar",
                            "provider": "hls",
                            "unique_viewers": 3,
                            "sessions": 4,
                            "total_watch_seconds": 182.0,
                            "avg_watch_seconds": 60.667,
                            "peak_concurrent_viewers": 3,
                            "buffer_ratio": 0.027473,
                            "error_rate": 0.25,
                            "startup_time_median_ms": 2300.0,
                            "startup_time_p95_ms": 3400.0,
                            "exits_before_start": 1,
                            "playback_failure_rate": 0.25,
                            "rebuffer_frequency": 0.329670,
                            "top_countries": [{"country": "DE", "viewers": 2}],
                            "device_breakdown": {"desktop": 2, "mobile": 1},
                            "bunny": None,
                            "last_calculated_at": "2026-11-21T10:05:00Z",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        date_from, date_to = filters.validated_data["from"], filters.validated_data["to"]
        organizer = filters.validated_data["organizer"]
        self.known_organizer_or_error(organizer)
        rows = stream_stats_list(
            user=request.user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        return Response({"from": date_from, "to": date_to, "organizer": organizer, "streams": rows})


class StreamStatsSummaryApi(StaffReportApi):
    """GET /admin/analytics/streams/summary — the same figures over all matching streams."""

    template_name = "streams/stats_summary.html"
    csv_name = "stream-summary"

    class FilterSerializer(OrganizerStatsRangeFilter):
        pass

    @extend_schema_serializer(component_name="StreamStatsSummary")
    class OutputSerializer(KeywordNamedFields, RangeFiguresSerializer):
        """The figures over all matching streams together, plus `streams` and `events`."""

        from_ = serializers.DateField()
        to = serializers.DateField()
        organizer = serializers.CharField(allow_null=True)
        streams = serializers.IntegerField(help_text="Matching streams, watched or not.")
        events = serializers.IntegerField()

    def csv_table(self, data):
        columns = [
            "from",
            "to",
            "organizer",
            "streams",
            "events",
            *STATS_COLUMNS[STATS_COLUMNS.index("unique_viewers") : STATS_COLUMNS.index("bunny")],
            "last_calculated_at",
            *VIDEO_QUALITY_COLUMNS,
        ]
        return columns, [data]

    def organizer_choices(self):
        return organizers_visible_to(user=self.request.user)

    def html_context(self, report: dict) -> dict:
        previous_from, previous_to = previous_period(date_from=report["from"], date_to=report["to"])
        previous = stream_stats_summary(
            user=self.request.user,
            date_from=previous_from,
            date_to=previous_to,
            organizer_slug=report["organizer"],
        )
        return {
            **page_common(report),
            "summary": figures_display(report),
            "cards": kpi_cards(
                figures=report,
                previous=previous,
                names=("streams", "events", *STREAM_CARDS),
            ),
            "definitions": definitions(SUMMARY_CARDS),
            "previous_from": previous_from,
            "previous_to": previous_to,
            "organizers": self.organizer_choices(),
        }

    @extend_schema(
        operation_id="stream_stats_summary",
        summary="Analytics over all matching streams (staff)",
        parameters=[FilterSerializer],
        responses=OutputSerializer,
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        date_from, date_to = filters.validated_data["from"], filters.validated_data["to"]
        organizer = filters.validated_data["organizer"]
        self.known_organizer_or_error(organizer)
        summary = stream_stats_summary(
            user=request.user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        return Response({"from": date_from, "to": date_to, "organizer": organizer, **summary})


class StreamStatsDetailApi(StaffReportApi):
    """GET /admin/analytics/streams/<key> — one stream's daily figures and range totals."""

    template_name = "streams/stats_detail.html"

    class FilterSerializer(StatsRangeFilter):
        pass

    @extend_schema_serializer(component_name="StreamStatsDetail")
    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        """One stream, its totals over the range and a row per UTC day of it."""

        @extend_schema_serializer(component_name="StreamStatsDetailStream")
        class StreamSerializer(serializers.Serializer):
            @extend_schema_serializer(component_name="StreamStatsDetailProvider")
            class ProviderSerializer(serializers.Serializer):
                provider = serializers.CharField()
                external_id = serializers.CharField()
                is_primary = serializers.BooleanField()

            stream_id = serializers.CharField()
            title = serializers.CharField()
            organizer = serializers.CharField()
            organizer_name = serializers.CharField()
            status = serializers.CharField()
            kind = serializers.CharField()
            providers = ProviderSerializer(many=True)

        @extend_schema_serializer(component_name="StreamStatsDetailTotals")
        class TotalsSerializer(RangeFiguresSerializer):
            """The stream's figures over the range (its row in the list)."""

            provider = serializers.CharField(allow_null=True)
            bunny = BunnyFiguresSerializer(allow_null=True)

        @extend_schema_serializer(component_name="StreamStatsDetailDay")
        class DaySerializer(DayFiguresSerializer):
            """The stream's figures of one UTC day."""

            day = serializers.DateField()
            events = serializers.IntegerField()

        from_ = serializers.DateField()
        to = serializers.DateField()
        stream = StreamSerializer()
        totals = TotalsSerializer()
        days = DaySerializer(many=True, help_text="One row per UTC day of the range, oldest first.")

    def csv_table(self, data):
        return DAILY_COLUMNS, data["days"]

    def options(self, request, *args, **kwargs):
        # The metadata is no report: JSON, whatever `?format=` asks (CSV and the report
        # page would look for the report's rows in it and fail).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
        return super().options(request, *args, **kwargs)

    def csv_filename(self, data) -> str:
        return f"stream-{data['stream']['stream_id']}_{data['from']}_{data['to']}.csv"

    def invalid_context(self) -> dict:
        return {"stream_key": self.kwargs.get("key", "")}

    def html_context(self, report: dict) -> dict:
        days = report["days"]
        totals = report["totals"]
        previous_from, previous_to = previous_period(date_from=report["from"], date_to=report["to"])
        previous = stream_range_totals(
            user=self.request.user,
            key=report["stream"]["stream_id"],
            date_from=previous_from,
            date_to=previous_to,
        )
        return {
            **page_common(report),
            "totals": figures_display(totals),
            "cards": kpi_cards(
                figures=totals,
                previous=previous,
                names=STREAM_CARDS,
            ),
            "definitions": definitions(STREAM_CARDS),
            "previous_from": previous_from,
            "previous_to": previous_to,
            "days_display": [figures_display(d) for d in days],
            "bunny": totals["bunny"],
            "bunny_views_text": count_text(totals["bunny"]["views"]) if totals["bunny"] else "",
            "bunny_watch_text": duration_text(totals["bunny"]["watch_time_seconds"])
            if totals["bunny"]
            else "",
            "charts": daily_charts(days),
            "video_quality": video_quality_rows(totals),
            "video_quality_definitions": video_quality_definitions(),
            **self.audience_context(report),
        }

    def audience_context(self, report: dict) -> dict:
        """The audience retention chart of the range's latest day with sessions (or its
        last day), with links to that day's JSON and CSV."""
        watched = [d["day"] for d in report["days"] if d["sessions"]]
        day = watched[-1] if watched else report["to"]
        key = report["stream"]["stream_id"]
        audience = stream_audience_retention(user=self.request.user, key=key, day=day)
        title = f"Audience retention on {day.isoformat()}"
        url = reverse("stream-audience", kwargs={"key": key})
        return {
            "audience": audience,
            "audience_chart": svg_retention_chart(audience["points"], title=title),
            "audience_url": f"{url}?day={day.isoformat()}",
        }

    @extend_schema(
        operation_id="stream_stats_detail",
        summary="One stream's daily analytics over a date range (staff)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Not visible.")},
    )
    def get(self, request, key: str):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        date_from, date_to = filters.validated_data["from"], filters.validated_data["to"]
        detail = stream_stats_detail(
            user=request.user, key=key, date_from=date_from, date_to=date_to
        )
        if detail is None:
            raise NotFound(f"No stream {key!r} that you may see.")
        return Response({"from": date_from, "to": date_to, **detail})


class StreamAudienceApi(StaffReportApi):
    """GET /admin/analytics/streams/<key>/audience?day= — audience retention of one day."""

    # JSON and CSV; the curve is drawn on the stream's page.
    renderer_classes = [JSONRenderer, CSVRenderer]

    class FilterSerializer(serializers.Serializer):
        day = DayParam(
            first=MIN_DAY, last=MAX_DAY, required=False, help_text="UTC day (default: today)."
        )

    @extend_schema_serializer(component_name="StreamAudienceRetention")
    class OutputSerializer(serializers.Serializer):
        """For each percent 0…100 of the video, the share of the day's sessions still there."""

        @extend_schema_serializer(component_name="StreamAudiencePoint")
        class PointSerializer(serializers.Serializer):
            percent = serializers.IntegerField(help_text="0…100, percent of the video's duration.")
            share = serializers.FloatField(
                help_text="Share of the day's sessions whose furthest videoTime reached this "
                "percent of the duration (3 decimals)."
            )

        stream_id = serializers.CharField()
        day = serializers.DateField()
        sessions = serializers.IntegerField(
            help_text="The day's sessions (by start, bots excluded): what the shares divide by."
        )
        duration_seconds = serializers.FloatField(
            allow_null=True,
            help_text="The video's duration: the provider's (config `length`), else the largest "
            "extra.duration players reported that day. Null (and no points): unknown, e.g. live.",
        )
        points = PointSerializer(many=True, help_text="101 points, 0 to 100; empty: no duration.")

    def csv_table(self, data):
        return AUDIENCE_COLUMNS, data["points"]

    def csv_filename(self, data) -> str:
        return f"stream-{data['stream_id']}-audience_{data['day']}.csv"

    @extend_schema(
        operation_id="stream_audience_retention",
        summary="One stream's audience retention curve for a UTC day (staff)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Not visible.")},
        examples=[
            OpenApiExample(
                "Half of four sessions watched to 50 %",
                response_only=True,
                value={
                    "stream_id": "launch-party",
                    "day": "2026-11-21",
                    "sessions": 4,
                    "duration_seconds": 600.0,
                    "points": [
                        {"percent": 0, "share": 1.0},
                        {"percent": 50, "share": 0.5},
                        {"percent": 100, "share": 0.25},
                    ],
                },
            )
        ],
    )
    def get(self, request, key: str):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        day = filters.validated_data.get("day") or utc_today()
        audience = stream_audience_retention(user=request.user, key=key, day=day)
        if audience is None:
            raise NotFound(f"No stream {key!r} that you may see.")
        return Response(audience)


def page_common(report: dict) -> dict:
    """What every stream page's range form needs: its values and the preset links."""
    presets = range_presets(date_from=report["from"], date_to=report["to"])
    return {
        "filters": report_filters(report),
        "presets": presets,
        "custom_range": not any(p["current"] for p in presets),
    }


def daily_charts(days: list[dict], *, over: str = "") -> list[tuple[str, SafeString]]:
    """The three daily charts of the stream page, and of the dashboard over all streams."""

    def series(field: str) -> list[tuple]:
        return [(d["day"], d[field]) for d in days]

    suffix = f" ({over})" if over else ""
    captions = (
        "Unique viewers per day",
        "Watch time per day",
        "Peak concurrent viewers per day",
    )
    return [
        (captions[0], svg_chart(series("unique_viewers"), title=captions[0] + suffix)),
        (
            captions[1],
            svg_chart(series("total_watch_seconds"), title=captions[1] + suffix, unit="seconds"),
        ),
        (
            captions[2],
            svg_chart(series("peak_concurrent_viewers"), title=captions[2] + suffix, kind="line"),
        ),
    ]


def figures_display(figures: dict) -> dict:
    """A row of figures plus the texts the pages show: counts with thousands
    separators, durations in h/m/s, ratios in percent with one decimal."""
    return {
        **figures,
        "unique_viewers_text": count_text(figures.get("unique_viewers")),
        "sessions_text": count_text(figures.get("sessions")),
        "peak_text": count_text(figures.get("peak_concurrent_viewers")),
        "events_text": count_text(figures.get("events")),
        "streams_text": count_text(figures.get("streams")),
        "watch_time_text": duration_text(figures.get("total_watch_seconds")),
        "avg_watch_text": duration_text(figures.get("avg_watch_seconds")),
        "buffer_ratio_text": percent_text(figures.get("buffer_ratio")),
        "error_rate_text": percent_text(figures.get("error_rate")),
        "startup_median_text": milliseconds_text(figures.get("startup_time_median_ms")),
        "exits_before_start_text": count_text(figures.get("exits_before_start")),
        "playback_failure_rate_text": percent_text(figures.get("playback_failure_rate")),
        "rebuffer_frequency_text": f"{float(figures.get('rebuffer_frequency') or 0):.2f}",
    }


class BunnySyncApi(APIView):
    """POST /admin/analytics/streams/bunny-sync — import Bunny's statistics now (staff)."""

    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        days = IntegerParam(
            message="an integer from 1 to 30",
            min_value=1,
            max_value=30,
            default=3,
            help_text="UTC days back, today included.",
        )

    @extend_schema_serializer(component_name="BunnySync")
    class OutputSerializer(serializers.Serializer):
        """What the import did; a failing video-day is listed and the others still import."""

        @extend_schema_serializer(component_name="BunnySyncFailure")
        class FailureSerializer(serializers.Serializer):
            stream = serializers.CharField()
            video = serializers.CharField()
            day = serializers.DateField(required=False)
            error = serializers.CharField()

        videos = serializers.IntegerField()
        days_imported = serializers.IntegerField()
        failed = serializers.IntegerField()
        failures = FailureSerializer(many=True)

    def handle_exception(self, exc):
        if isinstance(exc, ValidationError):
            return Response(invalid_query_body(exc), status=400)
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="bunny_sync",
        summary="Import Bunny Stream statistics for the last days (staff)",
        parameters=[FilterSerializer],
        request=None,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(_error, description="`days` is not 1-30."),
            501: OpenApiResponse(_error, description="Bunny is not configured."),
        },
        examples=[
            OpenApiExample(
                "Imported",
                response_only=True,
                status_codes=["200"],
                value={"videos": 2, "days_imported": 6, "failed": 0, "failures": []},
            )
        ],
    )
    def post(self, request):
        if not bunny_configured():
            return Response(
                {
                    "error": (
                        "Bunny Stream is not configured: set BUNNY_API_KEY and BUNNY_LIBRARY_ID."
                    )
                },
                status=status.HTTP_501_NOT_IMPLEMENTED,
            )
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(bunny_stats_import(days=filters.validated_data["days"]).as_dict())
