"""Retention purge (SPEC §7): raw playback and product events older than their retention go
once their days are aggregated, rollups after 365 days; bounded batches; `--dry-run`.

Old rows are written with the ORM (ingestion refuses them: that is test-data setup), then
aggregated by the real aggregator and the real product rollup.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.cache import cache
from django.core.management import CommandError, call_command

from analytics.models import DailyActiveUser, DailyRollup, Event
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute, rollup_days_mark_for_recompute
from echonest_analytics.celery import app as celery_app
from echonest_analytics.days import day_start, utc_today
from echonest_analytics.locks import job_lock_key
from echonest_analytics.redis import get_redis
from echonest_analytics.schedules import CELERY_BEAT_SCHEDULE
from streams.aggregation import stream_stats_recompute
from streams.models import (
    Organizer,
    PlaybackBatch,
    PlaybackEvent,
    Stream,
    StreamStats,
    ViewerSession,
    ViewerSessionDay,
)
from streams.retention import playback_purge, retention_purge
from streams.tasks import PURGE_LOCK

pytestmark = pytest.mark.django_db

# The days the tests are about, counted back from the UTC day each test runs on. They are
# set afresh before every test by `_days_of_this_test`: constants computed at import would
# keep the import's day, and a run crossing 00:00 UTC would then set data up around one
# day's cutoff and purge with the next day's.
# The import-time values below are placeholders no test reads (date.min fails loudly).
OLD_DAY = RECENT_DAY = ANCIENT_DAY = date.min
PLAYBACK_CUTOFF = datetime.min.replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _days_of_this_test(monkeypatch) -> None:
    """OLD_DAY: 100 days back, past the 90-day event retentions; RECENT_DAY: 10 days back;
    ANCIENT_DAY: 400 days back, past the 365-day rollup retention; PLAYBACK_CUTOFF: 00:00
    UTC of the day 90 days back."""
    today = utc_today()
    days = {
        "OLD_DAY": today - timedelta(days=100),
        "RECENT_DAY": today - timedelta(days=10),
        "ANCIENT_DAY": today - timedelta(days=400),
        "PLAYBACK_CUTOFF": day_start(today - timedelta(days=90)),
    }
    for name, value in days.items():
        monkeypatch.setattr(sys.modules[__name__], name, value)


TABLES = (
    PlaybackEvent,
    PlaybackBatch,
    ViewerSession,
    ViewerSessionDay,
    StreamStats,
    Event,
    DailyRollup,
    DailyActiveUser,
)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in TABLES}


@pytest.fixture
def stream(db) -> Stream:
    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    return Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)


def playback_received(
    stream: Stream, client_id: str, start: datetime, *, heartbeats: int = 4
) -> list[int]:
    """What ingestion stores for one batch of heartbeats 15 s apart: events + a pending batch."""
    times = [start + timedelta(seconds=15 * n) for n in range(heartbeats)]
    events = PlaybackEvent.objects.bulk_create(
        PlaybackEvent(
            stream=stream,
            client_id=client_id,
            type="heartbeat",
            video_time=15.0 * n,
            occurred_at=t,
            received_at=t + timedelta(seconds=1),
            device="desktop",
        )
        for n, t in enumerate(times)
    )
    PlaybackBatch.objects.create(
        stream=stream,
        client_id=client_id,
        event_count=len(times),
        first_event_at=times[0],
        last_event_at=times[-1],
        received_at=times[-1] + timedelta(seconds=1),
        pending=True,
    )
    return [e.id for e in events]


def product_events(day: date, count: int, *, user: str = "u-1") -> list[int]:
    return [
        Event.objects.create(
            event_type="page_view",
            user_id=user,
            feature="dashboard",
            occurred_at=at(day, hour=n % 24),
            received_at=at(day, hour=n % 24),
        ).id
        for n in range(count)
    ]


@pytest.fixture
def population(stream):
    """Old and recent rows, aggregated and not, of every table the purge looks at."""
    ids: dict[str, list[int]] = {}
    # Playback: aggregated by the real aggregator below.
    ids["old_aggregated"] = playback_received(stream, "c-old", at(OLD_DAY))
    ids["recent_aggregated"] = playback_received(stream, "c-recent", at(RECENT_DAY))
    # Old, but the session ends 10 min before the cutoff: within SESSION_TIMEOUT of it.
    ids["old_near_cutoff"] = playback_received(
        stream, "c-edge", PLAYBACK_CUTOFF - timedelta(minutes=10)
    )
    ids["old_unfinalized"] = playback_received(stream, "c-open", at(OLD_DAY, hour=14))
    stream_stats_recompute()
    ViewerSession.objects.filter(client_id="c-open").update(finalized=False)
    # Old, received after the last aggregation run: its batch is still pending.
    ids["old_pending"] = playback_received(stream, "c-late", at(OLD_DAY, hour=18))

    # Product events: rolled up, never rolled up, rolled up but flagged, recent.
    ids["product_rolled"] = product_events(OLD_DAY, 5)
    daily_rollup_recompute(day=OLD_DAY)
    ids["product_unrolled"] = product_events(OLD_DAY - timedelta(days=1), 3)
    flagged_day = OLD_DAY - timedelta(days=2)
    ids["product_flagged"] = product_events(flagged_day, 2)
    daily_rollup_recompute(day=flagged_day)
    rollup_days_mark_for_recompute(days=[flagged_day])  # a late event arrived for that day
    ids["product_recent"] = product_events(RECENT_DAY, 4)
    daily_rollup_recompute(day=RECENT_DAY)

    # Rollups past 365 days: one whose raw events are gone, one whose raw events remain.
    product_events(ANCIENT_DAY, 2, user="u-ancient")
    daily_rollup_recompute(day=ANCIENT_DAY)
    Event.objects.filter(occurred_at__date=ANCIENT_DAY).delete()
    ids["ancient_held_events"] = product_events(ANCIENT_DAY - timedelta(days=1), 1)
    daily_rollup_recompute(day=ANCIENT_DAY - timedelta(days=1))
    rollup_days_mark_for_recompute(days=[ANCIENT_DAY - timedelta(days=1)])
    return ids


EXPECTED_PURGE = {
    "streams.PlaybackEvent": 4,  # c-old's events only
    # Old batches the aggregator has claimed: c-old's, c-edge's and c-open's. Batches are
    # retry keys and a work list, not figures: once claimed, only their age counts.
    "streams.PlaybackBatch": 3,
    "analytics.Event": 5,  # OLD_DAY's
    "analytics.DailyActiveUser": 1,  # u-ancient on ANCIENT_DAY
    "analytics.DailyRollup": 1,  # ANCIENT_DAY's
}


# --- Dry run ----------------------------------------------------------------------------


def test_dry_run_counts_per_table_what_would_go_and_changes_nothing(population):
    before = row_counts()

    result = retention_purge(dry_run=True)

    assert result.deleted == EXPECTED_PURGE
    assert result.has_more is False
    assert row_counts() == before


def test_dry_run_command_prints_each_table_and_deletes_nothing(population):
    before = row_counts()
    out = io.StringIO()

    call_command("purge_analytics", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "streams.PlaybackEvent: would delete 4" in text
    assert "streams.PlaybackBatch: would delete 3" in text
    assert "analytics.Event: would delete 5" in text
    assert "analytics.DailyRollup: would delete 1" in text
    assert "analytics.DailyActiveUser: would delete 1" in text
    assert "Dry run: 14 rows would go" in text
    assert row_counts() == before


def test_dry_run_counts_what_the_real_run_then_deletes(population):
    before = row_counts()

    dry = retention_purge(dry_run=True)
    real = retention_purge()

    assert real.deleted == dry.deleted
    after = row_counts()
    assert {t: before[t] - after[t] for t in before if before[t] != after[t]} == dry.deleted


def test_dry_run_counts_a_rollup_whose_last_raw_events_the_same_run_purges(population, settings):
    settings.ROLLUP_RETENTION_DAYS = 50  # OLD_DAY's rollup is now past it, its events too

    dry = retention_purge(dry_run=True)
    real = retention_purge()

    assert dry.deleted == real.deleted
    assert real.deleted["analytics.DailyRollup"] == 2  # ANCIENT_DAY's and OLD_DAY's
    assert not DailyRollup.objects.filter(day=OLD_DAY).exists()


# --- The real run -----------------------------------------------------------------------


def remaining(ids: list[int]) -> int:
    return PlaybackEvent.objects.filter(id__in=ids).count()


def test_old_playback_events_of_final_sessions_go(population):
    retention_purge()

    assert remaining(population["old_aggregated"]) == 0
    assert not PlaybackBatch.objects.filter(client_id="c-old").exists()


def test_playback_events_of_a_pending_batch_stay(population):
    retention_purge()

    assert remaining(population["old_pending"]) == 4
    assert PlaybackBatch.objects.filter(client_id="c-late", pending=True).count() == 1


def test_playback_events_of_an_unfinalized_session_stay(population):
    retention_purge()

    assert remaining(population["old_unfinalized"]) == 4


def test_playback_events_of_a_session_ending_within_the_session_timeout_of_the_cutoff_stay(
    population,
):
    session = ViewerSession.objects.get(client_id="c-edge")
    assert session.finalized and session.last_event_at < PLAYBACK_CUTOFF

    retention_purge()

    assert remaining(population["old_near_cutoff"]) == 4


def test_recent_playback_events_stay(population):
    retention_purge()

    assert remaining(population["recent_aggregated"]) == 4
    assert PlaybackBatch.objects.filter(client_id="c-recent").count() == 1


def test_aggregated_playback_figures_stay_after_the_purge(population):
    sessions = list(ViewerSession.objects.order_by("id").values())
    session_days = list(ViewerSessionDay.objects.order_by("id").values())
    stats = list(StreamStats.objects.order_by("day").values())
    old_stats = StreamStats.objects.get(day=OLD_DAY)
    assert old_stats.unique_viewers == 2  # c-old and c-open
    assert old_stats.total_watch_seconds == 120

    retention_purge()

    assert list(ViewerSession.objects.order_by("id").values()) == sessions
    assert list(ViewerSessionDay.objects.order_by("id").values()) == session_days
    assert list(StreamStats.objects.order_by("day").values()) == stats


def test_aggregation_after_the_purge_leaves_the_purged_days_figures_alone(population):
    retention_purge()
    c_old = ViewerSession.objects.filter(client_id="c-old").values().get()

    stream_stats_recompute()  # claims c-late's pending batch, recomputes OLD_DAY
    stream_stats_recompute(full=True)  # rebuilds everything that still has raw events

    assert ViewerSession.objects.filter(client_id="c-old").values().get() == c_old
    old = StreamStats.objects.get(day=OLD_DAY)
    assert old.unique_viewers == 3  # c-old (events purged), c-open, c-late
    assert old.total_watch_seconds == 180  # c-old's 60 s still counted


def test_once_aggregated_a_pending_batchs_events_go_on_the_next_run(population):
    retention_purge()
    stream_stats_recompute()

    result = retention_purge()

    # c-late's batch is claimed now, and that run finalized c-open's session again.
    assert result.deleted["streams.PlaybackEvent"] == 8
    assert remaining(population["old_pending"]) == 0
    assert remaining(population["old_unfinalized"]) == 0
    assert remaining(population["old_near_cutoff"]) == 4


def test_old_product_events_go_only_when_their_day_is_rolled_up(population):
    retention_purge()

    events = Event.objects
    assert events.filter(id__in=population["product_rolled"]).count() == 0
    assert events.filter(id__in=population["product_unrolled"]).count() == 3
    assert events.filter(id__in=population["product_flagged"]).count() == 2
    assert events.filter(id__in=population["product_recent"]).count() == 4


def test_rollups_within_365_days_stay_with_their_figures(population):
    rollups = {r.day: (r.total_events, r.dau) for r in DailyRollup.objects.all()}

    retention_purge()

    assert DailyRollup.objects.get(day=OLD_DAY).total_events == 5
    assert DailyRollup.objects.get(day=RECENT_DAY).total_events == 4
    kept = {r.day: (r.total_events, r.dau) for r in DailyRollup.objects.all()}
    assert kept == {d: v for d, v in rollups.items() if d != ANCIENT_DAY}


def test_rollups_older_than_365_days_go_with_their_active_users(population):
    assert DailyActiveUser.objects.filter(day=ANCIENT_DAY, user_id="u-ancient").exists()

    retention_purge()

    assert not DailyRollup.objects.filter(day=ANCIENT_DAY).exists()
    assert not DailyActiveUser.objects.filter(day=ANCIENT_DAY).exists()


def test_an_old_rollup_stays_while_its_day_still_has_raw_events(population):
    held_day = ANCIENT_DAY - timedelta(days=1)

    retention_purge()

    assert DailyRollup.objects.filter(day=held_day).exists()
    assert Event.objects.filter(id__in=population["ancient_held_events"]).count() == 1


def test_retention_settings_are_honoured(population, settings):
    settings.PLAYBACK_EVENT_RETENTION_DAYS = 5
    settings.PRODUCT_EVENT_RETENTION_DAYS = 5
    settings.ROLLUP_RETENTION_DAYS = 50

    retention_purge()

    assert remaining(population["recent_aggregated"]) == 0
    assert Event.objects.filter(id__in=population["product_recent"]).count() == 0
    # Older than 50 days, rollups go unless their day still holds raw events (the flagged
    # day, the held ancient day).
    assert set(DailyRollup.objects.values_list("day", flat=True)) == {
        RECENT_DAY,
        OLD_DAY - timedelta(days=2),
        ANCIENT_DAY - timedelta(days=1),
    }


def test_a_second_run_finds_nothing_more(population):
    retention_purge()

    again = retention_purge()

    assert set(again.deleted.values()) == {0}
    assert again.has_more is False


# --- Bounded batches --------------------------------------------------------------------


@pytest.fixture
def ten_old_aggregated_events(stream):
    ids = playback_received(stream, "c-ten", at(OLD_DAY), heartbeats=10)
    stream_stats_recompute()
    return ids


def test_batches_of_3_delete_10_old_events_and_say_when_more_remain(ten_old_aggregated_events):
    steps = []
    while True:
        deleted, has_more = playback_purge(batch_size=3)
        steps.append((deleted["streams.PlaybackEvent"], has_more))
        if not has_more:
            break
        assert len(steps) < 10

    assert steps == [(3, True), (3, True), (3, True), (1, False)]
    assert remaining(ten_old_aggregated_events) == 0
    assert not PlaybackBatch.objects.filter(client_id="c-ten").exists()


def test_a_full_last_batch_says_nothing_remains(stream):
    playback_received(stream, "c-nine", at(OLD_DAY), heartbeats=9)
    stream_stats_recompute()

    results = [playback_purge(batch_size=3) for _ in range(3)]

    assert [(r.deleted["streams.PlaybackEvent"], r.has_more) for r in results] == [
        (3, True),
        (3, True),
        (3, False),
    ]


def test_product_batches_of_3_delete_10_rolled_up_events(db):
    product_events(OLD_DAY, 10)
    daily_rollup_recompute(day=OLD_DAY)

    steps = [product_purge(batch_size=3) for _ in range(4)]

    assert [(s.deleted["analytics.Event"], s.has_more) for s in steps] == [
        (3, True),
        (3, True),
        (3, True),
        (1, False),
    ]
    assert Event.objects.count() == 0
    assert DailyRollup.objects.get(day=OLD_DAY).total_events == 10


def test_the_command_loops_until_everything_old_is_gone(ten_old_aggregated_events):
    out = io.StringIO()

    call_command("purge_analytics", "--batch-size", "3", stdout=out)

    assert "streams.PlaybackEvent: deleted 10" in out.getvalue()
    assert "Purged 11 rows" in out.getvalue()  # 10 events + their batch
    assert remaining(ten_old_aggregated_events) == 0


def test_the_command_refuses_a_batch_size_below_1(ten_old_aggregated_events):
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("purge_analytics", "--batch-size", "0", stdout=io.StringIO())
    assert remaining(ten_old_aggregated_events) == 10


# --- The daily Celery task ----------------------------------------------------------------


def test_purge_is_scheduled_daily_with_an_expiry():
    entry = CELERY_BEAT_SCHEDULE["purge-analytics"]
    schedule = maybe_schedule(entry["schedule"])
    assert entry["task"] == "streams.purge_analytics"
    assert schedule.hour == {4} and schedule.minute == {0}
    assert 0 < entry["options"]["expires"] <= 24 * 3600


def broker_messages_for(task_name: str) -> int:
    """Messages waiting in the Redis broker's default queue for `task_name`."""
    import json

    return sum(
        json.loads(raw)["headers"]["task"] == task_name
        for raw in get_redis().lrange("celery", 0, -1)
    )


