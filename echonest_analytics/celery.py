"""The Celery application. Periodic jobs are declared in settings (CELERY_BEAT_SCHEDULE).

Workers and beat log through Django's LOGGING (JSON in production, like the web), not
Celery's own format: every job run's line carries its job, outcome and duration."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echonest_analytics.settings")

app = Celery("echonest_analytics")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def django_logging(**kwargs) -> None:
    """Connected, this replaces Celery's logging setup with Django's LOGGING (LOG_LEVEL
    and LOG_FORMAT decide, not `--loglevel`)."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
