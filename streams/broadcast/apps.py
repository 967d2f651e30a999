from django.apps import AppConfig


class BroadcastConfig(AppConfig):
    """Broadcast analytics for internet radio (SPEC §9): stations, listeners, plays,
    requests, the event log, health and alerts."""

    name = "streams.broadcast"
    label = "broadcast"
    verbose_name = "Broadcast analytics"
    default_auto_field = "django.db.models.BigAutoField"
