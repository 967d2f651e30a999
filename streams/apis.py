"""HTTP endpoints of the playback side. Thin: each calls one service or selector."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.template.response import TemplateResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from echonest_analytics.ingestion import BatchIngestionViewSet, read_body
from echonest_analytics.renderers import CSVRenderer

from .bunny import bunny_configured, bunny_stats_import
from .charts import duration_text, percent_text, svg_chart
from .enrichment import country_from_request, device_from_user_agent
from .ingest import playback_batch_ingest
from .selectors import (
    DAILY_COLUMNS,
    STATS_COLUMNS,
    organizers_visible_to,
    stream_info,
    stream_stats_detail,
    stream_stats_list,
    stream_stats_summary,
)

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
                    "error": (
                        "Invalid events[1].type: Expected `'play' | 'pause' | …`, got `'seek'`"
                    ),
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


# --- Staff stats (SPEC §5.5) ---------------------------------------------------------

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660
MIN_DAY, MAX_DAY = date(1970, 1, 1), date(9000, 12, 31)


def stats_range(params) -> tuple[date, date, str | None]:
    """`from`/`to` (YYYY-MM-DD, default the last 30 UTC days) and `organizer` (slug)."""
    errors: dict[str, str] = {}
    today = datetime.now(UTC).date()
    parsed: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = params.get(name)
        if not raw:
            parsed[name] = None
            continue
        try:
            parsed[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = "expected a date as YYYY-MM-DD"
            continue
        if not MIN_DAY <= parsed[name] <= MAX_DAY:
            errors[name] = f"must lie between {MIN_DAY} and {MAX_DAY}"
    organizer = params.get("organizer") or None
    if organizer is not None and not re.fullmatch(r"[-a-zA-Z0-9_]{1,100}", organizer):
        errors["organizer"] = "expected an organizer slug"
    if errors:
        raise ValidationError(errors)
    date_to = parsed["to"] or today
    date_from = parsed["from"] or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if date_from > date_to:
        raise ValidationError({"from": "must not be after `to`"})
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise ValidationError({"from": f"the range is limited to {MAX_RANGE_DAYS} days"})
    return date_from, date_to, organizer


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


_range_parameters = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="First UTC day (default: 29 days before `to`)."
    ),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last UTC day (default: today)."),
    OpenApiParameter("organizer", OpenApiTypes.STR, description="Organizer slug."),
    OpenApiParameter(
        "format", OpenApiTypes.STR, enum=["json", "csv"], description="`csv` for a CSV file."
    ),
]


class StaffReportApi(APIView):
    """Base for staff reports: JSON to API clients, HTML to browsers, CSV with ?format=csv."""

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer, StaffStatsHTMLRenderer, CSVRenderer]
    template_name = ""
    csv_name = "report"

    def handle_exception(self, exc):
        html = isinstance(getattr(self.request, "accepted_renderer", None), TemplateHTMLRenderer)
        if html and isinstance(exc, NotAuthenticated | PermissionDenied):
            if not self.request.user.is_authenticated:
                return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        if isinstance(exc, ValidationError):
            response = Response(
                {"error": "Invalid query parameters.", "details": exc.detail}, status=400
            )
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

    def csv_filename(self, data) -> str:
        return f"{self.csv_name}_{data['from']}_{data['to']}.csv"


class StreamStatsListApi(StaffReportApi):
    """GET /admin/analytics/streams — per-stream figures over a date range."""

    template_name = "streams/stats_list.html"
    csv_name = "stream-stats"

    def csv_table(self, data):
        return STATS_COLUMNS, data["streams"]

    def html_context(self, report: dict) -> dict:
        summary = stream_stats_summary(
            user=self.request.user,
            date_from=report["from"],
            date_to=report["to"],
            organizer_slug=report["organizer"],
        )
        return {
            "summary": figures_display(summary),
            "rows": [figures_display(row) for row in report["streams"]],
            "organizers": organizers_visible_to(user=self.request.user),
        }

    @extend_schema(
        operation_id="stream_stats_list",
        summary="Per-stream analytics over a date range (staff)",
        parameters=_range_parameters,
        responses={200: OpenApiTypes.OBJECT},
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
        date_from, date_to, organizer = stats_range(request.query_params)
        rows = stream_stats_list(
            user=request.user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        return Response({"from": date_from, "to": date_to, "organizer": organizer, "streams": rows})


class StreamStatsSummaryApi(StaffReportApi):
    """GET /admin/analytics/streams/summary — the same figures over all matching streams."""

    template_name = "streams/stats_summary.html"
    csv_name = "stream-summary"

    def csv_table(self, data):
        columns = [
            "from",
            "to",
            "organizer",
            "streams",
            "events",
            *STATS_COLUMNS[4:13],
            "last_calculated_at",
        ]
        return columns, [data]

    def html_context(self, report: dict) -> dict:
        return {"organizers": organizers_visible_to(user=self.request.user)}

    @extend_schema(
        operation_id="stream_stats_summary",
        summary="Analytics over all matching streams (staff)",
        parameters=_range_parameters,
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        date_from, date_to, organizer = stats_range(request.query_params)
        summary = stream_stats_summary(
            user=request.user, date_from=date_from, date_to=date_to, organizer_slug=organizer
        )
        return Response({"from": date_from, "to": date_to, "organizer": organizer, **summary})


class StreamStatsDetailApi(StaffReportApi):
    """GET /admin/analytics/streams/<key> — one stream's daily figures and range totals."""

    template_name = "streams/stats_detail.html"

    def csv_table(self, data):
        return DAILY_COLUMNS, data["days"]

    def csv_filename(self, data) -> str:
        return f"stream-{data['stream']['stream_id']}_{data['from']}_{data['to']}.csv"

    def html_context(self, report: dict) -> dict:
        days = report["days"]
        totals = report["totals"]

        def series(field: str) -> list[tuple]:
            return [(d["day"], d[field]) for d in days]

        return {
            "totals": figures_display(totals),
            "days_display": [figures_display(d) for d in days],
            "bunny": totals["bunny"],
            "bunny_watch_text": duration_text(totals["bunny"]["watch_time_seconds"])
            if totals["bunny"]
            else "",
            "charts": [
                (
                    "Unique viewers per day",
                    svg_chart(series("unique_viewers"), title="Unique viewers per day"),
                ),
                (
                    "Watch time per day",
                    svg_chart(
                        series("total_watch_seconds"),
                        title="Watch time per day",
                        unit="seconds",
                    ),
                ),
                (
                    "Peak concurrent viewers per day",
                    svg_chart(
                        series("peak_concurrent_viewers"),
                        title="Peak concurrent viewers per day",
                        kind="line",
                    ),
                ),
            ],
        }

    @extend_schema(
        operation_id="stream_stats_detail",
        summary="One stream's daily analytics over a date range (staff)",
        parameters=[p for p in _range_parameters if p.name != "organizer"],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="Not visible.")},
    )
    def get(self, request, key: str):
        date_from, date_to, _ = stats_range(request.query_params)
        detail = stream_stats_detail(
            user=request.user, key=key, date_from=date_from, date_to=date_to
        )
        if detail is None:
            raise NotFound(f"No stream {key!r} that you may see.")
        return Response({"from": date_from, "to": date_to, **detail})


def figures_display(figures: dict) -> dict:
    """A row of figures plus the texts the pages show (durations, percentages)."""
    return {
        **figures,
        "watch_time_text": duration_text(figures.get("total_watch_seconds")),
        "avg_watch_text": duration_text(figures.get("avg_watch_seconds")),
        "buffer_ratio_text": percent_text(figures.get("buffer_ratio")),
        "error_rate_text": percent_text(figures.get("error_rate")),
    }


class BunnySyncApi(APIView):
    """POST /admin/analytics/streams/bunny-sync — import Bunny's statistics now (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="bunny_sync",
        summary="Import Bunny Stream statistics for the last days (staff)",
        parameters=[
            OpenApiParameter("days", OpenApiTypes.INT, description="Days back (1-30, default 3).")
        ],
        request=None,
        responses={
            200: OpenApiTypes.OBJECT,
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
        try:
            days = int(request.query_params.get("days", 3))
        except ValueError:
            days = 0
        if not 1 <= days <= 30:
            return Response(
                {
                    "error": "Invalid query parameters.",
                    "details": {"days": "an integer from 1 to 30"},
                },
                status=400,
            )
        return Response(bunny_stats_import(days=days).as_dict())
