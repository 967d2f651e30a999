from django.urls import path

from . import apis

urlpatterns = [
    path(
        "api/broadcast/<slug:station>/ingest",
        apis.StationPushIngestApi.as_view({"post": "create"}),
        name="broadcast-push-ingest",
    ),
]
