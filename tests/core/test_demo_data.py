"""`manage.py seed_demo`: the demo fills the dashboards' whole default range with traffic
that looks like a healthy service (SPEC §6.2 figures, §6.3 live counters, §6.4 usage).

The demo is seeded once for this module (through the real command, ingestion and
aggregation, into the real database) and the database is flushed afterwards.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings

from analytics import live_counters
from analytics.models import DailyActiveUser, DailyRollup, Event
from echonest_analytics.days import day_bounds, utc_today
from echonest_analytics.redis import get_redis
from streams.demo import DEMO_STREAMS, LAUNCH_DAYS_AGO
from streams.models import PlaybackBatch, PlaybackEvent, Stream, StreamStats, ViewerSession

DEMO_KEYS = [key for key, *_ in DEMO_STREAMS]
SUMMARY = "/admin/analytics/streams/summary"
USAGE = "/api/analytics/usage"


def _counts() -> dict[str, int]:
    return {
        "streams": Stream.objects.count(),
        "playback_events": PlaybackEvent.objects.count(),
        "playback_batches": PlaybackBatch.objects.count(),
        "viewer_sessions": ViewerSession.objects.count(),
        "stream_stats": StreamStats.objects.count(),
        "product_events": Event.objects.count(),
        "daily_rollups": DailyRollup.objects.count(),
        "daily_active_users": DailyActiveUser.objects.count(),
        "users": get_user_model().objects.count(),
    }


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed once; what the live counters held right after seeding (tests flush Redis)."""
    var_dir = tmp_path_factory.mktemp("var")
    hls_dir = var_dir / "demo-hls"
    hls_dir.mkdir()
    (hls_dir / "stream.m3u8").write_text("#EXTM3U\n")  # no ffmpeg run in the tests
    with override_settings(VAR_DIR=var_dir, DEMO_HLS_DIR=hls_dir), django_db_blocker.unblock():
        get_redis.cache_clear()
        get_redis().flushdb()
        cache.clear()
        today = utc_today()
        call_command("seed_demo", stdout=io.StringIO())
        redis_client = get_redis()
        live = {
            "dau": dict(live_counters.get_dau_trend(redis_client, days=7, today=today)),
            "known_users": live_counters.get_known_users_count(redis_client),
        }
        yield {"today": today, "live": live, "counts": _counts(), "var_dir": var_dir}
        call_command("flush", interactive=False, verbosity=0)
        get_redis().flushdb()


@pytest.fixture
def seeded_today(demo):
    if utc_today() != demo["today"]:
        pytest.skip("the UTC day changed since seeding; the demo is relative to its day")
    return demo["today"]


pytestmark = pytest.mark.django_db


def _last_days(today, n: int) -> list:
    return [today - timedelta(days=offset) for offset in range(n - 1, -1, -1)]


def test_every_demo_stream_has_viewers_on_each_of_the_last_60_days(seeded_today):
    stats = {
        (key, day): viewers
        for key, day, viewers in StreamStats.objects.values_list(
            "stream__key", "day", "unique_viewers"
        )
    }
    for key in DEMO_KEYS:
        empty = [d for d in _last_days(seeded_today, 60) if stats.get((key, d), 0) <= 0]
        assert empty == [], f"{key} has no viewers on {empty}"


