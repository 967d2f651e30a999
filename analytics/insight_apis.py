"""HTTP API of product insights: funnels, retention cohorts, stickiness (SPEC §6.5).

Thin: each class reads its query with a FilterSerializer, calls one selector of
`analytics.insights` and answers through its OutputSerializer. Auth and error shapes
are the usage endpoint's (§5.4): `X-Dash-Key` or staff, 401/403 otherwise, and
`{"ok": false, "error": "…"}` for every refusal.
"""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from echonest_analytics.db_router import StaffReadsFromReplica
from echonest_analytics.query_params import ChoiceParam, IntegerParam, query_errors

from .apis import _ERROR, DashKeyOrStaff
from .insights import (
    FUNNEL_MAX_STEPS,
    FUNNEL_MAX_WINDOW_DAYS,
    FUNNEL_MIN_STEPS,
    INSIGHT_MAX_DAYS,
    RETENTION_MAX_COHORTS,
    funnel,
    funnel_steps_parse,
    retention_cohorts,
    stickiness,
)

_SMALL_NUMBER = re.compile(r"\s*\d{1,4}\s*")
_DASH_KEY = OpenApiParameter(
    "X-Dash-Key", OpenApiTypes.STR, location=OpenApiParameter.HEADER, required=False
)
_REFUSALS = {400: _ERROR, 401: _ERROR, 403: _ERROR}


def _days_param(*, default: int, help_text: str) -> IntegerParam:
    return IntegerParam(
        message=f"days must be a whole number from 1 to {INSIGHT_MAX_DAYS}.",
        syntax=_SMALL_NUMBER,
        min_value=1,
        max_value=INSIGHT_MAX_DAYS,
        default=default,
        help_text=help_text,
    )


class StepsParam(serializers.CharField):
    """`event_type` or `event_type:feature`, comma-separated, 2–10 of them; read into
    `FunnelStep`s. One fixed message for every way it can be wrong."""

    MESSAGE = (
        f"steps must be {FUNNEL_MIN_STEPS} to {FUNNEL_MAX_STEPS} comma-separated "
        "event_type or event_type:feature."
    )

    def __init__(self, **kwargs):
        kinds = ("invalid", "blank", "required", "null", "max_length", "null_characters")
        super().__init__(
            trim_whitespace=False,
            max_length=2000,
            error_messages=dict.fromkeys(kinds, self.MESSAGE),
            **kwargs,
        )
        self.validators = []  # every message is ours (the NUL check included)

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 2000:
            self.fail("invalid")
        try:
            return funnel_steps_parse(data)
        except ValueError:
            self.fail("invalid")


@extend_schema_serializer(component_name="FunnelStepFigures")
class FunnelStepOutputSerializer(serializers.Serializer):
    step = serializers.CharField()
    users = serializers.IntegerField()
    conversion_from_start = serializers.FloatField()
    conversion_from_previous = serializers.FloatField()
    median_seconds_from_previous = serializers.FloatField(allow_null=True)


@extend_schema_serializer(component_name="RetentionCohort")
class RetentionCohortOutputSerializer(serializers.Serializer):
    start = serializers.DateField()
    users = serializers.IntegerField()
    returning = serializers.ListField(child=serializers.FloatField())


class ProductInsightApi(StaffReadsFromReplica, APIView):
    """What every product insight endpoint shares with GET /api/analytics/usage."""

    # Token first, so an unauthenticated request gets 401 with WWW-Authenticate.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [DashKeyOrStaff]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, ValidationError):
            # One message, the first bad parameter's, as the usage endpoint answers.
            response.data = {"ok": False, "error": next(iter(query_errors(exc.detail).values()))}
        elif isinstance(exc, APIException):
            response.data = {"ok": False, "error": str(exc.detail)}
        return response

    def filters(self, request) -> dict:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return filters.validated_data


