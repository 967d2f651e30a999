"""SPEC §9.3 listener, listening and uptime figures, with the numbers written out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from streams.broadcast.models import ListenerSession, ListenerSnapshot, Station
from streams.broadcast.selectors import (
    listeners_at_start,
    listeners_daily,
    listeners_now,
    listeners_points,
    listeners_window,
    listening_window,
    local_date,
    local_day_bounds,
    local_period_start,
    uptime,
)
from streams.models import Organizer, Stream, StreamProvider

T0 = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=2)  # "now" for figures of the past


def s(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def make_station(tz: str = "Europe/Berlin", key: str = "night-radio") -> Station:
    organizer, _ = Organizer.objects.get_or_create(slug="wavelength", defaults={"name": "WL"})
    stream = Stream.objects.create(key=key, title=key, organizer=organizer, kind="audio")
    return Station.objects.create(stream=stream, timezone=tz, plays_from_poller=False)


def encoder(station: Station, mount: str) -> StreamProvider:
    return StreamProvider.objects.create(
        stream=station.stream, provider="icecast", external_id=mount, config={"url": "http://x"}
    )


@pytest.fixture
def station(db) -> Station:
    return make_station()


@pytest.fixture
def mp3(station) -> StreamProvider:
    return encoder(station, "/live.mp3")


@pytest.fixture
def aac(station) -> StreamProvider:
    return encoder(station, "/live.aac")


def snap(enc, at: datetime, listeners: int, *, up: bool = True, round_at: datetime | None = None):
    return ListenerSnapshot.objects.create(
        encoder=enc, taken_at=at, round_at=round_at or at, listeners=listeners, source_up=up
    )


def session(enc, listener: str, start: datetime, seconds: float) -> ListenerSession:
    return ListenerSession.objects.create(
        encoder=enc,
        listener=listener,
        started_at=start,
        last_seen_at=start + timedelta(seconds=seconds),
    )


# --- Listeners --------------------------------------------------------------------------


def test_average_is_time_weighted_over_observed_time_not_a_mean_of_samples(station, mp3):
    # Every 30 s: 3, 3, 1, 1, and the poll that ends the window.
    for seconds, count in [(0, 3), (30, 3), (60, 1), (90, 1), (120, 1)]:
        snap(mp3, s(seconds), count)

    figures = listeners_window(station=station, encoder=mp3, start=T0, end=s(120), now=LATER)

    # 3 listeners for 60 s, then 1 for 60 s: (3 × 60 + 1 × 60) / 120 = 2.0 (the mean of
    # the five samples would be 1.8).
    assert figures.average == pytest.approx(2.0)
    assert figures.peak == 3
    assert figures.observed_seconds == pytest.approx(120.0)


def test_a_90_second_polling_gap_leaves_30_seconds_unobserved(station, mp3):
    snap(mp3, s(0), 4)
    snap(mp3, s(90), 2)

    figures = listeners_window(station=station, encoder=mp3, start=T0, end=s(150), now=LATER)

    # 4 holds 60 s (not 90), 30 s unobserved, 2 holds 60 s: 120 s observed.
    assert figures.observed_seconds == pytest.approx(120.0)
    assert figures.average == pytest.approx((4 * 60 + 2 * 60) / 120)  # 3.0


def test_the_last_snapshot_holds_60_seconds_at_most_and_never_past_now(station, mp3):
    snap(mp3, s(0), 5)

    assert listeners_window(
        station=station, encoder=mp3, start=T0, end=s(3600), now=LATER
    ).observed_seconds == pytest.approx(60.0)
    assert listeners_window(
        station=station, encoder=mp3, start=T0, end=s(3600), now=s(20)
    ).observed_seconds == pytest.approx(20.0)


def test_a_snapshot_before_the_window_holds_into_it(station, mp3):
    snap(mp3, s(-30), 8)
    snap(mp3, s(30), 2)

    figures = listeners_window(station=station, encoder=mp3, start=T0, end=s(60), now=LATER)

    # 8 from the start to 30 s, then 2: (8 × 30 + 2 × 30) / 60 = 5.0; the peak is taken
    # from snapshots inside the window only.
    assert figures.average == pytest.approx(5.0)
    assert figures.peak == 2


def test_now_is_the_latest_snapshot_only_while_under_60_seconds_old(station, mp3):
    snap(mp3, s(0), 7)

    assert listeners_now(station=station, encoder=mp3, now=s(59)) == 7
    assert listeners_now(station=station, encoder=mp3, now=s(60)) is None
    assert listeners_window(station=station, encoder=mp3, start=T0, end=s(60), now=s(30)).now == 7


def test_nothing_observed_gives_no_average_and_no_peak(station, mp3):
    figures = listeners_window(station=station, encoder=mp3, start=T0, end=s(600), now=LATER)
    assert (figures.peak, figures.average, figures.now, figures.observed_seconds) == (
        None,
        None,
        None,
        0.0,
    )


def test_station_totals_add_the_encoders_of_the_same_poll_round(station, mp3, aac):
    # Round at 0 s: 5 + 7 = 12; round at 30 s: 6 + 8 = 14 (each encoder answers a moment
    # after the round starts).
    snap(mp3, s(1), 5, round_at=s(0))
    snap(aac, s(2), 7, round_at=s(0))
    snap(mp3, s(31), 6, round_at=s(30))
    snap(aac, s(32), 8, round_at=s(30))

    figures = listeners_window(station=station, start=T0, end=s(60), now=s(45))

    assert figures.peak == 14
    assert figures.average == pytest.approx((12 * 30 + 14 * 15) / 45)  # held until now
    assert figures.now == 14
    assert listeners_points(station=station, start=T0, end=s(60)) == [(s(0), 12), (s(30), 14)]
    assert listeners_points(station=station, encoder=aac, start=T0, end=s(60)) == [
        (s(2), 7),
        (s(32), 8),
    ]


def test_listeners_at_start_is_the_latest_round_at_or_before_under_60_seconds_old(
    station, mp3, aac
):
    snap(mp3, s(1), 5, round_at=s(0))
    snap(aac, s(2), 7, round_at=s(0))
    snap(mp3, s(31), 6, round_at=s(30))
    snap(aac, s(32), 8, round_at=s(30))

    assert listeners_at_start(station=station, at=s(-1)) is None
    assert listeners_at_start(station=station, at=s(0)) == 12
    assert listeners_at_start(station=station, at=s(29)) == 12
    assert listeners_at_start(station=station, at=s(30)) == 14
    assert listeners_at_start(station=station, at=s(89)) == 14
    assert listeners_at_start(station=station, at=s(90)) is None


# --- Listening ---------------------------------------------------------------------------


def test_sessions_of_59_and_61_seconds_give_tlh_61_seconds_atsl_1_minute_cume_1(station, mp3):
    session(mp3, "a" * 64, s(0), 59)
    session(mp3, "b" * 64, s(100), 61)

    figures = listening_window(station=station, start=T0, end=s(3600))

    assert figures.tlh_hours == pytest.approx(61 / 3600)
    assert figures.atsl_minutes == pytest.approx(61 / 60)
    assert round(figures.atsl_minutes, 1) == 1.0
    assert figures.cume == 1
    assert figures.sessions == 1


def test_cume_counts_a_listener_once_across_encoders(station, mp3, aac):
    session(mp3, "a" * 64, s(0), 600)
    session(aac, "a" * 64, s(900), 300)
    session(aac, "b" * 64, s(900), 120)

    figures = listening_window(station=station, start=T0, end=s(3600))

    assert figures.cume == 2
    assert figures.tlh_hours == pytest.approx((600 + 300 + 120) / 3600)
    assert figures.atsl_minutes == pytest.approx((600 + 300 + 120) / 60 / 3)


# --- Station-local days ------------------------------------------------------------------


def test_a_kolkata_station_puts_19_00_utc_on_the_next_local_day(db):
    kolkata = make_station("Asia/Kolkata", key="mumbai-fm")

    assert local_date(station=kolkata, at=datetime(2026, 6, 1, 19, 0, tzinfo=UTC)) == date(
        2026, 6, 2
    )
    assert local_day_bounds(station=kolkata, day=date(2026, 6, 2)) == (
        datetime(2026, 6, 1, 18, 30, tzinfo=UTC),
        datetime(2026, 6, 2, 18, 30, tzinfo=UTC),
    )


def test_a_session_is_split_across_local_days_by_where_its_time_fell(db):
    kolkata = make_station("Asia/Kolkata", key="mumbai-fm")
    enc = encoder(kolkata, "/live.mp3")
    # 18:20–18:40 UTC = 23:50–00:10 in Kolkata: 10 minutes on each local day.
    session(enc, "a" * 64, datetime(2026, 6, 1, 18, 20, tzinfo=UTC), 20 * 60)

    rows = listeners_daily(
        station=kolkata, date_from=date(2026, 6, 1), date_to=date(2026, 6, 2), now=LATER
    )

    station_rows = {row.date: row for row in rows if row.encoder is None}
    assert station_rows[date(2026, 6, 1)].tlh_hours == pytest.approx(10 / 60)
    assert station_rows[date(2026, 6, 2)].tlh_hours == pytest.approx(10 / 60)
    assert station_rows[date(2026, 6, 1)].cume == 1
    assert station_rows[date(2026, 6, 1)].atsl_minutes == pytest.approx(10.0)


def test_the_autumn_dst_day_in_berlin_has_25_local_hours(station):
    start, end = local_day_bounds(station=station, day=date(2026, 10, 25))
    assert (start, end) == (
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),
    )
    assert end - start == timedelta(hours=25)


def test_the_spring_dst_day_in_berlin_has_23_local_hours(station):
    start, end = local_day_bounds(station=station, day=date(2026, 3, 29))
    assert end - start == timedelta(hours=23)


def test_a_listener_all_day_on_the_autumn_dst_day_is_25_listening_hours(station, mp3):
    start, end = local_day_bounds(station=station, day=date(2026, 10, 25))
    ListenerSnapshot.objects.bulk_create(
        ListenerSnapshot(
            encoder=mp3,
            taken_at=start + timedelta(seconds=30 * i),
            round_at=start + timedelta(seconds=30 * i),
            listeners=2 + i % 2,
            source_up=True,
        )
        for i in range(25 * 120)
    )
    session(mp3, "a" * 64, start, 25 * 3600)

    rows = listeners_daily(
        station=station,
        date_from=date(2026, 10, 25),
        date_to=date(2026, 10, 25),
        now=LATER.replace(month=12),
    )

    assert [(r.date, r.encoder) for r in rows] == [
        (date(2026, 10, 25), "/live.mp3"),
        (date(2026, 10, 25), None),
    ]
    mp3_row, station_row = rows
    assert mp3_row.tlh_hours == pytest.approx(25.0)
    assert mp3_row.atsl_minutes == pytest.approx(25 * 60)
    assert mp3_row.peak == 3
    assert mp3_row.average == pytest.approx(2.5)
    assert (station_row.peak, station_row.cume) == (3, 1)
    assert station_row.average == pytest.approx(2.5)


def test_daily_rows_per_encoder_and_station_total(station, mp3, aac):
    snap(mp3, s(1), 5, round_at=s(0))
    snap(aac, s(2), 7, round_at=s(0))
    session(mp3, "a" * 64, s(0), 120)
    session(aac, "b" * 64, s(0), 240)

    day = local_date(station=station, at=T0)
    rows = listeners_daily(station=station, date_from=day, date_to=day, now=LATER)

    by_encoder = {row.encoder: row for row in rows}
    assert set(by_encoder) == {"/live.mp3", "/live.aac", None}
    assert (by_encoder["/live.mp3"].peak, by_encoder["/live.aac"].peak, by_encoder[None].peak) == (
        5,
        7,
        12,
    )
    assert by_encoder["/live.mp3"].tlh_hours == pytest.approx(120 / 3600)
    assert by_encoder[None].tlh_hours == pytest.approx(360 / 3600)
    assert by_encoder[None].atsl_minutes == pytest.approx(3.0)
    assert by_encoder[None].cume == 2


def test_a_7_day_period_is_the_last_7_local_days_including_today(station):
    now = datetime(2026, 6, 10, 23, 30, tzinfo=UTC)  # already 11 June in Berlin
    assert local_period_start(station=station, period="7d", now=now) == datetime(
        2026, 6, 4, 22, 0, tzinfo=UTC
    )
    assert local_period_start(station=station, period="all", now=now) is None


# --- Uptime ------------------------------------------------------------------------------


def test_uptime_with_one_disconnection(station, mp3):
    # Every 30 s for 10 minutes: up 0–270 s, down 300–420 s, up again 450–570 s.
    for i in range(20):
        snap(mp3, s(30 * i), 3, up=not 300 <= 30 * i <= 420)

    (figures,) = uptime(station=station, start=T0, end=s(600), now=LATER)

    assert figures.encoder == "/live.mp3"
    assert figures.observed_seconds == pytest.approx(600.0)
    assert figures.uptime_pct == pytest.approx(75.0)  # 450 s up of 600 s observed
    assert figures.disconnections == 1
    assert figures.downtime_seconds == pytest.approx(150.0)  # 300 s → the next up at 450 s


def test_a_disconnection_still_down_at_the_end_counts_downtime_to_the_end(station, mp3, aac):
    snap(mp3, s(0), 3, up=True)
    snap(mp3, s(30), 0, up=False)
    snap(mp3, s(60), 0, up=False)

    by_encoder = {u.encoder: u for u in uptime(station=station, start=T0, end=s(90), now=LATER)}

    assert by_encoder["/live.mp3"].disconnections == 1
    assert by_encoder["/live.mp3"].downtime_seconds == pytest.approx(60.0)
    assert by_encoder["/live.mp3"].uptime_pct == pytest.approx(100 * 30 / 90)
    assert by_encoder["/live.aac"].uptime_pct is None  # never observed
