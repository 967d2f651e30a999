"""`manage.py rollup_analytics [--date YYYY-MM-DD]`: the product rollup job, by hand."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from analytics.rollups import daily_rollup_recompute, daily_rollups_refresh


class Command(BaseCommand):
    help = (
        "Recompute product DailyRollups: one UTC day with --date, otherwise what the nightly "
        "job does (yesterday, days flagged by late events, recent days never rolled up). "
        "Safe to re-run: a day is recomputed from raw events, never added to."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="a complete UTC day, YYYY-MM-DD")

    def handle(self, *args, date: str | None = None, **options):
        if date:
            try:
                day = dt.date.fromisoformat(date)
            except ValueError:
                raise CommandError(f"--date {date!r} is not a YYYY-MM-DD date.") from None
            try:
                rollups = [daily_rollup_recompute(day=day)]
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        else:
            rollups = daily_rollups_refresh()
        for rollup in rollups:
            self.stdout.write(
                f"{rollup.day}: {rollup.total_events} events, {rollup.dau} active users, "
                f"{len(rollup.feature_usage)} features"
            )
