"""HTTP API of product analytics: telemetry ingestion, usage summary, GDPR (SPEC §5.3–§5.5).

Thin: each class reads its input, calls one service or selector, shapes the answer.
"""

from __future__ import annotations

import hmac
import re

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import (
    APIException,
    NotAuthenticated,
    PermissionDenied,
    ValidationError,
)
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from echonest_analytics.db_router import StaffReadsFromReplica
from echonest_analytics.ingestion import (
    ACCEPTED_CONTENT_TYPES,
    BatchIngestionViewSet,
    IngestRejected,
    read_body,
)
from echonest_analytics.query_params import IntegerParam, KeywordNamedFields, query_errors

from .gdpr import LiveCountersUnavailable, user_erase
from .selectors import USAGE_MAX_DAYS, usage_summary, user_events_export
from .telemetry import MAX_EVENTS_PER_BATCH, telemetry_batch_decode, telemetry_batch_ingest

_ERROR = inline_serializer(
    "AnalyticsError",
    {
        "ok": serializers.BooleanField(default=False),
        "error": serializers.CharField(),
        "details": serializers.DictField(required=False),
    },
)


_TEXT = {"type": "string", "nullable": True}
# The JSON shape `analytics.telemetry.TelemetryBatch` decodes (SPEC §5.3). Also checked
# there: no blank or reserved event type, no NUL or control characters, metadata at
# most 2 KiB and 8 levels deep.
TELEMETRY_BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "batchId": {"type": "string", "format": "uuid", "nullable": True},
        "events": {
            "type": "array",
            "maxItems": MAX_EVENTS_PER_BATCH,
            "items": {
                "type": "object",
                "required": ["event_type"],
                "properties": {
                    "event_type": {"type": "string", "minLength": 1, "maxLength": 64},
                    "user_id": {**_TEXT, "maxLength": 128},
                    "feature": {**_TEXT, "maxLength": 128},
                    "url": {**_TEXT, "maxLength": 2048},
                    "metadata": {"type": "object", "nullable": True, "additionalProperties": {}},
                    "ts": {"type": "string", "format": "date-time", "nullable": True},
                    "uuid": {"type": "string", "format": "uuid", "nullable": True},
                },
            },
        },
    },
}


class TelemetryEventIngestApi(BatchIngestionViewSet):
    """POST /api/analytics/event — anonymous product telemetry batches."""

    metrics_endpoint = "telemetry"

    def accepted_events(self, data) -> int:
        return int(data.get("logged", 0))

    def rejection_body(self, exc: IngestRejected) -> dict:
        return {"ok": False, **super().rejection_body(exc)}

    @extend_schema(
        operation_id="analytics_event_ingest",
        tags=["product analytics"],
        summary="Ingest a batch of product telemetry events (anonymous)",
        description=(
            f"Up to {MAX_EVENTS_PER_BATCH} events, stored atomically. `application/json` or "
            "`text/plain` (sendBeacon) bodies up to 256 KiB. Events whose `ts` is over 365 days "
            "old are ignored and not counted. An event's `uuid` (or `batchId` + its index) makes "
            "a retry idempotent: `logged` counts the batch's events that are stored, whether by "
            "this request or an earlier one."
        ),
        request={
            media_type: TELEMETRY_BATCH_SCHEMA for media_type in sorted(ACCEPTED_CONTENT_TYPES)
        },
        responses={
            200: inline_serializer(
                "TelemetryLogged",
                {"ok": serializers.BooleanField(), "logged": serializers.IntegerField()},
            ),
            400: _ERROR,
            413: _ERROR,
            415: _ERROR,
            429: _ERROR,
            503: _ERROR,
        },
        examples=[
            OpenApiExample(
                "One page view",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_type": "page_view",
                            "user_id": "user123",
                            "feature": "dashboard",
                            "metadata": {"referrer": "https://example.com"},
                            "ts": "2026-11-21T10:00:00Z",
                            "url": "/dashboard",
                            "uuid": "2f1c7c1e-8a35-4c55-9f0e-3f4f3b7f2a10",
                        }
                    ]
                },
            ),
            OpenApiExample("Stored", response_only=True, value={"ok": True, "logged": 1}),
            OpenApiExample(
                "Too many events",
                response_only=True,
                status_codes=["400"],
                value={
                    "ok": False,
                    "error": "Too many events: 101 (at most 100 per batch).",
                    "details": {"events": "at most 100 events"},
                },
            ),
        ],
    )
    def create(self, request) -> Response:
        batch = telemetry_batch_decode(read_body(request))
        logged = telemetry_batch_ingest(batch=batch, received_at=timezone.now())
        return Response({"ok": True, "logged": logged})


