"""`manage.py gdpr_export <user_id>`: every product event of one user, as JSON on stdout."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from analytics.selectors import user_events_export


class Command(BaseCommand):
    help = "Print all product events of one user as JSON (GDPR right of access)."

    def add_arguments(self, parser):
        parser.add_argument("user_id")
        parser.add_argument("--output", help="write to this file instead of stdout")

    def handle(self, *args, user_id: str, output: str | None = None, **options):
        export = json.dumps(user_events_export(user_id=user_id), indent=2, ensure_ascii=False)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(export + "\n")
            self.stderr.write(f"wrote the events of {user_id!r} to {output}")
        else:
            self.stdout.write(export)
