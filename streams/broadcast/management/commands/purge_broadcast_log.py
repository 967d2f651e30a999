"""`manage.py purge_broadcast_log [--dry-run] [--batch-size N]`: event log retention (SPEC §9.3)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.broadcast.retention import BATCH_SIZE, broadcast_log_purge


class Command(BaseCommand):
    help = (
        "Delete broadcast event log entries older than BROADCAST_LOG_RETENTION_DAYS, in "
        "bounded batches until none is left (the daily beat job). --dry-run prints how many "
        "would go and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"rows per delete statement (default {BATCH_SIZE})",
        )

    def handle(self, *args, dry_run: bool = False, batch_size: int = BATCH_SIZE, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        result = broadcast_log_purge(batch_size=batch_size, dry_run=dry_run)
        total = sum(result.deleted.values())
        retention = f"older than {settings.BROADCAST_LOG_RETENTION_DAYS} days"
        if dry_run:
            self.stdout.write(
                self.style.WARNING(
                    f"Dry run: {total} log entries would go ({retention}); nothing deleted."
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Purged {total} log entries ({retention})."))
