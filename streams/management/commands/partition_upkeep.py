"""`manage.py partition_upkeep [--dry-run]`: create the coming month partitions of the raw
event tables and drop the expired ones (PostgreSQL; SPEC §7, §13)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from echonest_analytics.partitions import partitioning_enabled
from streams.partition_upkeep import partition_upkeep


class Command(BaseCommand):
    help = (
        "Create the month partitions of the raw event tables for this month and "
        "PARTITION_MONTHS_AHEAD months after it, and drop each whole month its retention "
        "lets go (the daily beat job). --dry-run prints what would change and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print, change nothing")

    def handle(self, *args, dry_run: bool = False, **options):
        if not partitioning_enabled():
            self.stdout.write("Not PostgreSQL: the tables are not partitioned; nothing to do.")
            return
        result = partition_upkeep(dry_run=dry_run)
        create, drop = ("would create", "would drop") if dry_run else ("created", "dropped")
        for name in result.created:
            self.stdout.write(f"{create} {name}")
        for table, rows in result.dropped.items():
            self.stdout.write(f"{table}: {drop} {rows} rows (whole months)")
        if not result.created and not result.dropped:
            self.stdout.write("Partitions up to date; nothing expired.")