def test_default_range_error_rate_and_buffer_ratio_look_healthy(admin_client_api, seeded_today):
    """Over the dashboard's 30 days: 0.5–8 % of sessions with an error, 0.1–5 % rebuffering."""
    response = admin_client_api.get(SUMMARY, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    summary = response.json()
    assert summary["streams"] == len(DEMO_KEYS) + 1  # and the broadcast demo station's stream
    assert summary["sessions"] >= 30 * len(DEMO_KEYS) * 10
    assert 0.005 <= summary["error_rate"] <= 0.08
    assert 0.001 <= summary["buffer_ratio"] <= 0.05
    assert summary["unique_viewers"] < summary["sessions"]  # regulars come back
    assert {"desktop", "mobile", "tablet", "tv"} <= set(summary["device_breakdown"])
    assert "bot" not in summary["device_breakdown"]
    assert len(summary["top_countries"]) == 5


def test_each_demo_stream_has_a_healthy_error_rate_and_buffer_ratio(seeded_today):
    first = seeded_today - timedelta(days=29)
    for key in DEMO_KEYS:
        days = StreamStats.objects.filter(stream__key=key, day__gte=first)
        sessions = sum(s.sessions for s in days)
        with_error = sum(s.error_rate * s.sessions for s in days)
        watch = sum(s.total_watch_seconds for s in days)
        buffering = sum(s.buffer_ratio * s.total_watch_seconds for s in days)
        assert 0.005 <= with_error / sessions <= 0.08, key
        assert 0.001 <= buffering / watch <= 0.05, key


def test_bots_are_stored_and_left_out_of_the_figures(seeded_today):
    bots = ViewerSession.objects.filter(device="bot", stream__key__in=DEMO_KEYS)
    assert bots.exists()
    sessions = sum(StreamStats.objects.values_list("sessions", flat=True))
    counted = ViewerSession.objects.exclude(device="bot").filter(stream__key__in=DEMO_KEYS)
    assert sessions == counted.count()


def test_launch_party_premiere_is_its_busiest_day(seeded_today):
    launch_day = seeded_today - timedelta(days=LAUNCH_DAYS_AGO)
    days = StreamStats.objects.filter(stream__key="launch-party")
    busiest = max(days, key=lambda s: s.sessions)
    assert busiest.day == launch_day
    others = [s.peak_concurrent_viewers for s in days if s.day != launch_day]
    assert busiest.peak_concurrent_viewers > 3 * max(others)


def test_weekday_evenings_are_busier_than_small_hours(seeded_today):
    starts = ViewerSession.objects.filter(stream__key="launch-party").values_list(
        "started_at", flat=True
    )
    weekday = [s.hour for s in starts if s.weekday() < 5]
    evening = sum(1 for h in weekday if 18 <= h < 23)
    small_hours = sum(1 for h in weekday if 3 <= h < 8)
    assert evening > 4 * small_hours


def test_product_events_on_each_of_the_last_60_days(seeded_today):
    days = {at.date() for at in Event.objects.values_list("occurred_at", flat=True)}
    missing = [d for d in _last_days(seeded_today, 60) if d not in days]
    assert missing == []


def test_every_past_day_of_the_period_is_rolled_up(seeded_today):
    past = _last_days(seeded_today - timedelta(days=1), 59)
    rollups = {r.day: r for r in DailyRollup.objects.filter(day__in=past)}
    assert sorted(rollups) == past
    assert all(r.dau > 0 and not r.needs_recompute for r in rollups.values())


def test_usage_api_covers_all_30_days(staff_client, seeded_today):
    response = staff_client.get(USAGE, {"days": 30})
    assert response.status_code == 200, response.content
    usage = response.json()
    assert usage["dau"] > 0
    assert usage["unique_days"] == 30
    assert usage["rolled_up_days"] == 29  # past days from rollups, today from raw events
    assert usage["funnel_steps"]["conversion"] > 0


def test_live_counters_match_the_stored_events_of_the_last_7_days(demo, seeded_today):
    for day in _last_days(seeded_today, 7):
        start, end = day_bounds(day)
        users = (
            Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
            .exclude(user_id="")
            .values("user_id")
            .distinct()
            .count()
        )
        assert demo["live"]["dau"][day.isoformat()] == users, day
    known = Event.objects.exclude(user_id="").values("user_id").distinct().count()
    assert demo["live"]["known_users"] == known


def test_seeding_again_adds_nothing(demo):
    with override_settings(VAR_DIR=demo["var_dir"], DEMO_HLS_DIR=demo["var_dir"] / "demo-hls"):
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
    assert _counts() == demo["counts"]
    assert "already loaded" in out.getvalue()
