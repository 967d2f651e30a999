from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Playback analytics: streams, providers, playback events, viewer sessions, stats."""

    name = "streams"
    verbose_name = "Stream analytics"
