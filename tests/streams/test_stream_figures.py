"""SPEC §6.2 stream figures computed in one place (streams/stream_figures.py): the pure
derivation, the Bunny rule per day, the range read combining stored days, the Bunny
import rewriting a day through the aggregator's writer, and the player state carried
over a run of errors by the aggregator's SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.aggregation import stream_stats_recompute
from streams.bunny import stream_stats_apply_bunny
from streams.models import StreamStats, ViewerSession
from streams.selectors import stream_stats_list
from streams.stream_figures import day_total_watch_seconds, stream_figures

from .conftest import MOBILE_UA, T0, ev, heartbeats

DAY = T0.date()
MINUTE = 60


def test_figures_of_one_viewer_watching_60_seconds_with_5_buffering_and_an_error():
    figures = stream_figures(
        sessions=1,
        unique_viewers=1,
        total_watch_seconds=60.0,
        tracked_watch_seconds=60.0,
        buffer_seconds=5.0,
        error_sessions=1,
    )
    assert figures.total_watch_seconds == 60
    assert figures.avg_watch_seconds == 60
    assert figures.buffer_ratio == pytest.approx(5 / 60)
    assert figures.error_rate == 1.0
    assert figures.rounded() == {
        "total_watch_seconds": 60.0,
        "avg_watch_seconds": 60.0,
        "buffer_ratio": 0.083333,
        "error_rate": 1.0,
        "playback_failure_rate": 0.0,  # no fatal error given
        "rebuffer_frequency": 0.0,  # no rebuffer count given
    }


def test_figures_of_nothing_are_zeros_not_divisions_by_zero():
    figures = stream_figures(
        sessions=0,
        unique_viewers=0,
        total_watch_seconds=900.0,  # a Bunny-only day
        tracked_watch_seconds=0.0,
        buffer_seconds=0.0,
        error_sessions=0,
    )
    assert (figures.avg_watch_seconds, figures.buffer_ratio, figures.error_rate) == (0, 0, 0)


def test_bunny_rule_takes_the_larger_watch_time_of_the_day():
    assert day_total_watch_seconds(tracked_watch_seconds=60, bunny_watch_seconds=600) == 600
    assert day_total_watch_seconds(tracked_watch_seconds=60, bunny_watch_seconds=10) == 60


@pytest.mark.django_db
def test_range_total_is_the_sum_of_the_day_totals_not_the_max_of_the_sums(stream, superuser):
    # Day 1: Bunny saw more (600 > 60); day 2: we tracked more (300 > 100).
    for day, tracked, bunny in [(DAY - timedelta(days=1), 60.0, 600.0), (DAY, 300.0, 100.0)]:
        StreamStats.objects.create(
            stream=stream,
            day=day,
            sessions=1,
            unique_viewers=1,
            tracked_watch_seconds=tracked,
            total_watch_seconds=day_total_watch_seconds(
                tracked_watch_seconds=tracked, bunny_watch_seconds=bunny
            ),
            buffer_seconds=36.0,
        )

    (row,) = stream_stats_list(user=superuser, date_from=DAY - timedelta(days=1), date_to=DAY)

    assert row["total_watch_seconds"] == 900  # 600 + 300, not max(360, 700)
    assert row["sessions"] == 2
    assert row["buffer_ratio"] == pytest.approx(72 / 360, abs=1e-6)  # over tracked time
    assert row["unique_viewers"] == 0  # no sessions: viewers come from ViewerSession


@pytest.mark.django_db
def test_range_unique_viewers_count_a_client_of_two_days_once(stream, superuser, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    send_batch("c-1", heartbeats(0, 15, 30, 45, base=T0 + timedelta(days=1)))
    send_batch("c-2", heartbeats(0, 15, 30, 45), ua=MOBILE_UA)
    assert stream_stats_recompute().ran
    assert sum(StreamStats.objects.values_list("unique_viewers", flat=True)) == 3

    (row,) = stream_stats_list(user=superuser, date_from=DAY, date_to=DAY + timedelta(days=1))

    assert row["unique_viewers"] == 2
    assert row["sessions"] == 3
    assert row["total_watch_seconds"] == 180
    assert row["avg_watch_seconds"] == 90  # 180 s over 2 distinct viewers


@pytest.mark.django_db
def test_bunny_import_rewrites_only_the_watch_total_and_average(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("buffer_start", 20), ev("buffer_end", 25)])
    send_batch("c-1", [ev("error", 30), ev("heartbeat", 45), ev("pause", 60)])
    send_batch("c-2", heartbeats(0, 15, 30, 45), ua=MOBILE_UA)
    assert stream_stats_recompute().ran
    before = StreamStats.objects.filter(stream=stream, day=DAY).values().get()

    stream_stats_apply_bunny(stream_id=stream.id, day=DAY, bunny_watch_seconds=1000.0)

    after = StreamStats.objects.filter(stream=stream, day=DAY).values().get()
    assert after["total_watch_seconds"] == 1000
    assert after["avg_watch_seconds"] == 500  # 1000 s over 2 unique viewers
    unchanged = {
        k: v for k, v in before.items() if k not in ("total_watch_seconds", "avg_watch_seconds")
    }
    assert {k: after[k] for k in unchanged} == unchanged  # last_calculated_at included


@pytest.mark.django_db
def test_a_session_opening_with_errors_does_not_inherit_the_state_of_the_one_before(
    stream, send_batch
):
    send_batch("c-1", [ev("play", 0), ev("heartbeat", 15)])
    later = 40 * MINUTE  # a new session: no state of its own until its play
    send_batch(
        "c-1",
        [ev("error", later), ev("error", later + 10), ev("error", later + 20)]
        + [ev("play", later + 30), ev("error", later + 40), ev("error", later + 45)],
    )
    assert stream_stats_recompute().ran

    first, second = ViewerSession.objects.order_by("started_at")
    assert (first.playing_seconds, first.player_state) == (15, "playing")
    # Only play → error → error is credited (10 + 5 s); the errors keep it playing.
    assert second.playing_seconds == pytest.approx(15)
    assert (second.error_count, second.player_state) == (5, "playing")


@pytest.mark.django_db
def test_a_session_of_errors_only_has_no_player_state(stream, send_batch):
    send_batch("c-1", [ev("error", 0), ev("error", 10)])
    assert stream_stats_recompute().ran
    session = ViewerSession.objects.get()
    assert (session.watch_seconds, session.player_state) == (0, "")
