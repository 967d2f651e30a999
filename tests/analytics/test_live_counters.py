"""SPEC §6.3: the EchoNest live-counter key schema, against the real Redis."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import redis

from analytics import live_counters

NINETY_DAYS = 90 * 24 * 60 * 60
DAY = "2026-02-12"


def test_track_with_email_writes_exactly_the_four_keys_with_scores_fields_members(redis_client):
    assert live_counters.track(redis_client, "song_add", "dylan@gmail.com", {"song_id": 7}, day=DAY)
    live_counters.track(redis_client, "song_add", "dylan@gmail.com", day=DAY)
    live_counters.track(redis_client, "song_add", "kurt@gmail.com", day=DAY)
    live_counters.track(redis_client, "vote", "dylan@gmail.com", day=DAY)

    assert sorted(redis_client.keys("*")) == [
        "ANALYTICS|dau|2026-02-12",
        "ANALYTICS|known_users",
        "ANALYTICS|song_add|2026-02-12",
        "ANALYTICS|totals|2026-02-12",
        "ANALYTICS|vote|2026-02-12",
    ]
    assert redis_client.zrange("ANALYTICS|song_add|2026-02-12", 0, -1, withscores=True) == [
        ("kurt@gmail.com", 1.0),
        ("dylan@gmail.com", 2.0),
    ]
    assert redis_client.zrange("ANALYTICS|vote|2026-02-12", 0, -1, withscores=True) == [
        ("dylan@gmail.com", 1.0)
    ]
    assert redis_client.hgetall("ANALYTICS|totals|2026-02-12") == {"song_add": "3", "vote": "1"}
    assert redis_client.smembers("ANALYTICS|dau|2026-02-12") == {
        "dylan@gmail.com",
        "kurt@gmail.com",
    }
    assert redis_client.smembers("ANALYTICS|known_users") == {"dylan@gmail.com", "kurt@gmail.com"}


def test_every_daily_key_expires_after_90_days_and_known_users_never(redis_client):
    live_counters.track(redis_client, "login", "bob@bob.com", day=DAY)
    for key in (
        "ANALYTICS|login|2026-02-12",
        "ANALYTICS|totals|2026-02-12",
        "ANALYTICS|dau|2026-02-12",
    ):
        assert NINETY_DAYS - 5 <= redis_client.ttl(key) <= NINETY_DAYS
    assert redis_client.ttl("ANALYTICS|known_users") == -1


def test_track_without_email_only_counts_the_daily_total(redis_client):
    live_counters.track(redis_client, "bender_fill", day=DAY)
    assert redis_client.keys("*") == ["ANALYTICS|totals|2026-02-12"]
    assert redis_client.hgetall("ANALYTICS|totals|2026-02-12") == {"bender_fill": "1"}


def test_track_defaults_to_todays_utc_date(redis_client):
    before = dt.datetime.now(dt.UTC).date().isoformat()
    live_counters.track(redis_client, "signup", "new@example.com")
    after = dt.datetime.now(dt.UTC).date().isoformat()
    assert redis_client.exists(f"ANALYTICS|signup|{before}") or redis_client.exists(
        f"ANALYTICS|signup|{after}"
    )


def test_track_sends_all_writes_in_one_round_trip(redis_client):
    round_trips = []

    class CountingPipeline(redis.client.Pipeline):
        def execute(self, raise_on_error=True):
            round_trips.append(len(self.command_stack))
            return super().execute(raise_on_error)

    if not isinstance(redis_client.pipeline(), redis.client.Pipeline):
        pytest.skip("in-process Redis uses its own pipeline class")
    client = redis.Redis(connection_pool=redis_client.connection_pool, decode_responses=True)
    client.pipeline = lambda transaction=True: CountingPipeline(
        client.connection_pool, client.response_callbacks, transaction, None
    )
    live_counters.track(client, "jam", "dylan@gmail.com", day=DAY)
    assert round_trips == [7]  # HINCRBY+EXPIRE, ZINCRBY+EXPIRE, SADD known, SADD dau+EXPIRE
    assert client.zscore("ANALYTICS|jam|2026-02-12", "dylan@gmail.com") == 1.0


def test_track_never_raises_when_redis_is_down(caplog):
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
    assert live_counters.track(down, "song_add", "dylan@gmail.com") is False
    assert "tracking failed" in caplog.text


def test_readers_daily_stats_active_users_user_stats_top_users(redis_client):
    today = dt.date(2026, 2, 12)
    yesterday = today - dt.timedelta(days=1)
    for _ in range(3):
        live_counters.track(redis_client, "song_add", "a@x.io", day=today)
    live_counters.track(redis_client, "song_add", "b@x.io", day=yesterday)
    live_counters.track(redis_client, "song_add", "b@x.io", day=yesterday)
    live_counters.track(redis_client, "vote", "b@x.io", day=today)
    live_counters.track(redis_client, "song_add", "old@x.io", day=today - dt.timedelta(days=7))

    assert live_counters.get_daily_stats(redis_client, today) == {"song_add": 3, "vote": 1}
    assert live_counters.get_daily_active_users(redis_client, today) == {"a@x.io", "b@x.io"}
    assert live_counters.get_user_stats(redis_client, days=7, today=today) == {
        "a@x.io": {"total": 3, "song_add": 3},
        "b@x.io": {"total": 3, "song_add": 2, "vote": 1},
    }
    # 7 days = today and the 6 before it, so old@x.io (7 days ago) is out.
    assert live_counters.get_top_users(redis_client, "song_add", days=7, today=today) == [
        ("a@x.io", 3),
        ("b@x.io", 2),
    ]
    assert live_counters.get_dau_trend(redis_client, days=2, today=today) == [
        ("2026-02-11", 1),
        ("2026-02-12", 2),
    ]
    assert live_counters.get_known_users_count(redis_client) == 3


def test_erase_member_removes_the_user_from_every_key_and_from_the_totals(redis_client):
    live_counters.track(redis_client, "song_add", "gone@x.io", day=DAY)
    live_counters.track(redis_client, "song_add", "gone@x.io", day=DAY)
    live_counters.track(redis_client, "song_add", "stay@x.io", day=DAY)
    live_counters.track(redis_client, "vote", "gone@x.io", day="2026-02-13")

    # song_add and vote sorted sets, two dau sets, known_users
    assert live_counters.erase_member(redis_client, "gone@x.io") == 5

    assert redis_client.zrange("ANALYTICS|song_add|2026-02-12", 0, -1) == ["stay@x.io"]
    assert not redis_client.exists("ANALYTICS|vote|2026-02-13")
    assert redis_client.hgetall("ANALYTICS|totals|2026-02-12") == {"song_add": "1"}
    assert redis_client.hgetall("ANALYTICS|totals|2026-02-13") == {}
    assert redis_client.smembers("ANALYTICS|dau|2026-02-12") == {"stay@x.io"}
    assert redis_client.smembers("ANALYTICS|known_users") == {"stay@x.io"}


def test_live_counter_module_imports_nothing_from_django():
    code = (
        "import sys; import analytics.live_counters; "
        "print(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
