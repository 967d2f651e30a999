from django.core.management.base import BaseCommand

from streams.aggregation import stream_stats_recompute


class Command(BaseCommand):
    help = (
        "Finalize stale viewer sessions and recompute StreamStats for every (stream, day) "
        "that received events since the last run (the same job beat runs every 5 minutes)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            dest="full",
            help="rebuild every session and every day from the raw events",
        )

    def handle(self, *args, full: bool = False, **options):
        summary = stream_stats_recompute(full=full)
        if not summary.ran:
            self.stdout.write(
                self.style.WARNING("Skipped: another aggregation run holds the lock.")
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Aggregated {summary.pairs} client ranges into {summary.sessions} sessions; "
                f"{summary.stream_days} stream-days recomputed, {summary.finalized} sessions "
                f"finalized in {summary.seconds:.2f}s."
            )
        )
