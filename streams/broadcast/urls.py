from django.apps import apps
from django.urls import path, register_converter

from . import apis, staff_apis


class StationKeyConverter:
    """A station's stream key under /admin/broadcast/, but never the name of one of the
    app's models: /admin/broadcast/station/ and the like stay the Django admin's pages.
    Any other segment, slug or not, reaches the staff API, which answers it (401/403 to
    the anonymous, 404 for no such station) rather than the admin's login redirect."""

    regex = "(?!(?:{})/)[^/]+".format(
        "|".join(model._meta.model_name for model in apps.get_app_config("broadcast").get_models())
    )

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(StationKeyConverter, "station_key")

_station = "admin/broadcast/<station_key:station>/"

urlpatterns = [
    # `str`, not `slug`: a key that is no slug still reaches the view and gets its 401.
    path(
        "api/broadcast/<str:station>/ingest",
        apis.StationPushIngestApi.as_view({"post": "create"}),
        name="broadcast-push-ingest",
    ),
    # Staff pages and API (SPEC §9.4), before the admin's catch-all.
    path("admin/broadcast/", staff_apis.StationListApi.as_view(), name="broadcast-stations"),
    path(_station, staff_apis.StationOverviewApi.as_view(), name="broadcast-overview"),
    path(f"{_station}top-songs", staff_apis.TopSongsApi.as_view(), name="broadcast-top-songs"),
    path(f"{_station}genres", staff_apis.GenresApi.as_view(), name="broadcast-genres"),
    path(f"{_station}heatmap", staff_apis.HeatmapApi.as_view(), name="broadcast-heatmap"),
    path(
        f"{_station}songs/<str:song_id>/plays",
        staff_apis.SongPlaysApi.as_view(),
        name="broadcast-song-plays",
    ),
    path(f"{_station}listeners", staff_apis.ListenersApi.as_view(), name="broadcast-listeners"),
    path(
        f"{_station}listeners/daily",
        staff_apis.ListenersDailyApi.as_view(),
        name="broadcast-listeners-daily",
    ),
    path(f"{_station}requests", staff_apis.RequestsApi.as_view(), name="broadcast-requests"),
    path(
        f"{_station}log",
        staff_apis.LogApi.as_view(),
        name="broadcast-log",
    ),
    path(f"{_station}health", staff_apis.HealthApi.as_view(), name="broadcast-health"),
    path(
        f"{_station}health/history",
        staff_apis.HealthHistoryApi.as_view(),
        name="broadcast-health-history",
    ),
    path(f"{_station}alerts", staff_apis.AlertsApi.as_view(), name="broadcast-alerts"),
    path(f"{_station}uptime", staff_apis.UptimeApi.as_view(), name="broadcast-uptime"),
    path(f"{_station}reports/", staff_apis.ReportIndexApi.as_view(), name="broadcast-reports"),
    path(
        f"{_station}reports/daily-broadcast",
        staff_apis.DailyBroadcastReportApi.as_view(),
        name="broadcast-report-daily-broadcast",
    ),
    path(
        f"{_station}reports/song-history",
        staff_apis.SongHistoryReportApi.as_view(),
        name="broadcast-report-song-history",
    ),
    path(
        f"{_station}reports/listener-trend",
        staff_apis.ListenerTrendReportApi.as_view(),
        name="broadcast-report-listener-trend",
    ),
    path(
        f"{_station}reports/request-log",
        staff_apis.RequestLogReportApi.as_view(),
        name="broadcast-report-request-log",
    ),
    path(
        f"{_station}reports/stream-uptime",
        staff_apis.StreamUptimeReportApi.as_view(),
        name="broadcast-report-stream-uptime",
    ),
]
