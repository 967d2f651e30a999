"""SPEC §7 product rollup: recomputed from raw rows, re-runnable, scheduled at 03:15 UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command

from analytics.models import DailyActiveUser, DailyRollup
from analytics.rollups import daily_rollup_recompute, daily_rollups_refresh, rollup_due_days
from analytics.tasks import daily_rollups_refresh_task

from .conftest import USAGE_DATASET, at, store

pytestmark = pytest.mark.django_db

MARCH_7 = dt.date(2026, 3, 7)


def test_a_rollup_holds_the_days_totals_by_type_dau_and_feature_usage(frozen_now):
    store(USAGE_DATASET)
    rollup = daily_rollup_recompute(day=MARCH_7)
    assert rollup.total_events == 3
    assert rollup.event_counts == {"page_view": 2, "conversion": 1}
    assert rollup.feature_usage == {"dashboard": 2, "checkout": 1}
    assert rollup.dau == 2  # alice, carol; the anonymous event is not a user
    assert set(DailyActiveUser.objects.filter(day=MARCH_7).values_list("user_id", "events")) == {
        ("alice", 1),
        ("carol", 1),
    }
    assert rollup.needs_recompute is False


def test_re_running_a_rollup_does_not_double_count(frozen_now):
    store(USAGE_DATASET)
    first = daily_rollup_recompute(day=MARCH_7)
    second = daily_rollup_recompute(day=MARCH_7)
    assert (
        (second.total_events, second.dau, second.event_counts)
        == (
            first.total_events,
            first.dau,
            first.event_counts,
        )
        == (3, 2, {"page_view": 2, "conversion": 1})
    )
    assert DailyRollup.objects.filter(day=MARCH_7).count() == 1
    assert DailyActiveUser.objects.filter(day=MARCH_7).count() == 2


def test_a_rerun_picks_up_events_that_arrived_since(frozen_now):
    store(USAGE_DATASET)
    daily_rollup_recompute(day=MARCH_7)
    store([("action", "zed", "queue", at("2026-03-07", 22))])
    rollup = daily_rollup_recompute(day=MARCH_7)
    assert (rollup.total_events, rollup.dau) == (4, 3)


def test_today_is_never_rolled_up(frozen_now):
    with pytest.raises(ValueError, match="not a complete UTC day"):
        daily_rollup_recompute(day=dt.date(2026, 3, 11))


def test_the_nightly_run_covers_yesterday_flagged_days_and_recent_gaps(frozen_now):
    store(USAGE_DATASET)  # flags every past day that received an event
    due = rollup_due_days()
    assert dt.date(2026, 3, 10) in due  # yesterday
    assert dt.date(2026, 2, 20) in due  # flagged by a late event
    assert dt.date(2026, 3, 4) in due  # within the 7-day backfill, never rolled up
    assert dt.date(2026, 3, 11) not in due
    daily_rollups_refresh()
    assert not DailyRollup.objects.filter(needs_recompute=True).exists()
    assert rollup_due_days() == [dt.date(2026, 3, 10)]  # only yesterday is always redone


def test_the_task_runs_the_refresh_and_skips_while_another_run_holds_the_lock(frozen_now):
    from django.core.cache import cache

    from analytics.tasks import ROLLUP_LOCK
    from echonest_analytics.locks import job_lock_key

    store(USAGE_DATASET)
    assert "2026-03-10" in daily_rollups_refresh_task()
    cache.add(job_lock_key(ROLLUP_LOCK), "another-run")
    assert daily_rollups_refresh_task() == []


def test_the_rollup_is_scheduled_daily_at_03_15_utc_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["analytics-daily-rollups"]
    assert entry["task"] == "analytics.daily_rollups_refresh"
    assert entry["schedule"] == crontab(hour=3, minute=15)
    assert 0 < entry["options"]["expires"] <= 24 * 60 * 60


def test_rollup_analytics_command_with_a_date(frozen_now, capsys):
    store(USAGE_DATASET)
    call_command("rollup_analytics", "--date", "2026-03-07")
    assert "2026-03-07: 3 events, 2 active users" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("rollup_analytics", "--date", "March 7")
    with pytest.raises(CommandError):
        call_command("rollup_analytics", "--date", "2026-03-11")


def test_rollup_analytics_command_without_a_date_does_the_nightly_run(frozen_now, capsys):
    store(USAGE_DATASET)
    call_command("rollup_analytics")
    assert "2026-03-10: 4 events, 3 active users" in capsys.readouterr().out
