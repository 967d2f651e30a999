"""The Celery application. Periodic jobs are declared in settings (CELERY_BEAT_SCHEDULE)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echonest_analytics.settings")

app = Celery("echonest_analytics")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
