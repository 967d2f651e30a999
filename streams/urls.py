from django.urls import path

from . import apis, live_apis, pages

urlpatterns = [
    path(
        "analytics/events",
        apis.playback_events_ingest,
        name="playback-events-ingest",
    ),
    path("api/streams/<slug:key>", apis.StreamInfoApi.as_view(), name="stream-info"),
    path("streams/<slug:key>/watch", pages.stream_watch_page, name="stream-watch"),
    # Staff reports live under /admin/ but are registered before the admin's own URLs.
    path("admin/analytics/streams", apis.StreamStatsListApi.as_view(), name="stream-stats"),
    path(
        "admin/analytics/streams/summary",
        apis.StreamStatsSummaryApi.as_view(),
        name="stream-stats-summary",
    ),
    path(
        "admin/analytics/streams/bunny-sync",
        apis.BunnySyncApi.as_view(),
        name="stream-stats-bunny-sync",
    ),
    path(
        "admin/analytics/streams/<slug:key>/audience",
        apis.StreamAudienceApi.as_view(),
        name="stream-audience",
    ),
    path(
        "admin/analytics/streams/<slug:key>/live",
        live_apis.StreamLiveViewersApi.as_view(),
        name="stream-live-viewers",
    ),
    path("admin/analytics/live", live_apis.LiveViewersOverviewApi.as_view(), name="live-viewers"),
    # After `summary`, `bunny-sync` and the per-stream reports above, so those two never resolve as stream keys. Any key
    # (`path:`) reaches the view, which answers 401/403/404 as its schema says; a key
    # that is no slug would otherwise fall through to the admin's catch-all login redirect.
    path(
        "admin/analytics/streams/<path:key>",
        apis.StreamStatsDetailApi.as_view(),
        name="stream-stats-detail",
    ),
]
