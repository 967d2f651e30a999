"""`manage.py broadcast_refresh [--station KEY]`: recompute the play-stats caches (SPEC §9.4)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from streams.broadcast.models import Station
from streams.broadcast.play_stats import broadcast_stats_refresh


class Command(BaseCommand):
    help = (
        "Recompute PlayStatsCache and HourlyPlayCount from the plays of one station "
        "(--station, its stream key) or of every station (the hourly beat job), and roll "
        "up the listener hours that are over into ListenerHour."
    )

    def add_arguments(self, parser):
        parser.add_argument("--station", help="stream key of one station (default: all)")

    def handle(self, *args, station: str | None = None, **options):
        chosen = None
        if station is not None:
            chosen = Station.objects.filter(stream__key=station).select_related("stream").first()
            if chosen is None:
                raise CommandError(f"no station has the stream key {station!r}")
        summary = broadcast_stats_refresh(station=chosen)
        if summary.skipped:
            self.stdout.write(f"skipped: {summary.skipped}")
            return
        for key, counts in summary.stations.items():
            self.stdout.write(
                f"{key}: {counts['song_periods']} song-period rows, {counts['hours']} hours, "
                f"{counts['listener_hours']} listener hours rolled up"
            )
