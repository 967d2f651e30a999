"""Browser pages of the playback side: the demo watch page (SPEC §8).

The page itself only carries configuration; the browser asks `GET /api/streams/<key>`
which provider to use and `streams/static/streams/player-tracking.js` mounts the player.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Stream

HLS_MODES = ("auto", "native", "hlsjs")


def stream_watch_page(request: HttpRequest, key: str) -> HttpResponse:
    """GET /streams/<key>/watch — anonymous demo player with playback tracking.

    Query options: `hls=auto|native|hlsjs` (how an HLS stream is played),
    `autoplay=1` (start muted on load).
    """
    if not Stream.objects.filter(key=key).exists():
        raise Http404("No stream has this key.")
    hls_mode = request.GET.get("hls", "auto")
    return render(
        request,
        "streams/watch.html",
        {
            "stream_key": key,
            "heartbeat_interval": settings.HEARTBEAT_INTERVAL,
            "hls_mode": hls_mode if hls_mode in HLS_MODES else "auto",
            "autoplay": request.GET.get("autoplay") == "1",
        },
    )
