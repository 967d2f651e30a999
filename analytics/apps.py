from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Product analytics: events, live Redis counters, usage metrics, rollups, GDPR."""

    name = "analytics"
    verbose_name = "Product analytics"

    def ready(self) -> None:
        from . import signals  # noqa: F401 — connects the receivers
