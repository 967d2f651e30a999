"""Every periodic job, declared in code (Sentry style).

Each entry carries an `expires` close to its interval so a backlog never stacks
duplicate runs (`expire_seconds` is the same figure under the name
django-celery-beat's DatabaseScheduler reads; Celery's own scheduler reads
`expires`). The DatabaseScheduler copies these entries into the database when
beat starts, so staff can see and pause them in the admin.
"""

from __future__ import annotations

from celery.schedules import crontab

MINUTE = 60
HOUR = 60 * MINUTE


def _expiring(seconds: int) -> dict:
    return {"expires": seconds, "expire_seconds": seconds}


CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "import-bunny-stats": {
        "task": "streams.import_bunny_stats",
        "schedule": crontab(hour=2, minute=30),
        "options": _expiring(6 * HOUR),
    },
    "aggregate-streams": {
        "task": "streams.aggregate_streams",
        "schedule": 5 * MINUTE,
        "options": _expiring(5 * MINUTE - 10),
    },
    # Product rollup (SPEC §7): yesterday, plus days flagged by late events and recent
    # gaps. A run delayed by more than 6 h is dropped; the next night catches up.
    "analytics-daily-rollups": {
        "task": "analytics.daily_rollups_refresh",
        "schedule": crontab(hour=3, minute=15),
        "options": _expiring(6 * HOUR),
    },
    # Partition upkeep (SPEC §13): after the night's rollup, so the product days it
    # checks are rolled up; ahead of the purge, which then meets fewer rows.
    "partition-upkeep": {
        "task": "streams.partition_upkeep",
        "schedule": crontab(hour=3, minute=45),
        "options": _expiring(6 * HOUR),
    },
    # Retention purge (SPEC §7), after the night's rollup and Bunny import; a run
    # re-enqueues itself while old rows remain.
    "purge-analytics": {
        "task": "streams.purge_analytics",
        "schedule": crontab(hour=4, minute=0),
        "options": _expiring(6 * HOUR),
    },
    # Broadcast event log retention (SPEC §9.3); re-enqueues itself while old rows remain.
    "broadcast-purge-log": {
        "task": "broadcast.purge_log",
        "schedule": crontab(hour=4, minute=30),
        "options": _expiring(6 * HOUR),
    },
    # Broadcast listener poll (SPEC §9.2): a round is bounded well under its interval;
    # a round not started within 25 s is dropped, the next one is due anyway.
    "broadcast-poll-listeners": {
        "task": "broadcast.poll_listeners",
        "schedule": 30,
        "options": _expiring(25),
    },
    # SAM import (SPEC §9.2) for stations with a SAM database URL; the job takes its own
    # lock, so a slow run is never overlapped.
    "broadcast-import-sam": {
        "task": "broadcast.import_sam",
        "schedule": 5 * MINUTE,
        "options": _expiring(5 * MINUTE - 10),
    },
    # Broadcast play-stats caches (SPEC §9.4): recomputed from plays, so a dropped run
    # only delays them; the refresh takes its own lock.
    "broadcast-refresh-stats": {
        "task": "broadcast.refresh_stats",
        "schedule": HOUR,
        "options": _expiring(HOUR - 60),
    },
}
