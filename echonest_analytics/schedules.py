"""Every periodic job, declared in code (Sentry style).

Each entry carries an `expires` close to its interval so a backlog never stacks
duplicate runs. django-celery-beat's DatabaseScheduler copies these entries into
the database when beat starts, so staff can see and pause them in the admin.
"""

from __future__ import annotations

from celery.schedules import crontab

MINUTE = 60
HOUR = 60 * MINUTE

CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
