from django.urls import path

from . import apis

urlpatterns = [
    # `str`, not `slug`: a key that is no slug still reaches the view and gets its 401.
    path(
        "api/broadcast/<str:station>/ingest",
        apis.StationPushIngestApi.as_view({"post": "create"}),
        name="broadcast-push-ingest",
    ),
]
