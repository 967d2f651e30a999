"""The live viewers figure of the stream pages (SPEC §6.5): rendered with the page, then
kept current by streams/static/streams/live-viewers.js from the live API."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode

from ..live_viewers import live_viewers_overview, stream_live_viewers

register = template.Library()


def _panel(*, live: dict, url: str, scope: str) -> dict:
    return {
        "live": live,
        "live_url": url,
        "scope": scope,
        "refresh_seconds": settings.LIVE_VIEWERS_REFRESH_SECONDS,
    }


@register.inclusion_tag("streams/_live_viewers.html", takes_context=True)
def stream_live_viewers_panel(context, key: str) -> dict:
    """One stream's live viewers (the stream page)."""
    live = stream_live_viewers(user=context["request"].user, key=key)
    return _panel(live=live, url=reverse("stream-live-viewers", args=[key]), scope="stream")


@register.inclusion_tag("streams/_live_viewers.html", takes_context=True)
def live_viewers_overview_panel(context, organizer: str | None = None) -> dict:
    """Live viewers over the dashboard's streams, and the streams being watched."""
    live = live_viewers_overview(user=context["request"].user, organizer_slug=organizer or None)
    url = reverse("live-viewers")
    if organizer:
        url += "?" + urlencode({"organizer": organizer})
    return _panel(live=live, url=url, scope="overview")
