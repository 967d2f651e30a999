from django.core.management.base import BaseCommand, CommandError

from streams.broadcast.models import Station
from streams.broadcast.sam import import_sam


class Command(BaseCommand):
    help = (
        "Import new songs, plays and requests from SAM Broadcaster's database for every "
        "station with a SAM database URL, or one station (the 5-minute beat job)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--station", help="the station's stream key")

    def handle(self, *args, station: str | None = None, **options):
        target = None
        if station:
            target = Station.objects.filter(stream__key=station).first()
            if target is None:
                raise CommandError(f"no station with stream key {station!r}")
            if not target.sam_database_url:
                raise CommandError(f"station {station!r} has no SAM database URL")
        summary = import_sam(station=target)
        if summary.skipped:
            self.stdout.write(f"skipped: {summary.skipped}")
            return
        for result in summary.stations:
            if result.error:
                self.stderr.write(f"{result.station}: failed: {result.error}")
            else:
                self.stdout.write(
                    f"{result.station}: {result.songs} songs, {result.plays} plays, "
                    f"{result.requests} requests read ({result.requests_updated} updated)"
                )
        if summary.failures:
            raise CommandError(
                f"{len(summary.failures)} of {len(summary.stations)} stations failed"
            )
        self.stdout.write(
            self.style.SUCCESS(f"SAM import done for {len(summary.stations)} stations.")
        )