class FunnelApi(ProductInsightApi):
    """GET /api/analytics/funnel?steps=…&window_days=14&days=30 — an ordered funnel."""

    class FilterSerializer(serializers.Serializer):
        steps = StepsParam(
            help_text="Comma-separated steps, each `event_type` or `event_type:feature`, "
            f"{FUNNEL_MIN_STEPS} to {FUNNEL_MAX_STEPS}, e.g. "
            "`page_view:pricing,action:signup,conversion`."
        )
        window_days = IntegerParam(
            message=f"window_days must be a whole number from 1 to {FUNNEL_MAX_WINDOW_DAYS}.",
            syntax=_SMALL_NUMBER,
            min_value=1,
            max_value=FUNNEL_MAX_WINDOW_DAYS,
            default=14,
            help_text="Each later step must come within this many days of the user's "
            "first step-1 event in the window.",
        )
        days = _days_param(
            default=30,
            help_text="UTC days up to and including today in which step 1 counts (only days "
            "within the raw event retention, PRODUCT_EVENT_RETENTION_DAYS, hold events).",
        )

    @extend_schema_serializer(component_name="Funnel")
    class OutputSerializer(serializers.Serializer):
        """SPEC §6.5's ordered funnel, one entry per step in the order asked."""

        ok = serializers.BooleanField()
        steps = FunnelStepOutputSerializer(many=True)

    @extend_schema(
        operation_id="analytics_funnel",
        tags=["product analytics"],
        summary="Ordered funnel: users reaching each step in order within a time window",
        parameters=[FilterSerializer, _DASH_KEY],
        responses={200: OutputSerializer, **_REFUSALS},
        examples=[
            OpenApiExample(
                "Pricing to conversion",
                response_only=True,
                value={
                    "ok": True,
                    "steps": [
                        {
                            "step": "page_view:pricing",
                            "users": 120,
                            "conversion_from_start": 1.0,
                            "conversion_from_previous": 1.0,
                            "median_seconds_from_previous": None,
                        },
                        {
                            "step": "action:signup",
                            "users": 48,
                            "conversion_from_start": 0.4,
                            "conversion_from_previous": 0.4,
                            "median_seconds_from_previous": 312.5,
                        },
                        {
                            "step": "conversion",
                            "users": 12,
                            "conversion_from_start": 0.1,
                            "conversion_from_previous": 0.25,
                            "median_seconds_from_previous": 86400.0,
                        },
                    ],
                },
            )
        ],
    )
    def get(self, request) -> Response:
        query = self.filters(request)
        report = funnel(steps=query["steps"], window_days=query["window_days"], days=query["days"])
        return Response(self.OutputSerializer(report).data)


class RetentionApi(ProductInsightApi):
    """GET /api/analytics/retention?period=day|week&cohorts=8 — retention cohorts."""

    class FilterSerializer(serializers.Serializer):
        period = ChoiceParam(
            choices=["day", "week"],
            default="week",
            error_messages={"invalid_choice": "period must be day or week."},
            help_text="UTC days, or ISO weeks (Monday to Sunday).",
        )
        cohorts = IntegerParam(
            message=f"cohorts must be a whole number from 1 to {RETENTION_MAX_COHORTS}.",
            syntax=_SMALL_NUMBER,
            min_value=1,
            max_value=RETENTION_MAX_COHORTS,
            default=8,
            help_text="How many periods back, the current one included.",
        )

    @extend_schema_serializer(component_name="Retention")
    class OutputSerializer(serializers.Serializer):
        """SPEC §6.5's cohorts, oldest first; returning[n] = share active n periods later."""

        ok = serializers.BooleanField()
        period = serializers.ChoiceField(choices=["day", "week"])
        cohorts = RetentionCohortOutputSerializer(many=True)

    @extend_schema(
        operation_id="analytics_retention",
        tags=["product analytics"],
        summary="Retention cohorts by the UTC day or ISO week of each user's first event",
        parameters=[FilterSerializer, _DASH_KEY],
        responses={200: OutputSerializer, **_REFUSALS},
        examples=[
            OpenApiExample(
                "Two weekly cohorts",
                response_only=True,
                value={
                    "ok": True,
                    "period": "week",
                    "cohorts": [
                        {"start": "2026-11-09", "users": 3, "returning": [1.0, 0.667]},
                        {"start": "2026-11-16", "users": 5, "returning": [1.0]},
                    ],
                },
            )
        ],
    )
    def get(self, request) -> Response:
        query = self.filters(request)
        report = retention_cohorts(period=query["period"], cohorts=query["cohorts"])
        return Response(self.OutputSerializer(report).data)


class StickinessApi(ProductInsightApi):
    """GET /api/analytics/stickiness?days=30 — users by number of active days, DAU/MAU."""

    class FilterSerializer(serializers.Serializer):
        days = _days_param(default=30, help_text="UTC days up to and including today.")

    @extend_schema_serializer(component_name="Stickiness")
    class OutputSerializer(serializers.Serializer):
        """SPEC §6.5's stickiness: `users_by_active_days` has a key for every 1 … days."""

        ok = serializers.BooleanField()
        days = serializers.IntegerField()
        users_by_active_days = serializers.DictField(child=serializers.IntegerField())
        dau_mau = serializers.FloatField()

    @extend_schema(
        operation_id="analytics_stickiness",
        tags=["product analytics"],
        summary="Stickiness: users by distinct active UTC days in the window, and DAU/MAU",
        parameters=[FilterSerializer, _DASH_KEY],
        responses={200: OutputSerializer, **_REFUSALS},
        examples=[
            OpenApiExample(
                "Three days",
                response_only=True,
                value={
                    "ok": True,
                    "days": 3,
                    "users_by_active_days": {"1": 40, "2": 12, "3": 5},
                    "dau_mau": 0.456,
                },
            )
        ],
    )
    def get(self, request) -> Response:
        report = stickiness(days=self.filters(request)["days"])
        return Response(self.OutputSerializer(report).data)
