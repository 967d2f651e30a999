"""SPEC §9.3 request figures, with the numbers written out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.broadcast.request_figures import request_figures
from tests.broadcast.staff_support import T0, make_station, request, song

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=2)


def test_shares_add_up_to_one_with_one_expired(settings):
    settings.BROADCAST_REQUEST_EXPIRY_HOURS = 24
    station = make_station()
    tune = song(station, "1", "Nightcall")
    request(station, "r1", T0, "played", played_at=T0 + timedelta(seconds=600), song=tune)
    request(station, "r2", T0, "played", played_at=T0 + timedelta(seconds=1200), song=tune)
    request(station, "r3", T0, "played", played_at=T0 + timedelta(seconds=3000), song=tune)
    request(station, "r4", T0, "denied", song=tune)
    request(station, "r5", T0, "approved", song=tune)  # 48 h old, never played: expired
    request(station, "r6", NOW - timedelta(hours=1), "pending", song=tune)  # still pending
    figures = request_figures(station=station, period="all", now=NOW)
    assert {
        k: figures[k] for k in ("total", "pending", "approved", "denied", "expired", "played")
    } == {
        "total": 6,
        "pending": 1,
        "approved": 0,
        "denied": 1,
        "expired": 1,
        "played": 3,
    }
    assert figures["shares"] == {"approved": 3 / 5, "denied": 1 / 5, "expired": 1 / 5}
    assert sum(figures["shares"].values()) == pytest.approx(1.0)
    # played_at − requested_at: 600, 1200, 3000 s → median 1200, mean 1600.
    assert figures["response_seconds"] == {"median": 1200.0, "mean": 1600.0}


def test_by_local_hour_top_songs_and_requesters():
    station = make_station(tz="Europe/Berlin")
    a, b = song(station, "1", "Alpha"), song(station, "2", "Bravo")
    request(station, "r1", T0, "pending", song=b, requester="h1")  # 10:00 UTC = 12:00 CEST
    request(station, "r2", T0, "pending", song=b, requester="h1")
    request(station, "r3", T0, "pending", song=a, requester="h2")
    figures = request_figures(station=station, period="all", now=T0 + timedelta(hours=1))
    assert len(figures["by_hour"]) == 24
    assert figures["by_hour"][12] == {"hour": 12, "count": 3}
    assert figures["top_songs"] == [
        {"song_id": "2", "title": "Bravo", "count": 2},
        {"song_id": "1", "title": "Alpha", "count": 1},
    ]
    assert figures["top_requesters"] == [
        {"requester": "h1", "count": 2},
        {"requester": "h2", "count": 1},
    ]
    assert figures["shares"] == {"approved": None, "denied": None, "expired": None}
    assert figures["response_seconds"] == {"median": None, "mean": None}


def test_shares_are_0_6_0_2_0_2_with_the_pending_ones_left_out(settings):
    settings.BROADCAST_REQUEST_EXPIRY_HOURS = 24
    station = make_station()
    tune = song(station, "1", "Nightcall")
    fresh = NOW - timedelta(hours=1)
    for i in range(3):  # played
        request(
            station, f"p{i}", fresh, "played", played_at=fresh + timedelta(minutes=5), song=tune
        )
    for i in range(3):  # approved, not played yet, within the 24 h
        request(station, f"a{i}", fresh, "approved", song=tune)
    for i in range(2):
        request(station, f"d{i}", fresh, "denied", song=tune)
    request(station, "e1", T0, "approved", song=tune)  # 48 h old, never played: expired
    request(station, "e2", T0, "pending", song=tune)  # 48 h old pending: expired too
    for i in range(4):  # still pending: in no share
        request(station, f"w{i}", fresh, "pending", song=tune)

    figures = request_figures(station=station, period="all", now=NOW)

    assert (figures["total"], figures["pending"], figures["expired"]) == (14, 4, 2)
    assert (figures["approved"], figures["played"], figures["denied"]) == (3, 3, 2)
    assert figures["shares"] == {"approved": 0.6, "denied": 0.2, "expired": 0.2}


def test_a_request_played_90_seconds_after_it_was_made_counts_90_seconds():
    station = make_station()
    tune = song(station, "1", "Nightcall")
    request(station, "r1", T0, "played", played_at=T0 + timedelta(seconds=90), song=tune)
    request(station, "r2", T0, "denied", song=tune)  # not played: no response time
    figures = request_figures(station=station, period="all", now=NOW)
    assert figures["response_seconds"] == {"median": 90.0, "mean": 90.0}
