"""Event log retention (SPEC §9.3): `BroadcastLogEntry` rows older than
BROADCAST_LOG_RETENTION_DAYS (90) go daily, in bounded batches — the beat job
`broadcast.purge_log` and `manage.py purge_broadcast_log [--dry-run]`.

With a run at 2026-12-01 12:00 UTC and 90 days, the cut-off is 2026-09-02 00:00 UTC:
entries before it go, entries at or after it stay."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.cache import cache
from django.core.management import CommandError, call_command

from echonest_analytics.celery import app as celery_app
from echonest_analytics.locks import job_lock_key
from echonest_analytics.redis import get_redis
from echonest_analytics.schedules import CELERY_BEAT_SCHEDULE
from streams.broadcast.log import log_entry_write
from streams.broadcast.models import BroadcastLogEntry
from streams.broadcast.retention import (
    broadcast_log_cutoff,
    broadcast_log_purge,
    broadcast_log_purge_step,
)
from streams.broadcast.tasks import LOG_PURGE_LOCK

from .factories_push import station_with_key

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 9, 2, tzinfo=UTC)
LABEL = "broadcast.BroadcastLogEntry"


def entry(station, timestamp: datetime, event: str = "track_loaded") -> int:
    return log_entry_write(
        station=station,
        level="info",
        category="audio",
        event=event,
        message="",
        timestamp=timestamp,
    ).pk


@pytest.fixture
def station(db):
    return station_with_key()[0]


@pytest.fixture
def old_and_recent(station) -> dict[str, list[int]]:
    other, _ = station_with_key("owl-radio", "Owl Radio")
    return {
        "old": [
            entry(station, CUTOFF - timedelta(microseconds=1)),
            entry(station, CUTOFF - timedelta(days=30)),
            entry(other, CUTOFF - timedelta(days=400)),
        ],
        "kept": [
            entry(station, CUTOFF),
            entry(station, NOW - timedelta(minutes=5)),
            entry(other, CUTOFF + timedelta(hours=1)),
        ],
    }


def remaining(ids: list[int]) -> int:
    return BroadcastLogEntry.objects.filter(pk__in=ids).count()


def test_the_cut_off_is_midnight_utc_90_days_before_today():
    assert settings.BROADCAST_LOG_RETENTION_DAYS == 90
    assert broadcast_log_cutoff(now=NOW) == CUTOFF


def test_only_entries_older_than_the_cut_off_go_of_every_station(old_and_recent):
    result = broadcast_log_purge(now=NOW)

    assert result.deleted == {LABEL: 3}
    assert result.has_more is False
    assert remaining(old_and_recent["old"]) == 0
    assert remaining(old_and_recent["kept"]) == 3


def test_the_retention_setting_is_honoured(old_and_recent, settings):
    settings.BROADCAST_LOG_RETENTION_DAYS = 0  # everything before today 00:00 UTC

    broadcast_log_purge(now=NOW)

    assert list(BroadcastLogEntry.objects.values_list("pk", flat=True)) == [
        old_and_recent["kept"][1]
    ]


def test_batches_of_3_delete_7_old_entries_and_say_when_more_remain(station):
    old = [entry(station, CUTOFF - timedelta(days=1, minutes=n)) for n in range(7)]
    kept = entry(station, CUTOFF + timedelta(days=1))

    steps = [broadcast_log_purge_step(now=NOW, batch_size=3) for _ in range(3)]

    assert [(s.deleted[LABEL], s.has_more) for s in steps] == [(3, True), (3, True), (1, False)]
    assert remaining(old) == 0
    assert remaining([kept]) == 1


def test_a_run_with_a_time_budget_stops_after_one_batch_and_says_more_remain(station):
    for n in range(7):
        entry(station, CUTOFF - timedelta(days=2, minutes=n))

    result = broadcast_log_purge(now=NOW, batch_size=3, max_seconds=0)

    assert result.deleted == {LABEL: 3}
    assert result.has_more is True


def test_a_dry_run_counts_and_deletes_nothing(old_and_recent):
    result = broadcast_log_purge(now=NOW, dry_run=True)

    assert result.deleted == {LABEL: 3}
    assert BroadcastLogEntry.objects.count() == 6


# --- The command --------------------------------------------------------------------------


def test_the_command_purges_in_batches_until_nothing_old_is_left(station):
    for n in range(7):
        entry(station, datetime.now(UTC) - timedelta(days=100, minutes=n))
    recent = entry(station, datetime.now(UTC))
    out = io.StringIO()

    call_command("purge_broadcast_log", "--batch-size", "3", stdout=out)

    assert "Purged 7 log entries (older than 90 days)." in out.getvalue()
    assert list(BroadcastLogEntry.objects.values_list("pk", flat=True)) == [recent]


def test_the_command_dry_run_prints_what_would_go_and_keeps_it(station):
    for n in range(4):
        entry(station, datetime.now(UTC) - timedelta(days=91 + n))
    out = io.StringIO()

    call_command("purge_broadcast_log", "--dry-run", stdout=out)

    assert "Dry run: 4 log entries would go" in out.getvalue()
    assert BroadcastLogEntry.objects.count() == 4


def test_the_command_refuses_a_batch_size_below_1(station):
    entry(station, datetime.now(UTC) - timedelta(days=100))

    with pytest.raises(CommandError, match="--batch-size"):
        call_command("purge_broadcast_log", "--batch-size", "0", stdout=io.StringIO())
    assert BroadcastLogEntry.objects.count() == 1


# --- The daily task ----------------------------------------------------------------------------


def test_the_log_purge_is_scheduled_daily_with_a_6_hour_expiry():
    job = CELERY_BEAT_SCHEDULE["broadcast-purge-log"]
    schedule = maybe_schedule(job["schedule"])

    assert job["task"] == "broadcast.purge_log"
    assert len(schedule.hour) == 1 and len(schedule.minute) == 1  # once a day
    assert job["options"]["expires"] == job["options"]["expire_seconds"] == 6 * 3600


def broker_messages_for(task_name: str) -> int:
    return sum(
        json.loads(raw)["headers"]["task"] == task_name
        for raw in get_redis().lrange("celery", 0, -1)
    )


def test_the_task_re_enqueues_itself_while_old_entries_remain(station):
    old = [entry(station, datetime.now(UTC) - timedelta(days=100, minutes=n)) for n in range(7)]
    task = celery_app.tasks["broadcast.purge_log"]
    kwargs = {"batch_size": 3, "max_seconds": 0}  # one batch per run
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded setup: the follow-ups run in-process
        result = task.apply_async(kwargs=kwargs)
        assert result.successful(), result.traceback
        assert remaining(old) == 0
        return
    runs = 0
    while True:  # with a Redis broker: run here, and see each follow-up reach the broker
        result = task.apply(kwargs=kwargs)
        assert result.successful(), result.traceback
        runs += 1
        assert broker_messages_for("broadcast.purge_log") == int(result.result["has_more"])
        get_redis().delete("celery")
        if not result.result["has_more"]:
            break
        assert runs < 10
    assert runs == 3
    assert remaining(old) == 0


def test_the_task_skips_while_another_run_holds_the_lock(station):
    entry(station, datetime.now(UTC) - timedelta(days=100))
    lock_key = job_lock_key(LOG_PURGE_LOCK)
    assert cache.add(lock_key, "another-run", timeout=60)

    result = celery_app.tasks["broadcast.purge_log"].apply()

    assert result.result == {"skipped": "another broadcast log purge holds the lock"}
    assert BroadcastLogEntry.objects.count() == 1
    assert cache.get(lock_key) == "another-run"
