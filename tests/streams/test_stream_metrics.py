"""SPEC §6.1 sessions and §6.2 stream figures, through the real pipeline.

Batches go over HTTP like a player sends them, `stream_stats_recompute()` runs the
set-based aggregation, and the numbers are read back from StreamStats / ViewerSession.
Heartbeat interval 15 s, gap cap 2 × 15 = 30 s, session timeout 30 min.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from streams.aggregation import stream_stats_recompute
from streams.models import PlaybackEvent, StreamStats, ViewerSession, ViewerSessionDay

from .conftest import BOT_UA, DESKTOP_UA, MOBILE_UA, T0, TABLET_UA, ev, heartbeats

pytestmark = pytest.mark.django_db

DAY = T0.date()
MIDNIGHT = datetime.combine(DAY + timedelta(days=1), time(0), tzinfo=UTC)
MINUTE = 60

# A session with every rule in it (state after each event in brackets):
#   play 0 [playing] -15 s- heartbeat 15 -15 s- heartbeat 30 -10 s- buffer_start 40 [buffering]
#   -6 s buffering- buffer_end 46 [playing] -14 s- heartbeat 60 -10 s- pause 70 [paused]
#   -30 s, no credit- play 100 -15 s- heartbeat 115 -5 s- error 120 [still playing]
#   -10 s- heartbeat 130.
# playing = 15 + 15 + 10 + 14 + 10 + 15 + 5 + 10 = 94 s, buffering = 6 s, watch = 100 s.
RICH_SESSION = [
    ev("play", 0),
    ev("heartbeat", 15),
    ev("heartbeat", 30),
    ev("buffer_start", 40),
    ev("buffer_end", 46),
    ev("heartbeat", 60),
    ev("pause", 70),
    ev("play", 100),
    ev("heartbeat", 115),
    ev("error", 120, extra={"code": "NETWORK"}),
    ev("heartbeat", 130),
]


def around_midnight(*seconds: float) -> list[dict]:
    """Heartbeats `seconds` from the midnight after DAY (negative: before it)."""
    return [ev("heartbeat", s, base=MIDNIGHT) for s in seconds]


def recompute(**kwargs):
    summary = stream_stats_recompute(**kwargs)
    assert summary.ran
    return summary


def stats(stream, day: date = DAY) -> StreamStats:
    return StreamStats.objects.get(stream=stream, day=day)


def figures(session: ViewerSession) -> tuple:
    return (session.watch_seconds, session.playing_seconds, session.buffer_seconds)


def session_rows(stream=None) -> list[tuple]:
    """Every session with its figures, floats rounded so both databases compare alike."""
    qs = ViewerSession.objects.order_by("client_id", "started_at")
    if stream is not None:
        qs = qs.filter(stream=stream)
    return [
        (
            s.id,
            s.client_id,
            s.started_at,
            s.last_event_at,
            round(s.watch_seconds, 6),
            round(s.playing_seconds, 6),
            round(s.buffer_seconds, 6),
            s.buffer_count,
            s.error_count,
            s.event_count,
            s.country,
            s.device,
        )
        for s in qs
    ]


def assert_rich_session_figures(stream) -> None:
    session = ViewerSession.objects.get(stream=stream)
    assert figures(session) == pytest.approx((100, 94, 6))
    assert (session.buffer_count, session.error_count, session.event_count) == (1, 1, 11)
    assert session.started_at == T0
    assert session.last_event_at == T0 + timedelta(seconds=130)
    day = stats(stream)
    assert day.total_watch_seconds == pytest.approx(100)
    assert day.avg_watch_seconds == pytest.approx(100)
    assert day.buffer_ratio == pytest.approx(6 / 100)
    assert day.error_rate == 1.0
    assert (day.sessions, day.unique_viewers, day.peak_concurrent_viewers) == (1, 1, 1)


# --- §6.2 reference cases ------------------------------------------------------------


def test_heartbeats_at_0_15_30_45_give_60_seconds_total_and_average_and_peak_1(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    recompute()

    day = stats(stream)
    # 15 s opening credit (the session opens with a heartbeat) + 3 gaps of 15 s = 60 s.
    assert day.total_watch_seconds == pytest.approx(60)
    assert day.avg_watch_seconds == pytest.approx(60)
    assert day.peak_concurrent_viewers == 1
    assert (day.sessions, day.unique_viewers) == (1, 1)
    assert day.buffer_ratio == 0
    assert day.error_rate == 0
    assert figures(ViewerSession.objects.get()) == pytest.approx((60, 60, 0))


def test_buffering_5_seconds_inside_60_seconds_gives_buffer_ratio_5_over_60(stream, send_batch):
    # opening 15 + 0→15 playing 15 + 15→20 playing 5 + 20→25 buffering 5
    # + 25→30 playing 5 + 30→45 playing 15 = 55 playing + 5 buffering = 60 watched.
    send_batch(
        "c-1",
        [
            ev("heartbeat", 0),
            ev("heartbeat", 15),
            ev("buffer_start", 20),
            ev("buffer_end", 25),
            ev("heartbeat", 30),
            ev("heartbeat", 45),
        ],
    )
    recompute()

    day = stats(stream)
    assert day.total_watch_seconds == pytest.approx(60)
    assert day.buffer_seconds == pytest.approx(5)
    assert day.buffer_ratio == pytest.approx(5 / 60)
    session = ViewerSession.objects.get()
    assert figures(session) == pytest.approx((60, 55, 5))
    assert session.buffer_count == 1


def test_one_error_in_the_only_session_gives_error_rate_1(stream, send_batch):
    send_batch(
        "c-1",
        [ev("play", 0), ev("heartbeat", 15), ev("error", 20, extra={"code": "NETWORK"})],
    )
    recompute()
    assert stats(stream).error_rate == 1.0
    assert stats(stream).error_sessions == 1


def test_error_rate_counts_sessions_with_an_error_not_errors(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("error", 5), ev("error", 6), ev("error", 7)])
    send_batch("c-2", [ev("play", 0), ev("heartbeat", 15)])
    recompute()
    # 1 of 2 sessions had an error (three of them): 1 / 2.
    assert stats(stream).error_rate == 0.5
    assert stats(stream).sessions == 2


def test_three_clients_with_overlapping_sessions_give_peak_3(stream, send_batch):
    send_batch("c-a", heartbeats(0, 15, 30, 45, 60))
    send_batch("c-b", heartbeats(30, 45, 60, 75, 90))
    send_batch("c-c", heartbeats(45, 60, 75, 90, 105, 120))
    recompute()
    day = stats(stream)
    assert day.peak_concurrent_viewers == 3
    assert (day.sessions, day.unique_viewers) == (3, 3)


def test_a_session_ending_when_another_starts_overlaps_it(stream, send_batch):
    send_batch("c-a", heartbeats(0, 15, 30))
    send_batch("c-b", heartbeats(30, 45, 60))
    recompute()
    assert stats(stream).peak_concurrent_viewers == 2


def test_sessions_one_after_another_give_peak_1(stream, send_batch):
    send_batch("c-a", heartbeats(0, 15, 30))
    send_batch("c-b", heartbeats(31, 45, 60))
    send_batch("c-c", heartbeats(61, 75))
    recompute()
    assert stats(stream).peak_concurrent_viewers == 1


# --- §6.1 sessions -------------------------------------------------------------------


def test_gap_of_31_minutes_starts_a_new_session(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 15 + 31 * MINUTE, 30 + 31 * MINUTE))
    assert ViewerSession.objects.count() == 2  # provisional, at ingestion
    recompute()
    assert ViewerSession.objects.count() == 2
    day = stats(stream)
    assert (day.sessions, day.unique_viewers) == (2, 1)
    # Each session: 15 s opening + 15 s; the 31-minute gap is credited nowhere.
    assert day.total_watch_seconds == pytest.approx(60)


def test_gap_of_29_minutes_stays_in_one_session(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 15 + 29 * MINUTE, 30 + 29 * MINUTE))
    assert ViewerSession.objects.count() == 1
    recompute()
    assert ViewerSession.objects.count() == 1
    day = stats(stream)
    assert (day.sessions, day.unique_viewers) == (1, 1)
    # 15 s opening + 15 + 29-minute gap capped at 30 + 15 = 75 s.
    assert day.total_watch_seconds == pytest.approx(75)


def test_gap_of_exactly_30_minutes_starts_a_new_session(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 15 + 30 * MINUTE, 30 + 30 * MINUTE))
    assert ViewerSession.objects.count() == 2
    recompute()
    assert ViewerSession.objects.count() == 2
    assert stats(stream).sessions == 2


def test_events_sent_in_reverse_order_give_the_in_order_figures(stream, second_stream, send_batch):
    send_batch("c-1", RICH_SESSION)
    send_batch("c-1", list(reversed(RICH_SESSION)), stream_key="after-party")
    recompute()
    assert_rich_session_figures(stream)
    assert_rich_session_figures(second_stream)


def test_late_batch_gives_the_in_order_figures(stream, send_batch):
    first_half, second_half = RICH_SESSION[:5], RICH_SESSION[5:]
    send_batch("c-1", second_half)
    recompute()
    # Only the second half so far: it opens with a heartbeat at 60 s, so 15 s opening
    # credit + 10 playing + (70→100 paused) + 15 + 5 + 10 = 55 s.
    assert stats(stream).total_watch_seconds == pytest.approx(55)

    send_batch("c-1", first_half)
    recompute()
    # The whole run now opens with a play: no opening credit, 100 s as in order.
    assert_rich_session_figures(stream)
    assert ViewerSessionDay.objects.count() == 1


def test_late_batch_filling_a_40_minute_gap_merges_two_sessions(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    send_batch("c-1", heartbeats(40 * MINUTE, 40 * MINUTE + 15, 40 * MINUTE + 30))
    recompute()
    assert ViewerSession.objects.count() == 2
    assert stats(stream).sessions == 2
    assert stats(stream).total_watch_seconds == pytest.approx(45 + 45)
    first_session_id = ViewerSession.objects.order_by("started_at").first().id

    # 20 minutes in: 19.5 min after the first run and 20 min before the second.
    send_batch("c-1", heartbeats(20 * MINUTE, 20 * MINUTE + 15))
    recompute()

    session = ViewerSession.objects.get()
    # The merged session keeps the earlier session's id; raw events are never rewritten,
    # so the first batch's events still point at it.
    assert session.id == first_session_id
    assert set(
        PlaybackEvent.objects.filter(occurred_at__lt=T0 + timedelta(minutes=1)).values_list(
            "session_id", flat=True
        )
    ) == {session.id}
    assert session.event_count == 8
    assert session.started_at == T0
    assert session.last_event_at == T0 + timedelta(seconds=40 * MINUTE + 30)
    day = stats(stream)
    assert (day.sessions, day.unique_viewers) == (1, 1)
    # opening 15 + 15 + 15 + (30 s→20 min, capped) 30 + 15 + (→40 min, capped) 30 + 15 + 15
    assert day.total_watch_seconds == pytest.approx(150)
    assert session.watch_seconds == pytest.approx(150)


# --- UTC days --------------------------------------------------------------------------


def test_session_across_midnight_splits_watch_time_by_day_and_counts_on_the_start_day(
    stream, send_batch
):
    # Heartbeats at 23:59:30, 23:59:45, 00:00:00, 00:00:15, 00:00:30.
    send_batch("c-1", around_midnight(-30, -15, 0, 15, 30))
    recompute()

    next_day = DAY + timedelta(days=1)
    start_day, second_day = stats(stream, DAY), stats(stream, next_day)
    # Start day: opening credit 23:59:15–23:59:30 (15 s) + 23:59:30–23:59:45 (15 s)
    # + 23:59:45–00:00:00 (15 s) = 45 s. Next day: 00:00–00:00:15 + 00:00:15–00:00:30 = 30 s.
    assert start_day.total_watch_seconds == pytest.approx(45)
    assert second_day.total_watch_seconds == pytest.approx(30)
    assert (start_day.sessions, start_day.unique_viewers) == (1, 1)
    assert (second_day.sessions, second_day.unique_viewers) == (0, 0)
    assert start_day.avg_watch_seconds == pytest.approx(45)
    assert ViewerSession.objects.get().watch_seconds == pytest.approx(75)
    assert sorted(ViewerSessionDay.objects.values_list("day", "playing_seconds")) == [
        (DAY, pytest.approx(45)),
        (next_day, pytest.approx(30)),
    ]


def test_session_from_23_59_45_to_00_00_30_splits_30_and_30(stream, send_batch):
    # Heartbeats at 23:59:45, 00:00:00, 00:00:15, 00:00:30: the opening credit
    # 23:59:30–23:59:45 (15 s) + 15 s before midnight = 30 s; 2 × 15 s after = 30 s.
    send_batch("c-1", around_midnight(-15, 0, 15, 30))
    recompute()
    assert stats(stream, DAY).total_watch_seconds == pytest.approx(30)
    assert stats(stream, DAY + timedelta(days=1)).total_watch_seconds == pytest.approx(30)
    assert stats(stream, DAY).sessions == 1
    assert stats(stream, DAY + timedelta(days=1)).sessions == 0


def test_opening_credit_before_midnight_falls_on_the_day_before(stream, send_batch):
    # First heartbeat at 00:00:05: its 15 s opening credit runs 23:59:50–00:00:05,
    # 10 s of it on the day before; 5 s + 15 s (00:00:05→00:00:20) on the start day.
    send_batch("c-1", around_midnight(5, 20))
    recompute()
    next_day = DAY + timedelta(days=1)
    assert stats(stream, DAY).total_watch_seconds == pytest.approx(10)
    assert stats(stream, DAY).sessions == 0
    assert stats(stream, next_day).total_watch_seconds == pytest.approx(20)
    assert (stats(stream, next_day).sessions, stats(stream, next_day).unique_viewers) == (1, 1)


def test_late_batch_moving_a_session_start_to_the_day_before_moves_its_count(stream, send_batch):
    next_day = DAY + timedelta(days=1)
    send_batch("c-1", around_midnight(600, 615, 630))  # 00:10:00, 00:10:15, 00:10:30
    recompute()
    assert stats(stream, next_day).sessions == 1
    assert stats(stream, next_day).total_watch_seconds == pytest.approx(15 + 15 + 15)

    send_batch("c-1", around_midnight(-600, -585))  # 23:50:00, 23:50:15 the day before
    recompute()

    assert ViewerSession.objects.count() == 1
    start_day, second_day = stats(stream, DAY), stats(stream, next_day)
    # Start day: opening 23:49:45–23:50:00 15 s + 15 s + (23:50:15 → 00:10, capped) 30 s = 60.
    assert (start_day.sessions, start_day.unique_viewers) == (1, 1)
    assert start_day.total_watch_seconds == pytest.approx(60)
    # Next day: no session starts there any more and the opening credit is gone: 15 + 15.
    assert (second_day.sessions, second_day.unique_viewers) == (0, 0)
    assert second_day.total_watch_seconds == pytest.approx(30)


def test_day_left_without_sessions_or_watch_time_loses_its_figures(stream, send_batch):
    next_day = DAY + timedelta(days=1)
    send_batch("c-1", [ev("play", 10, base=MIDNIGHT)])  # a lone play at 00:00:10
    recompute()
    assert stats(stream, next_day).sessions == 1

    send_batch("c-1", [ev("play", -600, base=MIDNIGHT)])  # 23:50:00 the day before
    recompute()
    # One session from 23:50:00; its only credited span is 23:50:00–23:50:30 (capped).
    assert stats(stream, DAY).sessions == 1
    assert stats(stream, DAY).total_watch_seconds == pytest.approx(30)
    assert not (
        StreamStats.objects.filter(stream=stream, day=next_day)
        .exclude(sessions=0, unique_viewers=0, total_watch_seconds=0)
        .exists()
    )


def test_sessions_are_per_stream(stream, second_stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    send_batch("c-1", heartbeats(0, 15, 30), stream_key="after-party")
    recompute()
    assert ViewerSession.objects.count() == 2
    for each in (stream, second_stream):
        assert (stats(each).sessions, stats(each).total_watch_seconds) == (1, pytest.approx(45))


# --- §6.2 rules ----------------------------------------------------------------------


def test_bot_session_is_stored_but_excluded_from_every_stat(stream, send_batch, settings):
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    send_batch("c-human", heartbeats(0, 15, 30, 45), HTTP_CF_IPCOUNTRY="DE")
    send_batch(
        "c-bot",
        [*heartbeats(0, 15, 30, 45, 60), ev("buffer_start", 61), ev("error", 70)],
        ua=BOT_UA,
        HTTP_CF_IPCOUNTRY="US",
    )
    recompute()

    bot_session = ViewerSession.objects.get(client_id="c-bot")
    assert bot_session.device == "bot"
    assert PlaybackEvent.objects.filter(client_id="c-bot", device="bot").count() == 7
    day = stats(stream)
    assert (day.sessions, day.unique_viewers, day.peak_concurrent_viewers) == (1, 1, 1)
    assert day.total_watch_seconds == pytest.approx(60)
    assert day.buffer_ratio == 0
    assert day.error_rate == 0
    assert day.device_breakdown == {"desktop": 1}
    assert day.top_countries == [{"country": "DE", "viewers": 1}]
    assert day.event_count == 4


def test_stream_watched_only_by_a_bot_has_no_figures(stream, send_batch):
    send_batch("c-bot", heartbeats(0, 15, 30), ua=BOT_UA)
    recompute()
    assert ViewerSession.objects.get().device == "bot"
    assert not StreamStats.objects.filter(stream=stream, sessions__gt=0).exists()
    assert not StreamStats.objects.filter(stream=stream, total_watch_seconds__gt=0).exists()


def test_gap_between_events_is_credited_at_most_30_seconds(stream, send_batch):
    # play at 0, heartbeat 5 minutes later: 300 s apart, 2 × 15 = 30 s credited.
    send_batch("c-1", [ev("play", 0), ev("heartbeat", 300)])
    recompute()
    assert figures(ViewerSession.objects.get()) == pytest.approx((30, 30, 0))
    assert stats(stream).total_watch_seconds == pytest.approx(30)


def test_two_heartbeats_5_minutes_apart_credit_opening_and_30_seconds(stream, send_batch):
    send_batch("c-1", heartbeats(0, 300))
    recompute()
    assert stats(stream).total_watch_seconds == pytest.approx(15 + 30)


def test_buffering_gap_is_capped_too(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("buffer_start", 10), ev("buffer_end", 130)])
    recompute()
    # 10 s playing, then 120 s buffering capped at 30 s.
    assert figures(ViewerSession.objects.get()) == pytest.approx((40, 10, 30))
    assert stats(stream).buffer_ratio == pytest.approx(30 / 40)


def test_pause_stops_the_credit(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("pause", 10), ev("play", 100), ev("heartbeat", 115)])
    recompute()
    # playing 0→10 and 100→115: 10 + 15 = 25 s; nothing for the pause 10→100.
    assert figures(ViewerSession.objects.get()) == pytest.approx((25, 25, 0))
    assert stats(stream).total_watch_seconds == pytest.approx(25)


def test_ended_stops_the_credit(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("ended", 20), ev("heartbeat", 35)])
    recompute()
    # play 0→20 = 20 s; ended 20→35 credits nothing (the heartbeat is not preceded by play).
    assert figures(ViewerSession.objects.get()) == pytest.approx((20, 20, 0))


def test_error_leaves_playing_state_unchanged(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("error", 10), ev("heartbeat", 20)])
    recompute()
    # playing 0→10, still playing after the error 10→20: 20 s.
    assert figures(ViewerSession.objects.get()) == pytest.approx((20, 20, 0))


def test_error_leaves_paused_state_unchanged(stream, send_batch):
    send_batch("c-1", [ev("play", 0), ev("pause", 5), ev("error", 10), ev("heartbeat", 20)])
    recompute()
    # playing 0→5 only; paused 5→10 and still paused after the error 10→20.
    assert figures(ViewerSession.objects.get()) == pytest.approx((5, 5, 0))


def test_error_leaves_buffering_state_unchanged(stream, send_batch):
    send_batch("c-1", [ev("buffer_start", 0), ev("error", 4), ev("buffer_end", 10)])
    recompute()
    # buffering 0→4 and, after the error, 4→10: 10 s buffering, nothing playing.
    assert figures(ViewerSession.objects.get()) == pytest.approx((10, 0, 10))


def test_session_opening_with_an_error_credits_nothing_until_play(stream, send_batch):
    send_batch("c-1", [ev("error", 0), ev("play", 10), ev("heartbeat", 25)])
    recompute()
    assert figures(ViewerSession.objects.get()) == pytest.approx((15, 15, 0))


def test_unique_viewers_are_distinct_clients(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    send_batch("c-1", heartbeats(40 * MINUTE, 40 * MINUTE + 15, 40 * MINUTE + 30))
    recompute()
    day = stats(stream)
    assert (day.sessions, day.unique_viewers) == (2, 1)
    # 45 s + 45 s over one viewer.
    assert day.total_watch_seconds == pytest.approx(90)
    assert day.avg_watch_seconds == pytest.approx(90 / 1)


def test_average_watch_time_is_total_over_unique_viewers(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30, 45))  # 60 s
    send_batch("c-2", heartbeats(0, 15))  # 30 s
    send_batch("c-2", heartbeats(50 * MINUTE, 50 * MINUTE + 15))  # 30 s, second session
    recompute()
    day = stats(stream)
    assert (day.sessions, day.unique_viewers) == (3, 2)
    assert day.total_watch_seconds == pytest.approx(120)
    assert day.avg_watch_seconds == pytest.approx(120 / 2)


def test_top_countries_are_the_top_5_by_unique_viewers(stream, send_batch, settings):
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    viewers = {"DE": 6, "US": 5, "FR": 4, "GB": 3, "NL": 2, "IT": 1, "ES": 1}
    for country, count in viewers.items():
        for n in range(count):
            send_batch(f"c-{country}-{n}", heartbeats(0, 15), HTTP_CF_IPCOUNTRY=country)
    # One Italian viewer with three sessions: three sessions, still one viewer.
    for start in (40 * MINUTE, 80 * MINUTE):
        send_batch("c-IT-0", heartbeats(start, start + 15), HTTP_CF_IPCOUNTRY="IT")
    recompute()

    day = stats(stream)
    assert [(c["country"], c["viewers"]) for c in day.top_countries] == [
        ("DE", 6),
        ("US", 5),
        ("FR", 4),
        ("GB", 3),
        ("NL", 2),
    ]
    assert (day.unique_viewers, day.sessions) == (22, 24)


def test_device_breakdown_counts_unique_viewers_per_device(stream, send_batch):
    send_batch("c-desk-1", heartbeats(0, 15), ua=DESKTOP_UA)
    send_batch("c-desk-1", heartbeats(40 * MINUTE, 40 * MINUTE + 15), ua=DESKTOP_UA)
    send_batch("c-desk-2", heartbeats(0, 15), ua=DESKTOP_UA)
    send_batch("c-phone", heartbeats(0, 15), ua=MOBILE_UA)
    send_batch("c-tablet", heartbeats(0, 15), ua=TABLET_UA)
    recompute()
    assert stats(stream).device_breakdown == {"desktop": 2, "mobile": 1, "tablet": 1}
    assert stats(stream).sessions == 5


# --- runs of the aggregator -----------------------------------------------------------


def _population(send_batch) -> None:
    send_batch("c-1", RICH_SESSION)
    send_batch("c-2", heartbeats(30, 45, 60, 75))
    send_batch("c-2", heartbeats(45 * MINUTE, 45 * MINUTE + 15))
    send_batch("c-3", around_midnight(-30, -15, 0, 15), ua=MOBILE_UA)
    send_batch("c-bot", heartbeats(0, 15, 30), ua=BOT_UA)


def _snapshot() -> tuple[list, list, list]:
    stream_stats = list(StreamStats.objects.order_by("stream_id", "day").values())
    sessions = list(ViewerSession.objects.order_by("id").values())
    session_days = list(
        ViewerSessionDay.objects.order_by("session_id", "day").values(
            "session_id", "stream_id", "day", "playing_seconds", "buffer_seconds", "event_count"
        )
    )
    return stream_stats, sessions, session_days


def test_running_the_aggregator_twice_or_in_full_gives_identical_rows(stream, send_batch):
    _population(send_batch)
    now = datetime.now(UTC)
    recompute(now=now)
    once = _snapshot()
    assert len(once[0]) == 2  # the start day and the day after midnight

    recompute(now=now)
    assert _snapshot() == once
    summary = recompute(full=True, now=now)
    assert summary.pairs == 4
    assert _snapshot() == once


def test_a_run_with_nothing_new_changes_nothing(stream, send_batch):
    _population(send_batch)
    first = datetime.now(UTC)
    recompute(now=first)
    before = _snapshot()

    summary = recompute(now=first + timedelta(hours=1))
    assert (summary.pairs, summary.sessions, summary.stream_days) == (0, 0, 0)
    assert _snapshot() == before
    assert {s.last_calculated_at for s in StreamStats.objects.all()} == {first}


def test_last_calculated_at_is_stamped(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15))
    before = datetime.now(UTC)
    recompute()
    assert before <= stats(stream).last_calculated_at <= datetime.now(UTC)

    send_batch("c-2", heartbeats(0, 15))
    later = datetime.now(UTC) + timedelta(minutes=5)
    recompute(now=later)
    assert stats(stream).last_calculated_at == later


def test_session_is_finalized_31_minutes_after_its_last_event(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    last = T0 + timedelta(seconds=30)
    recompute(now=last + timedelta(minutes=31))
    session = ViewerSession.objects.get()
    assert session.finalized
    assert session.ended_at == last


def test_session_is_open_29_minutes_after_its_last_event(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    last = T0 + timedelta(seconds=30)
    recompute(now=last + timedelta(minutes=29))
    session = ViewerSession.objects.get()
    assert not session.finalized
    assert session.ended_at is None


def test_open_session_is_finalized_by_a_later_run_with_nothing_new(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 30))
    last = T0 + timedelta(seconds=30)
    recompute(now=last + timedelta(minutes=10))
    assert not ViewerSession.objects.get().finalized

    summary = recompute(now=last + timedelta(minutes=31))
    assert summary.finalized == 1
    session = ViewerSession.objects.get()
    assert session.finalized
    assert session.ended_at == last
    assert figures(session) == pytest.approx((45, 45, 0))


# --- provisional figures at ingestion ---------------------------------------------------


def test_provisional_figures_equal_the_aggregated_ones_for_in_order_delivery(stream, send_batch):
    send_batch("c-1", RICH_SESSION[:3])
    send_batch("c-1", RICH_SESSION[3:8])
    send_batch("c-1", RICH_SESSION[8:])
    send_batch("c-2", heartbeats(0, 15, 30, 45 + 31 * MINUTE, 60 + 31 * MINUTE))
    provisional = session_rows()
    assert ViewerSessionDay.objects.count() == 0
    assert figures(ViewerSession.objects.get(client_id="c-1")) == pytest.approx((100, 94, 6))

    recompute()
    assert session_rows() == provisional


def test_aggregated_player_state_is_the_state_after_the_last_event(stream, send_batch):
    # §6.2: pause → paused, ended → ended. Ingestion keeps these; the rebuild must too.
    send_batch("c-pause", [ev("play", 0), ev("pause", 10)])
    send_batch("c-ended", [ev("play", 0), ev("ended", 10)])
    send_batch("c-buffering", [ev("play", 0), ev("buffer_start", 10), ev("error", 11)])
    provisional = dict(ViewerSession.objects.values_list("client_id", "player_state"))
    assert provisional == {"c-pause": "paused", "c-ended": "ended", "c-buffering": "buffering"}

    recompute()
    assert dict(ViewerSession.objects.values_list("client_id", "player_state")) == provisional


EVENT_TYPES = ["play", "pause", "heartbeat", "ended", "error", "buffer_start", "buffer_end"]


def _random_run(rng: random.Random) -> list[dict]:
    """A random in-order run: gaps of 0–200 s in half seconds, rarely one at or past the
    session timeout (1800, 1801 or 2400 s) so that splits are exercised too."""
    t, events = 0.0, []
    for i in range(rng.randint(1, 40)):
        if i:
            if rng.random() < 0.05:
                t += rng.choice([1800, 1801, 2400])
            else:
                t += rng.randint(0, 400) / 2
        events.append(ev(rng.choice(EVENT_TYPES), t))
    return events


@pytest.mark.parametrize("seed", range(30))
def test_provisional_session_figures_match_the_aggregated_ones(stream, send_batch, seed):
    """The Python rules (session_rules.py, at ingestion) and the SQL (aggregation.py) agree."""
    rng = random.Random(seed)
    events = _random_run(rng)
    cuts = sorted(rng.sample(range(1, len(events)), k=min(len(events) - 1, rng.randint(0, 5))))
    for lo, hi in zip([0, *cuts], [*cuts, len(events)], strict=True):
        send_batch(f"c-{seed}", events[lo:hi])
    provisional = session_rows()

    recompute()
    assert session_rows() == provisional, [e["type"] for e in events]
    total = sum(row[4] for row in provisional)
    assert sum(StreamStats.objects.values_list("total_watch_seconds", flat=True)) == (
        pytest.approx(total)
    )
