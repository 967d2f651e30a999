"""`manage.py gdpr_erase <user_id>`: erase a user's events, rollup shares and live counters."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from analytics.gdpr import LiveCountersUnavailable, user_erase


class Command(BaseCommand):
    help = (
        "Erase one product user (GDPR right to erasure): delete their events, recompute the "
        "rollups of the days they touched, remove them from the Redis live counters. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_id")

    def handle(self, *args, user_id: str, **options):
        try:
            erasure = user_erase(user_id=user_id)
        except LiveCountersUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"erased {user_id!r}: {erasure.events_deleted} events deleted, "
            f"{len(erasure.rollup_days_recomputed)} rollup days recomputed, "
            f"{erasure.live_counter_keys_cleaned} live-counter keys cleaned"
        )
