"""Browser pages of the playback side: the demo watch page (SPEC §8).

The page itself only carries configuration; the browser asks `GET /api/streams/<key>`
which provider to use and `streams/static/streams/player-tracking.js` mounts the player.
"""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Stream

HLS_MODES = ("auto", "native", "hlsjs")


# The players the watch page embeds: Bunny Stream's and YouTube's iframes (YouTube's
# iframe API script too), and HLS played from any HTTPS origin (hls.js fetches the
# segments and feeds them to the video element through blob: URLs).
WATCH_PAGE_CSP = {
    "script-src": ["https://www.youtube.com", "https://s.ytimg.com"],
    "frame-src": [
        "https://iframe.mediadelivery.net",
        "https://www.youtube.com",
        "https://www.youtube-nocookie.com",
    ],
    "connect-src": ["https:"],
    "media-src": ["https:"],
}


@csp_update(WATCH_PAGE_CSP)
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
