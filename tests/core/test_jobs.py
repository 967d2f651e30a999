"""SPEC §7 scheduled jobs: the schedule in code, beat's database copy of it, and the
stream aggregation job run through the real Celery app and as a manage.py command."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab, maybe_schedule
from celery.schedules import schedule as every
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from echonest_analytics.celery import app as celery_app
from echonest_analytics.schedules import CELERY_BEAT_SCHEDULE
from streams.aggregation import LOCK_KEY
from streams.models import Organizer, Stream, StreamStats, ViewerSession
from streams.tasks import aggregate_streams
from tests.streams.conftest import DESKTOP_UA, T0, batch, heartbeats

ENTRIES = sorted(CELERY_BEAT_SCHEDULE.items())


def interval_seconds(schedule) -> float:
    """The shortest gap between two runs of a schedule (for crontab: over a week)."""
    schedule = maybe_schedule(schedule)
    if isinstance(schedule, crontab):
        start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
        runs = [
            t
            for t in (start + timedelta(minutes=m) for m in range(8 * 24 * 60))
            if t.minute in schedule.minute
            and t.hour in schedule.hour
            and t.isoweekday() % 7 in schedule.day_of_week
            and t.day in schedule.day_of_month
            and t.month in schedule.month_of_year
        ]
        assert len(runs) >= 2, schedule
        return min((b - a).total_seconds() for a, b in zip(runs, runs[1:], strict=False))
    assert isinstance(schedule, every), schedule
    return schedule.run_every.total_seconds()


@pytest.fixture
def registered_tasks():
    celery_app.loader.import_default_modules()
    return celery_app.tasks


# --- The schedule in code ------------------------------------------------------------


def test_settings_use_the_schedule_from_code():
    assert settings.CELERY_BEAT_SCHEDULE is CELERY_BEAT_SCHEDULE
    assert celery_app.conf.beat_schedule == CELERY_BEAT_SCHEDULE
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"


def test_aggregate_streams_runs_every_5_minutes():
    entry = CELERY_BEAT_SCHEDULE["aggregate-streams"]
    assert entry["task"] == "streams.aggregate_streams"
    assert interval_seconds(entry["schedule"]) == 300


def test_product_rollup_runs_daily_at_03_15_utc():
    entries = [e for e in CELERY_BEAT_SCHEDULE.values() if e["task"].startswith("analytics.")]
    assert entries
    rollup = maybe_schedule(entries[0]["schedule"])
    assert rollup.hour == {3} and rollup.minute == {15}
    assert interval_seconds(rollup) == 24 * 3600
    assert celery_app.conf.timezone == "UTC"


@pytest.mark.parametrize(("name", "entry"), ENTRIES)
def test_every_scheduled_task_is_registered_in_the_celery_app(registered_tasks, name, entry):
    assert entry["task"] in registered_tasks, f"{name}: {entry['task']} is not a known task"


@pytest.mark.parametrize(("name", "entry"), ENTRIES)
def test_every_schedule_entry_expires_within_its_interval(name, entry):
    expires = entry.get("options", {}).get("expires")
    assert isinstance(expires, int | float), f"{name} has no options.expires"
    assert 0 < expires <= interval_seconds(entry["schedule"]), name


def test_the_registered_aggregation_task_is_the_streams_one(registered_tasks):
    registered = registered_tasks["streams.aggregate_streams"]
    assert registered.run is aggregate_streams.run
    assert registered.run.__module__ == "streams.tasks"


# --- Beat's database copy (django-celery-beat DatabaseScheduler) ---------------------


def beat_starts() -> DatabaseScheduler:
    """What `celery beat` does at start: build the scheduler, which syncs the code schedule."""
    return DatabaseScheduler(app=celery_app)


@pytest.mark.django_db(transaction=True)
def test_beat_start_copies_every_code_entry_into_the_database():
    scheduler = beat_starts()
    rows = {t.name: t for t in PeriodicTask.objects.all()}
    for name, entry in ENTRIES:
        assert name in rows, name
        assert rows[name].task == entry["task"]
        assert rows[name].enabled
        assert name in scheduler.schedule
    aggregate = rows["aggregate-streams"]
    assert aggregate.interval.every == 300 and aggregate.interval.period == "seconds"
    rollup = rows["analytics-daily-rollups"]
    assert (rollup.crontab.minute, rollup.crontab.hour) == ("15", "3")


@pytest.mark.django_db(transaction=True)
def test_beat_database_schedule_keeps_the_expiry_declared_in_code():
    """SPEC §7 / STYLE: the `expires` declared in code must reach what beat sends; beat
    runs the DatabaseScheduler, which sends what its PeriodicTask rows say."""
    scheduler = beat_starts()
    declared = {name: entry["options"]["expires"] for name, entry in ENTRIES}
    stored = {name: PeriodicTask.objects.get(name=name).expires_ for name in declared}
    sent = {name: scheduler.schedule[name].options.get("expires") for name in declared}
    assert stored == declared
    assert sent == declared


@pytest.mark.django_db(transaction=True)
def test_beat_restart_does_not_re_enable_a_job_staff_paused():
    beat_starts()
    PeriodicTask.objects.filter(name="aggregate-streams").update(enabled=False)
    scheduler = beat_starts()
    assert PeriodicTask.objects.get(name="aggregate-streams").enabled is False
    assert "aggregate-streams" not in scheduler.schedule
    assert "analytics-daily-rollups" in scheduler.schedule


@pytest.mark.django_db(transaction=True)
def test_beat_restart_puts_the_code_interval_back():
    beat_starts()
    row = PeriodicTask.objects.get(name="aggregate-streams")
    row.interval.every = 3600
    row.interval.save()
    beat_starts()
    assert PeriodicTask.objects.get(name="aggregate-streams").interval.every == 300


@pytest.mark.django_db(transaction=True)
def test_beat_restarts_do_not_duplicate_entries():
    beat_starts()
    beat_starts()
    names = list(PeriodicTask.objects.values_list("name", flat=True))
    assert len(names) == len(set(names))
    assert set(CELERY_BEAT_SCHEDULE) <= set(names)


# --- The aggregation job -------------------------------------------------------------


def stats_rows() -> list[tuple]:
    return [
        (
            s.stream.key,
            s.day,
            s.unique_viewers,
            s.sessions,
            round(s.total_watch_seconds, 6),
            s.peak_concurrent_viewers,
            round(s.buffer_ratio, 6),
            round(s.error_rate, 6),
            s.event_count,
        )
        for s in StreamStats.objects.select_related("stream").order_by("stream__key", "day")
    ]


EXPECTED = [
    # stream, day, viewers, sessions, watch, peak, buffer ratio, error rate, events
    ("after-party", T0.date(), 1, 1, 30.0, 1, 0.0, 0.0, 2),
    ("launch-party", T0.date(), 2, 2, 120.0, 2, 0.0, 0.0, 8),
]


@pytest.fixture
def posted(client):
    """Two streams; three clients' batches posted over HTTP like a player sends them."""
    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    for key, title in (("launch-party", "Launch party"), ("after-party", "After party")):
        Stream.objects.create(key=key, title=title, organizer=organizer)
    for stream_key, client_id, seconds in (
        ("launch-party", "c-1", (0, 15, 30, 45)),
        ("launch-party", "c-2", (0, 15, 30, 45)),
        ("after-party", "c-3", (0, 15)),
    ):
        response = client.post(
            "/analytics/events",
            data=json.dumps(batch(stream_key, client_id, heartbeats(*seconds))),
            content_type="application/json",
            HTTP_USER_AGENT=DESKTOP_UA,
        )
        assert response.status_code == 202, response.content
    assert StreamStats.objects.count() == 0


