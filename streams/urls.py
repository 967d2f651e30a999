from django.urls import path

from . import apis

urlpatterns = [
    path(
        "analytics/events",
        apis.PlaybackEventIngestApi.as_view({"post": "create"}),
        name="playback-events-ingest",
    ),
    path("api/streams/<slug:key>", apis.StreamInfoApi.as_view(), name="stream-info"),
]
