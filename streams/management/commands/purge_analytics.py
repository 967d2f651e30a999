"""`manage.py purge_analytics [--dry-run] [--batch-size N]`: the retention purge (SPEC §7)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.retention import BATCH_SIZE, retention_purge


class Command(BaseCommand):
    help = (
        "Delete raw playback events older than PLAYBACK_EVENT_RETENTION_DAYS whose sessions "
        "are aggregated, product events older than PRODUCT_EVENT_RETENTION_DAYS on rolled-up "
        "days, and rollups older than ROLLUP_RETENTION_DAYS, in bounded batches until none "
        "is left (the daily beat job). --dry-run prints what would go and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="count per table, delete nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"rows per delete statement and table (default {BATCH_SIZE})",
        )

    def handle(self, *args, dry_run: bool = False, batch_size: int = BATCH_SIZE, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = retention_purge(batch_size=batch_size, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for table, count in result.deleted.items():
            self.stdout.write(f"{table}: {verb} {count}")
        total = sum(result.deleted.values())
        retention = (
            f"playback {settings.PLAYBACK_EVENT_RETENTION_DAYS} d, product "
            f"{settings.PRODUCT_EVENT_RETENTION_DAYS} d, rollups {settings.ROLLUP_RETENTION_DAYS} d"
        )
        if dry_run:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: {total} rows would go ({retention}); nothing deleted."
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Purged {total} rows ({retention})."))