@pytest.mark.django_db
def test_aggregate_streams_task_runs_through_the_celery_app_and_writes_stats(posted):
    task = celery_app.tasks["streams.aggregate_streams"]
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded setup: no broker, tasks run in-process
        result = task.delay()
    else:  # with a Redis broker, run it in this process through Celery's tracer
        result = task.apply()
    assert result.successful(), result.traceback
    assert result.result["ran"] is True
    assert result.result["sessions"] == 3
    assert result.result["stream_days"] == 2
    assert stats_rows() == EXPECTED


@pytest.mark.django_db
def test_embedded_setup_runs_tasks_eagerly_and_redis_setup_does_not():
    assert celery_app.conf.task_always_eager is (not settings.REDIS_URL)


@pytest.mark.django_db
def test_aggregate_streams_task_with_full_rebuild_gives_the_same_stats(posted):
    assert aggregate_streams.apply().successful()
    first = stats_rows()
    result = aggregate_streams.apply(kwargs={"full": True})
    assert result.successful()
    assert result.result["sessions"] == 3
    assert stats_rows() == first == EXPECTED


@pytest.mark.django_db
def test_aggregate_streams_command_prints_a_summary_and_writes_stats(posted):
    out = io.StringIO()
    call_command("aggregate_streams", stdout=out)
    text = out.getvalue()
    assert "Aggregated 3 client ranges into 3 sessions" in text
    assert "2 stream-days recomputed" in text
    assert stats_rows() == EXPECTED
    assert ViewerSession.objects.count() == 3


@pytest.mark.django_db
def test_aggregate_streams_all_rebuilds_everything_to_the_same_stats(posted):
    call_command("aggregate_streams", stdout=io.StringIO())
    incremental = stats_rows()
    out = io.StringIO()
    call_command("aggregate_streams", "--all", stdout=out)
    assert "Aggregated 3 client ranges into 3 sessions" in out.getvalue()
    assert stats_rows() == incremental == EXPECTED
    assert ViewerSession.objects.count() == 3


@pytest.mark.django_db
def test_aggregate_streams_all_from_scratch_equals_the_incremental_run(posted):
    out = io.StringIO()
    call_command("aggregate_streams", "--all", stdout=out)
    assert "2 stream-days recomputed" in out.getvalue()
    assert stats_rows() == EXPECTED


@pytest.mark.django_db
def test_aggregate_streams_command_with_nothing_new_recomputes_nothing(posted):
    call_command("aggregate_streams", stdout=io.StringIO())
    out = io.StringIO()
    call_command("aggregate_streams", stdout=out)
    assert "Aggregated 0 client ranges into 0 sessions; 0 stream-days" in out.getvalue()
    assert stats_rows() == EXPECTED


@pytest.mark.django_db
def test_aggregate_streams_command_says_it_skipped_while_another_run_holds_the_lock(posted):
    assert cache.add(LOCK_KEY, "another-run", timeout=60)
    out = io.StringIO()
    call_command("aggregate_streams", stdout=out)
    assert "Skipped" in out.getvalue()
    assert StreamStats.objects.count() == 0
    assert cache.get(LOCK_KEY) == "another-run"  # the other run's lock is left alone
