"""Load the demo: an admin login plus simulated playback, product and broadcast traffic.

Safe to run again: the admin keeps its password, and the demo traffic is only
generated when it is not there yet (`--reset` regenerates it).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_EMAIL = "admin@example.com"


def _password_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-admin-password"


class Command(BaseCommand):
    help = "Create the demo admin user and load demo streams and traffic."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="regenerate the demo traffic")

    def handle(self, *args, reset: bool = False, **options):
        password = self._ensure_admin()
        for label, seed in self._seeders():
            summary = seed(reset=reset)
            self.stdout.write(f"{label}: {summary}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login: username {DEMO_ADMIN_USERNAME!r}, password {password!r} "
                "(http://127.0.0.1:8000/admin/)"
            )
        )

    def _seeders(self):
        from analytics.demo import seed_product_demo
        from streams.broadcast.demo import seed_broadcast_demo
        from streams.demo import seed_playback_demo

        return [
            ("Playback demo", seed_playback_demo),
            ("Product demo", seed_product_demo),
            ("Broadcast demo", seed_broadcast_demo),
        ]

    def _ensure_admin(self) -> str:
        users = get_user_model()
        path = _password_file()
        admin = users.objects.filter(username=DEMO_ADMIN_USERNAME).first()
        if admin is not None and path.is_file():
            return path.read_text().strip()
        password = secrets.token_urlsafe(12)
        if admin is None:
            admin = users.objects.create_superuser(DEMO_ADMIN_USERNAME, DEMO_ADMIN_EMAIL, password)
        else:
            admin.set_password(password)
            admin.save(update_fields=["password"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password
