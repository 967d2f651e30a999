"""Who may see the EchoNest staff stats page (SPEC §5.5)."""

from __future__ import annotations

from django.conf import settings


def can_view_product_stats(user) -> bool:
    """Active staff who are superusers or whose email is in ECHONEST_ADMIN_EMAILS."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return (user.email or "").strip().lower() in settings.ECHONEST_ADMIN_EMAILS
