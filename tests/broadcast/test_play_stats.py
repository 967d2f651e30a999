"""SPEC §9.3 play figures, read from the caches `broadcast_stats_refresh` writes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core.management import call_command

from streams.broadcast.models import HourlyPlayCount, PlayStatsCache
from streams.broadcast.play_figures import genre_breakdown, heatmap, top_songs
from streams.broadcast.play_stats import broadcast_stats_refresh
from tests.broadcast.staff_support import T0, make_station, minutes, play, song

pytestmark = pytest.mark.django_db


def test_a_play_of_29_999_ms_is_a_skip_and_one_of_30_000_ms_is_not():
    station = make_station()
    tune = song(station, "1", "Nightcall")
    play(station, tune, T0, played_ms=29_999)
    play(station, tune, minutes(5), played_ms=30_000)
    broadcast_stats_refresh(station=station, now=minutes(60))
    [row] = top_songs(station=station, period="all")
    assert (row["play_count"], row["skip_count"], row["total_played_ms"]) == (2, 1, 59_999)
    assert row["avg_played_ms"] == 30_000  # 59,999 / 2 rounded
    assert row["avg_duration_ms"] == 200_000


def test_top_songs_order_play_count_then_total_played_then_title():
    station = make_station()
    b, a, c, d = (
        song(station, str(i), t) for i, t in enumerate(["Bravo", "Alpha", "Charlie", "Delta"])
    )
    for n, (tune, played_ms) in enumerate(
        [
            (b, 100_000),
            (b, 100_000),
            (a, 100_000),
            (a, 100_000),
            (c, 150_000),
            (c, 50_000),
            (d, 300_000),
        ]
    ):
        play(station, tune, minutes(5 * n), played_ms=played_ms)
    broadcast_stats_refresh(station=station, now=minutes(60))
    # Alpha, Bravo, Charlie: 2 plays, 200,000 ms each → by title; Delta 1 play.
    assert [s["title"] for s in top_songs(station=station, period="all")] == [
        "Alpha",
        "Bravo",
        "Charlie",
        "Delta",
    ]
    assert [s["title"] for s in top_songs(station=station, period="all", limit=2)] == [
        "Alpha",
        "Bravo",
    ]


def test_periods_are_local_days_and_refresh_is_idempotent():
    station = make_station(tz="Europe/Berlin")
    tune = song(station, "1", "Nightcall")
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    play(station, tune, datetime(2026, 6, 3, 22, 30, tzinfo=UTC))  # 4 June 00:30 Berlin: in 7d
    play(station, tune, datetime(2026, 6, 3, 21, 30, tzinfo=UTC))  # 3 June 23:30 Berlin: not
    play(station, tune, datetime(2026, 6, 9, 12, 0, tzinfo=UTC), crossfade=True)
    broadcast_stats_refresh(station=station, now=now)
    broadcast_stats_refresh(station=station, now=now)  # recomputed, never added
    counts = {r.period: r.play_count for r in PlayStatsCache.objects.all()}
    assert counts == {"all": 3, "90d": 3, "30d": 3, "7d": 2}
    assert top_songs(station=station, period="7d")[0]["crossfade_count"] == 1


def test_genre_breakdown_counts_empty_genre_as_unknown():
    station = make_station()
    rock, nameless = song(station, "1", "R", genre="Rock"), song(station, "2", "N", genre="")
    play(station, rock, T0)
    play(station, nameless, minutes(5))
    play(station, nameless, minutes(10))
    broadcast_stats_refresh(station=station, now=minutes(60))
    assert genre_breakdown(station=station, period="all") == [
        {"genre": "Unknown", "play_count": 2},
        {"genre": "Rock", "play_count": 1},
    ]


def test_kolkata_play_at_19_utc_is_in_the_next_local_date():
    station = make_station(tz="Asia/Kolkata")
    tune = song(station, "1", "Raga")
    play(station, tune, datetime(2026, 6, 1, 19, 0, tzinfo=UTC))  # 2 June 00:30 IST
    broadcast_stats_refresh(station=station, now=datetime(2026, 6, 2, 12, 0, tzinfo=UTC))
    cells = heatmap(station=station, date_from=date(2026, 6, 1), date_to=date(2026, 6, 2))
    [hit] = [c for c in cells if c["play_count"]]
    assert (hit["date"], hit["hour"], hit["utc_offset"], hit["unique_songs"]) == (
        date(2026, 6, 2),
        0,
        "+05:30",
        1,
    )


def test_berlin_autumn_dst_day_has_25_hours_with_hour_2_twice():
    station = make_station(tz="Europe/Berlin")
    first, second = song(station, "1", "One"), song(station, "2", "Two")
    play(station, first, datetime(2026, 10, 25, 0, 15, tzinfo=UTC))  # 02:15 CEST (+02:00)
    play(station, second, datetime(2026, 10, 25, 0, 45, tzinfo=UTC))  # 02:45 CEST
    play(station, first, datetime(2026, 10, 25, 1, 15, tzinfo=UTC))  # 02:15 CET (+01:00)
    broadcast_stats_refresh(station=station, now=datetime(2026, 10, 26, tzinfo=UTC))
    day = date(2026, 10, 25)
    cells = heatmap(station=station, date_from=day, date_to=day)
    assert len(cells) == 25
    twos = [c for c in cells if c["hour"] == 2]
    assert [(c["utc_offset"], c["play_count"], c["unique_songs"]) for c in twos] == [
        ("+02:00", 2, 2),
        ("+01:00", 1, 1),
    ]
    assert HourlyPlayCount.objects.filter(hour=2).count() == 2
    spring = date(2026, 3, 29)
    assert len(heatmap(station=station, date_from=spring, date_to=spring)) == 23


def test_management_command_refreshes_one_station(capsys):
    station = make_station(key="one-fm")
    play(station, song(station, "1", "X"), T0)
    call_command("broadcast_refresh", "--station", "one-fm")
    assert "one-fm" in capsys.readouterr().out
    assert PlayStatsCache.objects.filter(station=station, period="all").count() == 1


def test_ten_plays_of_which_three_under_30_seconds_give_skip_count_3():
    station = make_station()
    tune = song(station, "1", "Nightcall")
    lengths = [5_000, 12_000, 29_999, 30_000, 31_000, 60_000, 120_000, 180_000, 200_000, 240_000]
    for n, played_ms in enumerate(lengths):
        play(station, tune, minutes(5 * n), played_ms=played_ms)
    broadcast_stats_refresh(station=station, now=minutes(60))
    [row] = top_songs(station=station, period="all")
    assert (row["play_count"], row["skip_count"]) == (10, 3)
    assert row["total_played_ms"] == sum(lengths)
