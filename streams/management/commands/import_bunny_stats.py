from django.core.management.base import BaseCommand, CommandError

from streams.bunny import BunnyNotConfigured, bunny_stats_import


class Command(BaseCommand):
    help = (
        "Import Bunny Stream statistics for every bunny_stream provider over the last days "
        "(upsert per video and day) and apply them to StreamStats (the daily beat job)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=3, help="days back, today included")

    def handle(self, *args, days: int = 3, **options):
        if not 1 <= days <= 365:
            raise CommandError("--days must be between 1 and 365")
        try:
            summary = bunny_stats_import(days=days)
        except BunnyNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        for failure in summary.failures:
            self.stderr.write(f"failed: {failure}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary.days_imported} video-days for {summary.videos} videos; "
                f"{len(summary.failures)} failures."
            )
        )
