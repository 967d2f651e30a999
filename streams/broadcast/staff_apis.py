"""Staff endpoints of broadcast analytics (SPEC §9.4), under /admin/broadcast/<station>/.

Each answers JSON to API clients, an admin-styled page to browsers (the station
dashboard's tabs) and CSV with `?format=csv`; reports also PDF with `?format=pdf`.
Staff only; a station of another organizer is a 404 for non-superusers. Thin: each
reads its query with a FilterSerializer and calls one selector.
"""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from echonest_analytics.query_params import DayParam, IntegerParam, KeywordNamedFields
from echonest_analytics.renderers import CSVRenderer
from streams.apis import StaffReportApi, StaffStatsHTMLRenderer

from . import charts, reports
from .models import LogCategory, LogLevel, PlayStatsCache
from .play_figures import (
    HEATMAP_COLUMNS,
    SONG_PLAY_COLUMNS,
    TOP_SONG_COLUMNS,
    genre_breakdown,
    heatmap,
    song_for,
    song_plays,
    song_summary,
    stats_refreshed_at,
    top_songs,
)
from .request_figures import request_figures
from .selectors import listeners_daily, local_days_bounds, local_today, uptime
from .station_selectors import (
    ALERT_COLUMNS,
    HEALTH_COLUMNS,
    LISTENER_PERIODS,
    LOG_COLUMNS,
    alerts,
    health_history,
    health_latest,
    listener_graph,
    log_entries_delete,
    log_page,
    station_encoder,
    station_encoders,
    station_overview,
    station_row,
    station_visible_to,
    stations_visible_to,
)

MIN_DAY, MAX_DAY = dt.date(1970, 1, 1), dt.date(9000, 12, 31)
MAX_RANGE_DAYS = 366
PERIODS = PlayStatsCache.Period.values
_station_param = OpenApiParameter(
    "station", OpenApiTypes.STR, OpenApiParameter.PATH, description="The station's stream key."
)
_errors = {
    400: OpenApiResponse(description="Invalid query parameters; nothing changed."),
    401: OpenApiResponse(description="Not signed in."),
    403: OpenApiResponse(description="Not staff."),
    404: OpenApiResponse(description="No station with this key that you may see."),
}


def _choice(choices, *, default=None, help_text: str = ""):
    return serializers.ChoiceField(
        choices=list(choices),
        required=False,
        default=default,
        help_text=help_text,
        error_messages={"invalid_choice": f"expected one of: {', '.join(choices)}"},
    )


def _seconds_param(request, name: str, *, default: int) -> int:
    """A page's refresh interval: `?refresh=` / `?poll=` (1–300 s), for tests and big screens."""
    try:
        return min(max(int(request.query_params.get(name, default)), 1), 300)
    except ValueError:
        return default


class LocalRangeFilter(KeywordNamedFields, serializers.Serializer):
    """`from`/`to` as station-local YYYY-MM-DD; by default the last `default_days` local
    days up to today. The station comes in the serializer's context."""

    default_days = 7

    from_ = DayParam(first=MIN_DAY, last=MAX_DAY, required=False, help_text="First local day.")
    to = DayParam(
        first=MIN_DAY, last=MAX_DAY, required=False, help_text="Last local day (default: today)."
    )

    def validate(self, attrs: dict) -> dict:
        date_to = attrs.get("to") or local_today(station=self.context["station"])
        date_from = attrs.get("from") or date_to - dt.timedelta(days=self.default_days - 1)
        if date_from > date_to:
            raise serializers.ValidationError({"from": "must not be after `to`"})
        if (date_to - date_from).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": f"the range is limited to {MAX_RANGE_DAYS} days"}
            )
        return {**attrs, "from": date_from, "to": date_to}


class StationApi(StaffReportApi):
    """Base: the station from the URL (404 when not visible), the filter read with it."""

    tab = "overview"
    title = ""

    def station(self, key: str):
        station = station_visible_to(user=self.request.user, key=key)
        if station is None:
            raise NotFound(f"No station {key!r} that you may see.")
        self._station = station
        return station

    def filters(self, station) -> dict:
        filters = self.FilterSerializer(
            data=self.request.query_params, context={"station": station}
        )
        filters.is_valid(raise_exception=True)
        return filters.validated_data

    def csv_filename(self, data) -> str:
        return f"{self._station.key}_{self.csv_name}.csv"

    def html_context(self, report: dict) -> dict:
        context = {
            "station": self._station,
            "tab": self.tab,
            "page_title": self.title,
            "encoders": [e.external_id for e in station_encoders(station=self._station)],
        }
        if hasattr(self, "csv_table"):
            columns, rows = self.csv_table(report)
            context["table_columns"] = columns
            context["table_rows"] = [[row.get(c) for c in columns] for row in rows]
        context.update(self.page_context(report))
        return context

    def page_context(self, report: dict) -> dict:
        return {}


