from django.apps import AppConfig
from django.db.models.signals import post_migrate


def month_partitions_after_migrate(*, using: str = "default", **kwargs) -> None:
    """`migrate` leaves this and next month's partitions of the raw event tables in place
    (PostgreSQL; SPEC §13), however long ago the tables were partitioned."""
    from django.db import connections

    from echonest_analytics.partitions import month_partitions_ensure

    if using == "default" and connections[using].vendor == "postgresql":
        month_partitions_ensure(months_ahead=1)


class StreamsConfig(AppConfig):
    """Playback analytics: streams, providers, playback events, viewer sessions, stats."""

    name = "streams"
    verbose_name = "Stream analytics"

    def ready(self) -> None:
        post_migrate.connect(
            month_partitions_after_migrate, sender=self, dispatch_uid="streams.month_partitions"
        )