class DashKeyOrStaff(BasePermission):
    """`X-Dash-Key` equal to ANALYTICS_DASH_KEY (constant-time), or a staff user.

    No credentials at all → 401; a wrong key or a non-staff user → 403.
    """

    def has_permission(self, request, view) -> bool:
        presented = request.headers.get("X-Dash-Key")
        expected = settings.ANALYTICS_DASH_KEY
        if presented is not None and expected:
            if hmac.compare_digest(presented.encode(), expected.encode()):
                return True
        user = request.user
        if user is not None and user.is_active and user.is_staff:
            return True
        if presented is not None:
            raise PermissionDenied("X-Dash-Key is not valid.")
        if user is None or not user.is_authenticated:
            raise NotAuthenticated("Send X-Dash-Key or sign in as staff.")
        raise PermissionDenied("Staff only.")


class UsageSummaryApi(StaffReadsFromReplica, APIView):
    """GET /api/analytics/usage?days=N — DAU/WAU/MAU, feature usage, funnel (SPEC §5.4)."""

    # Token first, so an unauthenticated request gets 401 with WWW-Authenticate.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [DashKeyOrStaff]

    class FilterSerializer(serializers.Serializer):
        days = IntegerParam(
            message=f"days must be a whole number from 1 to {USAGE_MAX_DAYS}.",
            syntax=re.compile(r"\s*\d{1,4}\s*"),
            min_value=1,
            max_value=USAGE_MAX_DAYS,
            default=30,
            help_text="UTC days up to and including today.",
        )

    @extend_schema_serializer(component_name="UsageSummary")
    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        """SPEC §5.4's figures (definitions in §6.4), then the extras from `from` on."""

        ok = serializers.BooleanField()
        ts = serializers.CharField()
        period_days = serializers.IntegerField()
        dau = serializers.FloatField()
        wau = serializers.FloatField()
        mau = serializers.IntegerField()
        feature_usage = serializers.DictField(child=serializers.IntegerField())
        funnel_steps = serializers.DictField(child=serializers.IntegerField())
        total_events = serializers.IntegerField()
        unique_days = serializers.IntegerField()
        unique_weeks = serializers.IntegerField()
        from_ = serializers.DateField()
        to = serializers.DateField()
        event_counts = serializers.DictField(child=serializers.IntegerField())
        rolled_up_days = serializers.IntegerField()

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, ValidationError):
            # One message, as for every other refusal here: the first bad parameter's.
            response.data = {"ok": False, "error": next(iter(query_errors(exc.detail).values()))}
        elif isinstance(exc, APIException):
            response.data = {"ok": False, "error": str(exc.detail)}
        return response

    @extend_schema(
        operation_id="analytics_usage",
        tags=["product analytics"],
        summary="Usage summary over the last N UTC days",
        parameters=[
            FilterSerializer,
            OpenApiParameter(
                "X-Dash-Key", OpenApiTypes.STR, location=OpenApiParameter.HEADER, required=False
            ),
        ],
        responses={200: OutputSerializer, 400: _ERROR, 401: _ERROR, 403: _ERROR},
        examples=[
            OpenApiExample(
                "30 days",
                response_only=True,
                value={
                    "ok": True,
                    "ts": "2026-11-21T10:00:00Z",
                    "period_days": 30,
                    "dau": 42.5,
                    "wau": 156.3,
                    "mau": 487,
                    "feature_usage": {"dashboard": 1250, "workflow_builder": 892},
                    "funnel_steps": {"page_view": 5234, "action": 2156, "conversion": 487},
                    "total_events": 7877,
                    "unique_days": 30,
                    "unique_weeks": 5,
                    "from": "2026-10-23",
                    "to": "2026-11-21",
                    "event_counts": {"page_view": 5234, "action": 2156, "conversion": 487},
                    "rolled_up_days": 29,
                },
            )
        ],
    )
    def get(self, request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(usage_summary(days=filters.validated_data["days"]))


def _unlogged(response: Response) -> Response:
    """Keep Django's request log from writing this error response's path: it names the user."""
    response._has_been_logged = True
    return response


def _user_id_refusal(user_id: str) -> Response | None:
    """400 for an id no stored user can have: PostgreSQL text never holds a NUL character."""
    if "\x00" in user_id:
        return _unlogged(
            Response(
                {"ok": False, "error": "user_id must not contain NUL (\\x00) characters."},
                status=400,
            )
        )
    return None


class UserEventsExportApi(APIView):
    """GET /api/analytics/users/<user_id>/export — every event of one user (staff)."""

    @extend_schema(
        operation_id="analytics_user_export",
        tags=["product analytics"],
        summary="GDPR export: all events of one user",
        responses={
            200: OpenApiResponse(
                description="The user's events, oldest first",
                examples=[
                    OpenApiExample(
                        "Export",
                        value={
                            "user_id": "user123",
                            "count": 1,
                            "events": [
                                {
                                    "uuid": "2f1c7c1e-8a35-4c55-9f0e-3f4f3b7f2a10",
                                    "event_type": "page_view",
                                    "user_id": "user123",
                                    "feature": "dashboard",
                                    "url": "/dashboard",
                                    "metadata": {"referrer": "https://example.com"},
                                    "occurred_at": "2026-11-21T10:00:00Z",
                                    "received_at": "2026-11-21T10:00:01Z",
                                }
                            ],
                        },
                    )
                ],
            )
        },
    )
    def get(self, request, user_id: str) -> Response:
        if refusal := _user_id_refusal(user_id):
            return refusal
        return Response(user_events_export(user_id=user_id))


class UserEraseApi(APIView):
    """DELETE /api/analytics/users/<user_id> — erase one user everywhere (staff)."""

    @extend_schema(
        operation_id="analytics_user_erase",
        tags=["product analytics"],
        summary="GDPR erasure: events, rollup contributions and live counters of one user",
        responses={
            200: OpenApiResponse(
                description="Erased (idempotent: erasing again answers zeros)",
                examples=[
                    OpenApiExample(
                        "Erased",
                        value={
                            "ok": True,
                            "user_id": "user123",
                            "events_deleted": 42,
                            "rollup_days_recomputed": ["2026-11-19", "2026-11-20"],
                            "live_counter_keys_cleaned": 7,
                        },
                    )
                ],
            ),
            503: _ERROR,
        },
    )
    def delete(self, request, user_id: str) -> Response:
        if refusal := _user_id_refusal(user_id):
            return refusal
        try:
            erasure = user_erase(user_id=user_id)
        except LiveCountersUnavailable as exc:
            response = Response({"ok": False, "error": str(exc)}, status=503)
            response["Retry-After"] = "5"
            return _unlogged(response)
        return Response(
            {
                "ok": True,
                "user_id": erasure.user_id,
                "events_deleted": erasure.events_deleted,
                "rollup_days_recomputed": [d.isoformat() for d in erasure.rollup_days_recomputed],
                "live_counter_keys_cleaned": erasure.live_counter_keys_cleaned,
            }
        )