# ---------------------------------------------------------------------------------------
# Overview


class StationOverviewApi(StationApi):
    """GET /admin/broadcast/<station>/ — today's KPIs."""

    template_name = "broadcast/overview.html"
    csv_name = "overview"
    title = "Overview"

    class OutputSerializer(serializers.Serializer):
        station = serializers.DictField()
        date = serializers.DateField()
        listeners_now = serializers.IntegerField(allow_null=True)
        peak_today = serializers.IntegerField(allow_null=True)
        average_today = serializers.FloatField(allow_null=True)
        tlh_today = serializers.FloatField()
        plays_today = serializers.IntegerField()
        requests_today = serializers.IntegerField()
        open_alerts = serializers.IntegerField()
        encoders = serializers.ListField(child=serializers.CharField())

    def csv_table(self, data):
        columns = [c for c in self.OutputSerializer().fields if c not in ("station", "encoders")]
        return columns, [data]

    def page_context(self, report: dict) -> dict:
        now = timezone.now()
        station = self._station
        graph = listener_graph(station=station, period="24h", now=now)
        return {
            "listeners_chart": charts.lines_svg(
                [("Station", [(p["timestamp"], p["listeners"]) for p in graph["points"]])],
                title="Listeners, last 24 hours",
            ),
            "top_songs": top_songs(station=station, period="7d", limit=10),
            "open_alert_rows": alerts(station=station, open_only=True),
        }

    @extend_schema(
        operation_id="broadcast_overview",
        summary="A station's KPIs today (staff)",
        parameters=[_station_param],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        return Response(station_overview(station=self.station(station)))


# ---------------------------------------------------------------------------------------
# Play figures


class TopSongsApi(StationApi):
    """GET /admin/broadcast/<station>/top-songs?period=&limit=."""

    template_name = "broadcast/play_stats.html"
    csv_name = "top-songs"
    tab = "plays"
    title = "Play stats"

    class FilterSerializer(serializers.Serializer):
        period = _choice(PERIODS, default="7d", help_text="Local days back, or all.")
        limit = IntegerParam(
            message="an integer from 1 to 500", min_value=1, max_value=500, default=50
        )

    class OutputSerializer(serializers.Serializer):
        class SongSerializer(serializers.Serializer):
            song_id = serializers.CharField()
            title = serializers.CharField()
            artist = serializers.CharField()
            genre = serializers.CharField()
            play_count = serializers.IntegerField()
            total_played_ms = serializers.IntegerField()
            skip_count = serializers.IntegerField(help_text="Plays under 30,000 ms.")
            crossfade_count = serializers.IntegerField()
            avg_duration_ms = serializers.IntegerField(allow_null=True)
            avg_played_ms = serializers.IntegerField(allow_null=True)
            last_played_at = serializers.DateTimeField(allow_null=True)

        period = serializers.ChoiceField(PERIODS)
        refreshed_at = serializers.DateTimeField(allow_null=True)
        songs = SongSerializer(many=True)

    def csv_table(self, data):
        return TOP_SONG_COLUMNS, data["songs"]

    def page_context(self, report: dict) -> dict:
        station = self._station
        date_to = local_today(station=station)
        cells = heatmap(station=station, date_from=date_to - dt.timedelta(days=6), date_to=date_to)
        return {
            "periods": PERIODS,
            "heatmap_chart": charts.heatmap_svg(cells),
            "genres": genre_breakdown(station=station, period=report["period"]),
        }

    @extend_schema(
        operation_id="broadcast_top_songs",
        summary="Most played songs of a period (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        return Response(
            {
                "period": query["period"],
                "refreshed_at": stats_refreshed_at(station=chosen),
                "songs": top_songs(station=chosen, period=query["period"], limit=query["limit"]),
            }
        )


class GenresApi(StationApi):
    """GET /admin/broadcast/<station>/genres?period=."""

    template_name = "broadcast/table.html"
    csv_name = "genres"
    tab = "plays"
    title = "Genres"

    class FilterSerializer(serializers.Serializer):
        period = _choice(PERIODS, default="7d")

    class OutputSerializer(serializers.Serializer):
        class GenreSerializer(serializers.Serializer):
            genre = serializers.CharField(help_text="`Unknown` for songs without one.")
            play_count = serializers.IntegerField()

        period = serializers.ChoiceField(PERIODS)
        genres = GenreSerializer(many=True)

    def csv_table(self, data):
        return ["genre", "play_count"], data["genres"]

    @extend_schema(
        operation_id="broadcast_genres",
        summary="Plays per genre (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        period = self.filters(chosen)["period"]
        return Response(
            {"period": period, "genres": genre_breakdown(station=chosen, period=period)}
        )


class HeatmapApi(StationApi):
    """GET /admin/broadcast/<station>/heatmap?from=&to=."""

    template_name = "broadcast/heatmap.html"
    csv_name = "heatmap"
    tab = "plays"
    title = "Hourly heatmap"

    class FilterSerializer(LocalRangeFilter):
        pass

    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        class CellSerializer(serializers.Serializer):
            date = serializers.DateField(help_text="Local date.")
            hour = serializers.IntegerField(help_text="Local hour 0–23.")
            utc_offset = serializers.CharField(
                help_text="The hour's UTC offset: tells apart the two passes of the hour "
                "repeated when DST ends."
            )
            play_count = serializers.IntegerField()
            unique_songs = serializers.IntegerField()

        from_ = serializers.DateField()
        to = serializers.DateField()
        cells = CellSerializer(many=True)

    def csv_table(self, data):
        return HEATMAP_COLUMNS, data["cells"]

    def page_context(self, report: dict) -> dict:
        return {"heatmap_chart": charts.heatmap_svg(report["cells"])}

    @extend_schema(
        operation_id="broadcast_heatmap",
        summary="Plays and distinct songs per local hour (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        cells = heatmap(station=chosen, date_from=query["from"], date_to=query["to"])
        return Response({"from": query["from"], "to": query["to"], "cells": cells})


class SongPlaysApi(StationApi):
    """GET /admin/broadcast/<station>/songs/<song_id>/plays?limit=."""

    template_name = "broadcast/table.html"
    csv_name = "song-plays"
    tab = "plays"
    title = "Song plays"

    class FilterSerializer(serializers.Serializer):
        limit = IntegerParam(
            message="an integer from 1 to 1000", min_value=1, max_value=1000, default=100
        )

    class OutputSerializer(serializers.Serializer):
        class PlaySerializer(serializers.Serializer):
            started_at = serializers.DateTimeField()
            played_ms = serializers.IntegerField(allow_null=True)
            crossfade = serializers.BooleanField()
            listeners_at_start = serializers.IntegerField(allow_null=True)

        song = serializers.DictField()
        plays = PlaySerializer(many=True)

    def csv_table(self, data):
        return SONG_PLAY_COLUMNS, data["plays"]

    @extend_schema(
        operation_id="broadcast_song_plays",
        summary="A song's plays, newest first, with listeners at each start (staff)",
        parameters=[
            _station_param,
            OpenApiParameter("song_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            FilterSerializer,
        ],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str, song_id: str):
        chosen = self.station(station)
        limit = self.filters(chosen)["limit"]
        song = song_for(station=chosen, song_id=song_id)
        if song is None:
            raise NotFound(f"No song {song_id!r} on this station.")
        return Response(
            {
                "song": song_summary(song=song),
                "plays": song_plays(station=chosen, song=song, limit=limit),
            }
        )


# ---------------------------------------------------------------------------------------
# Listeners


class ListenersApi(StationApi):
    """GET /admin/broadcast/<station>/listeners?encoder=&period=1h|24h|7d."""

    template_name = "broadcast/listeners.html"
    csv_name = "listeners"
    tab = "listeners"
    title = "Listeners"

    class FilterSerializer(serializers.Serializer):
        period = _choice(list(LISTENER_PERIODS), default="1h")
        encoder = serializers.CharField(
            required=False, max_length=200, help_text="Mount or sid; absent: station totals."
        )

    class OutputSerializer(serializers.Serializer):
        class PointSerializer(serializers.Serializer):
            timestamp = serializers.DateTimeField()
            listeners = serializers.IntegerField()

        period = serializers.CharField()
        encoder = serializers.CharField(allow_null=True)
        points = PointSerializer(many=True)
        peak = serializers.IntegerField(allow_null=True)
        average = serializers.FloatField(allow_null=True, help_text="Time-weighted.")
        now = serializers.IntegerField(allow_null=True)

    def csv_table(self, data):
        return ["timestamp", "listeners"], data["points"]

    def page_context(self, report: dict) -> dict:
        station = self._station
        now = timezone.now()
        per_encoder = [
            (e.external_id, listener_graph(station=station, period="24h", encoder=e, now=now))
            for e in station_encoders(station=station)
        ]
        week = listener_graph(station=station, period="7d", now=now)
        today = local_today(station=station)
        days = [
            d
            for d in listeners_daily(
                station=station, date_from=today - dt.timedelta(days=13), date_to=today, now=now
            )
            if d.encoder is None
        ]
        return {
            "periods": list(LISTENER_PERIODS),
            "refresh_seconds": _seconds_param(self.request, "refresh", default=30),
            "graph_chart": charts.lines_svg(
                [("Listeners", [(p["timestamp"], p["listeners"]) for p in report["points"]])],
                title=f"Listeners, last {report['period']}",
            ),
            "encoders_chart": charts.lines_svg(
                [
                    (name, [(p["timestamp"], p["listeners"]) for p in graph["points"]])
                    for name, graph in per_encoder
                ],
                title="Listeners per encoder, last 24 hours",
            ),
            "encoder_legend": [
                (name, charts.SERIES_COLOURS[i % len(charts.SERIES_COLOURS)])
                for i, (name, _) in enumerate(per_encoder)
            ],
            "week_chart": charts.lines_svg(
                [("Listeners", [(p["timestamp"], p["listeners"]) for p in week["points"]])],
                title="Listeners, last 7 days",
            ),
            "daily_chart": charts.peak_average_svg([(d.date, d.peak, d.average) for d in days]),
        }

    @extend_schema(
        operation_id="broadcast_listeners",
        summary="Listener graph with peak, time-weighted average and now (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        encoder = None
        if query.get("encoder"):
            encoder = station_encoder(station=chosen, mount=query["encoder"])
            if encoder is None:
                raise serializers.ValidationError({"encoder": "no such encoder on this station"})
        return Response(listener_graph(station=chosen, period=query["period"], encoder=encoder))


class ListenersDailyApi(StationApi):
    """GET /admin/broadcast/<station>/listeners/daily?from=&to=."""

    template_name = "broadcast/table.html"
    csv_name = "listeners-daily"
    tab = "listeners"
    title = "Daily listeners"
    columns = ["date", "encoder", "peak", "average", "tlh_hours", "atsl_minutes", "cume"]

    class FilterSerializer(LocalRangeFilter):
        pass

    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        class DaySerializer(serializers.Serializer):
            date = serializers.DateField()
            encoder = serializers.CharField(allow_null=True, help_text="null: station total.")
            peak = serializers.IntegerField(allow_null=True)
            average = serializers.FloatField(allow_null=True)
            tlh_hours = serializers.FloatField()
            atsl_minutes = serializers.FloatField(allow_null=True)
            cume = serializers.IntegerField()

        from_ = serializers.DateField()
        to = serializers.DateField()
        days = DaySerializer(many=True)

    def csv_table(self, data):
        return self.columns, data["days"]

    @extend_schema(
        operation_id="broadcast_listeners_daily",
        summary="Per local day and encoder: peak, average, TLH, ATSL, cume (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        days = listeners_daily(station=chosen, date_from=query["from"], date_to=query["to"])
        return Response(
            {
                "from": query["from"],
                "to": query["to"],
                "days": [{c: getattr(d, c) for c in self.columns} for d in days],
            }
        )


# ---------------------------------------------------------------------------------------
# Requests


class RequestsApi(StationApi):
    """GET /admin/broadcast/<station>/requests?period=."""

    template_name = "broadcast/requests.html"
    csv_name = "requests"
    tab = "requests"
    title = "Requests"

    class FilterSerializer(serializers.Serializer):
        period = _choice(PERIODS, default="30d")

    class OutputSerializer(serializers.Serializer):
        class SharesSerializer(serializers.Serializer):
            approved = serializers.FloatField(allow_null=True, help_text="Played included.")
            denied = serializers.FloatField(allow_null=True)
            expired = serializers.FloatField(allow_null=True)

        class ResponseSerializer(serializers.Serializer):
            median = serializers.FloatField(allow_null=True)
            mean = serializers.FloatField(allow_null=True)

        class HourSerializer(serializers.Serializer):
            hour = serializers.IntegerField()
            count = serializers.IntegerField()

        class SongSerializer(serializers.Serializer):
            song_id = serializers.CharField()
            title = serializers.CharField()
            count = serializers.IntegerField()

        class RequesterSerializer(serializers.Serializer):
            requester = serializers.CharField(help_text="Keyed hash, never the IP.")
            count = serializers.IntegerField()

        period = serializers.ChoiceField(PERIODS)
        total = serializers.IntegerField()
        pending = serializers.IntegerField()
        approved = serializers.IntegerField(help_text="Approved, not played yet, not expired.")
        denied = serializers.IntegerField()
        expired = serializers.IntegerField()
        played = serializers.IntegerField()
        shares = SharesSerializer(help_text="Over non-pending requests; they add up to 1.")
        response_seconds = ResponseSerializer()
        by_hour = HourSerializer(many=True)
        top_songs = SongSerializer(many=True)
        top_requesters = RequesterSerializer(many=True)

    def csv_table(self, data):
        row = {
            k: data[k]
            for k in ("period", "total", "pending", "approved", "denied", "expired", "played")
        }
        row.update({f"share_{k}": v for k, v in data["shares"].items()})
        row.update({f"response_{k}_seconds": v for k, v in data["response_seconds"].items()})
        return list(row), [row]

    def page_context(self, report: dict) -> dict:
        return {
            "periods": PERIODS,
            "hours_chart": charts.hour_bars_svg(
                [(b["hour"], b["count"]) for b in report["by_hour"]], title="Requests by local hour"
            ),
            "expiry_hours": settings.BROADCAST_REQUEST_EXPIRY_HOURS,
        }

    @extend_schema(
        operation_id="broadcast_requests",
        summary="Request counts, shares, response time, by hour, top songs and requesters (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        return Response(request_figures(station=chosen, period=self.filters(chosen)["period"]))


# ---------------------------------------------------------------------------------------
# Event log


@extend_schema_field(OpenApiTypes.STR)
class InstantOrDayParam(serializers.Field):
    """An ISO 8601 instant with offset, or a local date (YYYY-MM-DD): its start for `from`,
    its end for `to`."""

    default_error_messages = {"invalid": "expected YYYY-MM-DD or an ISO 8601 time with offset"}

    def __init__(self, *, end: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.end = end

    def to_internal_value(self, data):
        text = str(data)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                self.fail("invalid")
            return ("day", day)
        try:
            at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid")
        if at.tzinfo is None or not (1970 <= at.year <= 9000):
            self.fail("invalid")
        return ("instant", at)


class LogApi(StationApi):
    """GET /admin/broadcast/<station>/log — newest first, filtered, paged."""

    template_name = "broadcast/log.html"
    csv_name = "log"
    tab = "log"
    title = "Event log"

    class FilterSerializer(KeywordNamedFields, serializers.Serializer):
        limit = IntegerParam(
            message="an integer from 1 to 500", min_value=1, max_value=500, default=50
        )
        offset = IntegerParam(
            message="an integer from 0 to 10000000", min_value=0, max_value=10_000_000, default=0
        )
        level = _choice(LogLevel.values)
        category = _choice(LogCategory.values)
        from_ = InstantOrDayParam(required=False)
        to = InstantOrDayParam(required=False, end=True)
        search = serializers.CharField(
            required=False, max_length=200, allow_blank=True, help_text="In event or message."
        )

        def validate_search(self, value: str) -> str:
            if "\x00" in value:
                raise serializers.ValidationError("must not contain NUL")
            return value

    class OutputSerializer(serializers.Serializer):
        class EventSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            timestamp = serializers.DateTimeField()
            level = serializers.ChoiceField(LogLevel.values)
            category = serializers.ChoiceField(LogCategory.values)
            event = serializers.CharField()
            message = serializers.CharField()
            metadata = serializers.DictField()
            deck = serializers.CharField(allow_null=True)
            song_id = serializers.CharField(allow_null=True)
            encoder = serializers.CharField(allow_null=True)

        events = EventSerializer(many=True)
        total = serializers.IntegerField()
        limit = serializers.IntegerField()
        offset = serializers.IntegerField()

    def csv_table(self, data):
        return LOG_COLUMNS, data["events"]

    def page_context(self, report: dict) -> dict:
        query = self.request.query_params
        offset, limit = report["offset"], report["limit"]
        return {
            "levels": LogLevel.values,
            "categories": LogCategory.values,
            "selected": {
                k: query.get(k, "") for k in ("level", "category", "search", "from", "to")
            },
            "previous_offset": max(offset - limit, 0) if offset else None,
            "next_offset": offset + limit if offset + limit < report["total"] else None,
            "poll_seconds": _seconds_param(self.request, "poll", default=5),
        }

    @staticmethod
    def bounds(station, query) -> dict:
        def instant(value, *, end: bool):
            if value is None:
                return None
            kind, at = value
            if kind == "instant":
                return at
            start, stop = local_days_bounds(station=station, date_from=at, date_to=at)
            return stop if end else start

        return {
            "start": instant(query.get("from"), end=False),
            "end": instant(query.get("to"), end=True),
        }

    @extend_schema(
        operation_id="broadcast_log",
        summary="The station's event log, newest first (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        return Response(
            log_page(
                station=chosen,
                limit=query["limit"],
                offset=query["offset"],
                level=query.get("level"),
                category=query.get("category"),
                search=query.get("search") or None,
                **self.bounds(chosen, query),
            )
        )

    class DeleteFilterSerializer(serializers.Serializer):
        older_than_days = IntegerParam(
            message="an integer from 1 to 36500", min_value=1, max_value=36500
        )

    class DeleteOutputSerializer(serializers.Serializer):
        deleted = serializers.IntegerField()
        before = serializers.DateTimeField()

    @extend_schema(
        operation_id="broadcast_log_delete",
        summary="Delete the station's log entries older than N days (staff)",
        parameters=[_station_param, DeleteFilterSerializer],
        request=None,
        responses={200: DeleteOutputSerializer, **_errors},
    )
    def delete(self, request, station: str):
        """DELETE …/log?older_than_days=N — the same path as the read (DRF routes a path to
        one view); its own filter and output serializers."""
        chosen = self.station(station)
        filters = self.DeleteFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        before = timezone.now() - dt.timedelta(days=filters.validated_data["older_than_days"])
        deleted = log_entries_delete(station=chosen, before=before)
        return Response({"deleted": deleted, "before": before})


# ---------------------------------------------------------------------------------------
# Health, alerts, uptime


class _HealthFields(serializers.Serializer):
    taken_at = serializers.DateTimeField(allow_null=True)
    cpu_pct = serializers.FloatField(allow_null=True)
    memory_mb = serializers.FloatField(allow_null=True)
    ring_buffer_fill_deck_a = serializers.FloatField(allow_null=True)
    ring_buffer_fill_deck_b = serializers.FloatField(allow_null=True)
    decoder_latency_ms = serializers.FloatField(allow_null=True)
    stream_connected = serializers.BooleanField(allow_null=True)
    db_connected = serializers.BooleanField(allow_null=True)
    active_encoders = serializers.IntegerField(allow_null=True)
    disk_free_mb = serializers.FloatField(allow_null=True)


class HealthApi(StationApi):
    """GET /admin/broadcast/<station>/health — the latest snapshot."""

    template_name = "broadcast/health.html"
    csv_name = "health"
    tab = "health"
    title = "Health"

    class OutputSerializer(_HealthFields):
        """The latest health snapshot (every field null when the station sent none)."""

    def csv_table(self, data):
        return HEALTH_COLUMNS, [data]

    def page_context(self, report: dict) -> dict:
        station = self._station
        history = health_history(station=station, minutes=60)
        bars = []
        if report["taken_at"] is not None:
            bars = [
                ("CPU", report["cpu_pct"] / 100),
                ("Deck A buffer", report["ring_buffer_fill_deck_a"]),
                ("Deck B buffer", report["ring_buffer_fill_deck_b"]),
            ]
        return {
            "health_bars": charts.bars_svg(bars, title="Latest health snapshot") if bars else "",
            "history_chart": charts.lines_svg(
                [
                    ("CPU %", [(h["taken_at"], round(h["cpu_pct"])) for h in history]),
                    (
                        "Deck A %",
                        [
                            (h["taken_at"], round(h["ring_buffer_fill_deck_a"] * 100))
                            for h in history
                        ],
                    ),
                    (
                        "Deck B %",
                        [
                            (h["taken_at"], round(h["ring_buffer_fill_deck_b"] * 100))
                            for h in history
                        ],
                    ),
                ],
                title="Health, last hour",
            ),
            "history_legend": list(
                zip(("CPU %", "Deck A %", "Deck B %"), charts.SERIES_COLOURS, strict=False)
            ),
            "open_alert_rows": alerts(station=station, open_only=True),
            "uptime_rows": uptime(
                station=station,
                start=timezone.now() - dt.timedelta(hours=24),
                end=timezone.now(),
            ),
        }

    @extend_schema(
        operation_id="broadcast_health",
        summary="The station's latest health snapshot (staff)",
        parameters=[_station_param],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        return Response(health_latest(station=self.station(station)))


class HealthHistoryApi(StationApi):
    """GET /admin/broadcast/<station>/health/history?minutes=."""

    template_name = "broadcast/table.html"
    csv_name = "health-history"
    tab = "health"
    title = "Health history"

    class FilterSerializer(serializers.Serializer):
        minutes = IntegerParam(
            message="an integer from 1 to 10080", min_value=1, max_value=10080, default=60
        )

    class OutputSerializer(serializers.Serializer):
        snapshots = _HealthFields(many=True)

    def csv_table(self, data):
        return HEALTH_COLUMNS, data["snapshots"]

    @extend_schema(
        operation_id="broadcast_health_history",
        summary="Health snapshots of the last N minutes, oldest first (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        minutes = self.filters(chosen)["minutes"]
        return Response({"snapshots": health_history(station=chosen, minutes=minutes)})


class AlertsApi(StationApi):
    """GET /admin/broadcast/<station>/alerts?open=1."""

    template_name = "broadcast/table.html"
    csv_name = "alerts"
    tab = "health"
    title = "Alerts"

    class FilterSerializer(serializers.Serializer):
        open = _choice(["0", "1"], default="0", help_text="1: only open alerts.")

    class OutputSerializer(serializers.Serializer):
        class AlertSerializer(serializers.Serializer):
            kind = serializers.CharField()
            subject = serializers.CharField()
            opened_at = serializers.DateTimeField()
            resolved_at = serializers.DateTimeField(allow_null=True)
            message = serializers.CharField()

        alerts = AlertSerializer(many=True)

    def csv_table(self, data):
        return ALERT_COLUMNS, data["alerts"]

    @extend_schema(
        operation_id="broadcast_alerts",
        summary="The station's alerts, newest first (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        open_only = self.filters(chosen)["open"] == "1"
        return Response({"alerts": alerts(station=chosen, open_only=open_only)})


class UptimeApi(StationApi):
    """GET /admin/broadcast/<station>/uptime?from=&to=."""

    template_name = "broadcast/table.html"
    csv_name = "uptime"
    tab = "health"
    title = "Uptime"
    columns = ["encoder", "uptime_pct", "disconnections", "downtime_seconds"]

    class FilterSerializer(LocalRangeFilter):
        pass

    class OutputSerializer(KeywordNamedFields, serializers.Serializer):
        class EncoderSerializer(serializers.Serializer):
            encoder = serializers.CharField()
            uptime_pct = serializers.FloatField(allow_null=True)
            disconnections = serializers.IntegerField()
            downtime_seconds = serializers.FloatField()

        from_ = serializers.DateField()
        to = serializers.DateField()
        encoders = EncoderSerializer(many=True)

    def csv_table(self, data):
        return self.columns, data["encoders"]

    @extend_schema(
        operation_id="broadcast_uptime",
        summary="Per encoder: uptime %, disconnections, downtime (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        query = self.filters(chosen)
        start, end = local_days_bounds(station=chosen, date_from=query["from"], date_to=query["to"])
        rows = uptime(station=chosen, start=start, end=end)
        return Response(
            {
                "from": query["from"],
                "to": query["to"],
                "encoders": [{c: getattr(r, c) for c in self.columns} for r in rows],
            }
        )


# ---------------------------------------------------------------------------------------
# Reports


class ReportApi(StationApi):
    """Base of the printable reports: the same page is the browser view and the PDF."""

    renderer_classes = [JSONRenderer, StaffStatsHTMLRenderer, CSVRenderer, reports.PDFRenderer]
    tab = "reports"
    kind = ""

    def csv_table(self, data):
        return reports.report_csv_table(data)

    def csv_filename(self, data) -> str:
        return f"{self._station.key}_{self.kind}.csv"

    def pdf_filename(self, data) -> str:
        return f"{self._station.key}_{self.kind}.pdf"

    def page_context(self, report: dict) -> dict:
        return reports.report_page_context(report)

    def get(self, request, station: str):
        chosen = self.station(station)
        return Response(self.build(chosen, self.filters(chosen)))


_report_output = reports.ReportOutputSerializer


class DailyBroadcastReportApi(ReportApi):
    """GET /admin/broadcast/<station>/reports/daily-broadcast?date=."""

    kind = "daily-broadcast"
    template_name = "broadcast/report.html"
    title = "Daily broadcast report"

    class FilterSerializer(serializers.Serializer):
        date = DayParam(
            first=MIN_DAY, last=MAX_DAY, required=False, help_text="Local day (default: today)."
        )

    def build(self, station, query):
        day = query.get("date") or local_today(station=station)
        return reports.daily_broadcast(station=station, day=day)

    @extend_schema(
        operation_id="broadcast_report_daily_broadcast",
        summary="Daily broadcast report: summary, top songs, listener peaks, events (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: _report_output, **_errors},
    )
    def get(self, request, station: str):
        return super().get(request, station)


class SongHistoryReportApi(ReportApi):
    """GET /admin/broadcast/<station>/reports/song-history?song_id=."""

    kind = "song-history"
    template_name = "broadcast/report.html"
    title = "Song play history"

    class FilterSerializer(serializers.Serializer):
        song_id = serializers.CharField(max_length=100, help_text="The playout's or SAM's song id.")

    def build(self, station, query):
        song = song_for(station=station, song_id=query["song_id"])
        if song is None:
            raise NotFound(f"No song {query['song_id']!r} on this station.")
        return reports.song_history(station=station, song=song)

    @extend_schema(
        operation_id="broadcast_report_song_history",
        summary="Every play of one song (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: _report_output, **_errors},
    )
    def get(self, request, station: str):
        return super().get(request, station)


class ListenerTrendReportApi(ReportApi):
    """GET /admin/broadcast/<station>/reports/listener-trend?period=week|month."""

    kind = "listener-trend"
    template_name = "broadcast/report.html"
    title = "Listener trend report"

    class FilterSerializer(serializers.Serializer):
        period = _choice(["week", "month"], default="week")

    def build(self, station, query):
        return reports.listener_trend(station=station, period=query["period"])

    @extend_schema(
        operation_id="broadcast_report_listener_trend",
        summary="Daily listener figures of the last week or month (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: _report_output, **_errors},
    )
    def get(self, request, station: str):
        return super().get(request, station)


class RequestLogReportApi(ReportApi):
    """GET /admin/broadcast/<station>/reports/request-log?from=&to=."""

    kind = "request-log"
    template_name = "broadcast/report.html"
    title = "Request log report"

    class FilterSerializer(LocalRangeFilter):
        pass

    def build(self, station, query):
        return reports.request_log_report(
            station=station, date_from=query["from"], date_to=query["to"]
        )

    @extend_schema(
        operation_id="broadcast_report_request_log",
        summary="Every request of a period with its status (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: _report_output, **_errors},
    )
    def get(self, request, station: str):
        return super().get(request, station)


class StreamUptimeReportApi(ReportApi):
    """GET /admin/broadcast/<station>/reports/stream-uptime?from=&to=."""

    kind = "stream-uptime"
    template_name = "broadcast/report.html"
    title = "Stream uptime report"

    class FilterSerializer(LocalRangeFilter):
        pass

    def build(self, station, query):
        return reports.stream_uptime(station=station, date_from=query["from"], date_to=query["to"])

    @extend_schema(
        operation_id="broadcast_report_stream_uptime",
        summary="Uptime %, disconnections and downtime per encoder (staff)",
        parameters=[_station_param, FilterSerializer],
        responses={200: _report_output, **_errors},
    )
    def get(self, request, station: str):
        return super().get(request, station)


# ---------------------------------------------------------------------------------------
# Index pages


class StationListApi(StaffReportApi):
    """GET /admin/broadcast/ — the stations the user may see."""

    template_name = "broadcast/index.html"
    csv_name = "stations"

    class OutputSerializer(serializers.Serializer):
        class StationSerializer(serializers.Serializer):
            key = serializers.CharField()
            title = serializers.CharField()
            organizer = serializers.CharField(allow_null=True)
            timezone = serializers.CharField()

        stations = StationSerializer(many=True)

    def csv_table(self, data):
        return ["key", "title", "organizer", "timezone"], data["stations"]

    def csv_filename(self, data) -> str:
        return "broadcast-stations.csv"

    @extend_schema(
        operation_id="broadcast_stations",
        summary="Stations you may see (staff)",
        responses={200: OutputSerializer, 401: _errors[401], 403: _errors[403]},
    )
    def get(self, request):
        return Response(
            {"stations": [station_row(s) for s in stations_visible_to(user=request.user)]}
        )


REPORT_KINDS = {
    "daily-broadcast": (
        "Daily broadcast",
        "Summary, top songs, listener peaks and events of one local day",
        "date",
    ),
    "song-history": (
        "Song play history",
        "Every play of one song with its time and listeners",
        "song_id",
    ),
    "listener-trend": (
        "Listener trend",
        "Daily peak, average, TLH and cume of the last week or month",
        "period",
    ),
    "request-log": ("Request log", "Every request of a period with its status", "range"),
    "stream-uptime": (
        "Stream uptime",
        "Uptime %, disconnections and downtime per encoder",
        "range",
    ),
}


class ReportIndexApi(StationApi):
    """GET /admin/broadcast/<station>/reports/ — the report kinds and their parameters."""

    template_name = "broadcast/reports_index.html"
    csv_name = "reports"
    tab = "reports"
    title = "Reports"

    class OutputSerializer(serializers.Serializer):
        class KindSerializer(serializers.Serializer):
            kind = serializers.CharField()
            title = serializers.CharField()
            description = serializers.CharField()
            url = serializers.CharField()

        reports = KindSerializer(many=True)

    def csv_table(self, data):
        return ["kind", "title", "description", "url"], data["reports"]

    def page_context(self, report: dict) -> dict:
        return {
            "today": local_today(station=self._station),
            "week_ago": local_today(station=self._station) - dt.timedelta(days=6),
            "top": top_songs(station=self._station, period="all", limit=200),
        }

    @extend_schema(
        operation_id="broadcast_reports",
        summary="The reports of a station (staff)",
        parameters=[_station_param],
        responses={200: OutputSerializer, **_errors},
    )
    def get(self, request, station: str):
        chosen = self.station(station)
        return Response(
            {
                "reports": [
                    {
                        "kind": kind,
                        "title": title,
                        "description": description,
                        "url": f"/admin/broadcast/{chosen.key}/reports/{kind}",
                    }
                    for kind, (title, description, _) in REPORT_KINDS.items()
                ]
            }
        )


def _name_components() -> None:
    """OpenAPI component names: drf-spectacular names a serializer after its class, and
    every API here nests an `OutputSerializer`; prefix them with the API's name."""
    import sys

    module = sys.modules[__name__]
    for api in vars(module).values():
        if (
            not (isinstance(api, type) and issubclass(api, StaffReportApi))
            or api.__module__ != __name__
        ):
            continue
        prefix = "Broadcast" + api.__name__.removesuffix("Api")
        for attr in ("OutputSerializer", "DeleteOutputSerializer"):
            serializer = api.__dict__.get(attr)
            if serializer is None:
                continue
            serializer.__name__ = prefix + attr.removesuffix("OutputSerializer").replace(
                "Delete", "Delete"
            )
            for name, nested in vars(serializer).items():
                if isinstance(nested, type) and issubclass(nested, serializers.BaseSerializer):
                    nested.__name__ = prefix + name


_name_components()