def test_purge_task_runs_through_the_celery_app_and_re_enqueues_while_rows_remain(
    ten_old_aggregated_events,
):
    task = celery_app.tasks["streams.purge_analytics"]
    # max_seconds=0: one batch per run, so the run must hand the rest to a follow-up run.
    kwargs = {"batch_size": 3, "max_seconds": 0}
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded setup: the follow-ups run in-process
        result = task.apply_async(kwargs=kwargs)
        assert result.successful(), result.traceback
        assert remaining(ten_old_aggregated_events) == 0
        return
    runs = 0
    while True:  # with a Redis broker: run here, and see each follow-up reach the broker
        result = task.apply(kwargs=kwargs)
        assert result.successful(), result.traceback
        runs += 1
        waiting = broker_messages_for("streams.purge_analytics")
        assert waiting == (1 if result.result["has_more"] else 0)
        get_redis().delete("celery")
        if not result.result["has_more"]:
            break
        assert runs < 10
    assert runs == 4
    assert remaining(ten_old_aggregated_events) == 0


def test_purge_task_skips_while_another_run_holds_the_lock(ten_old_aggregated_events):
    PURGE_LOCK_KEY = job_lock_key(PURGE_LOCK)
    assert cache.add(PURGE_LOCK_KEY, "another-run", timeout=60)

    result = celery_app.tasks["streams.purge_analytics"].apply()

    assert result.result == {"skipped": "another purge run holds the lock"}
    assert remaining(ten_old_aggregated_events) == 10
    assert cache.get(PURGE_LOCK_KEY) == "another-run"
