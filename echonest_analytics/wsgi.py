import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echonest_analytics.settings")

application = get_wsgi_application()


def _warm_up() -> None:
    """Load what the first request would otherwise load in every worker: the URLconf (all
    views) and the User-Agent parser's rules. Gunicorn preloads this module
    (`preload_app`), so the workers it forks share them ready."""
    from django.urls import get_resolver

    from streams.enrichment import device_from_user_agent

    get_resolver().resolve("/analytics/events")
    device_from_user_agent.__wrapped__("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")


_warm_up()
