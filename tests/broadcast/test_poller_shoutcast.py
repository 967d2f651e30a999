"""The listener poller against Shoutcast v2's documented `stats?sid=N&json=1` answer
(no free server exists: a local stand-in answers the documented shape)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from streams.broadcast.models import ListenerHour, ListenerSnapshot, Play
from streams.broadcast.poller import listeners_poll
from streams.broadcast.selectors import listeners_daily

from .poller_support import *  # noqa: F403 - the fixtures
from .poller_support import at, encoder_add


def shoutcast_up(listeners: int, title: str, *, peak: int = 40) -> dict:
    return {
        "currentlisteners": listeners,
        "peaklisteners": peak,
        "maxlisteners": 500,
        "uniquelisteners": listeners,
        "averagetime": 1200,
        "servergenre": "Bollywood",
        "serverurl": "https://radio.example",
        "servertitle": "Radio Example",
        "songtitle": title,
        "streamhits": 900,
        "streamstatus": 1,
        "backupstatus": 0,
        "streamlisted": 1,
        "streamlistederror": 0,
        "streampath": "/stream/1/",
        "streamuptime": 3600,
        "bitrate": "128",
        "samplerate": "44100",
        "content": "audio/mpeg",
        "version": "2.6.1.777 (posix(linux x64))",
    }


SHOUTCAST_NO_SOURCE = {
    "currentlisteners": 0,
    "peaklisteners": 40,
    "maxlisteners": 500,
    "uniquelisteners": 0,
    "averagetime": 0,
    "servergenre": "",
    "servertitle": "",
    "songtitle": "",
    "streamhits": 900,
    "streamstatus": 0,
    "backupstatus": 0,
    "streamlisted": 0,
    "streampath": "/stream/1/",
    "bitrate": "",
    "content": "",
    "version": "2.6.1.777 (posix(linux x64))",
}


def test_shoutcast_listeners_peak_string_bitrate_and_title_become_a_snapshot(station, stand_in):
    server = stand_in()
    server.routes["/stats"] = (200, shoutcast_up(17, "Lata Mangeshkar - Lag Jaa Gale"), 0)
    encoder = encoder_add(station, provider="shoutcast", external_id="1", url=server.url)

    listeners_poll(now=at(0))

    snapshot = ListenerSnapshot.objects.get(encoder=encoder)
    assert (snapshot.source_up, snapshot.listeners, snapshot.server_peak) == (True, 17, 40)
    assert snapshot.bitrate == 128  # "128" on the wire
    assert snapshot.title == "Lata Mangeshkar - Lag Jaa Gale"
    assert server.requests == [("/stats", {"sid": ["1"], "json": ["1"]})]


def test_shoutcast_without_a_source_is_a_down_snapshot_and_ends_the_play(station, stand_in):
    server = stand_in()
    server.routes["/stats"] = (200, shoutcast_up(5, "Artist - First"), 0)
    encoder = encoder_add(station, provider="shoutcast", external_id="1", url=server.url)
    listeners_poll(now=at(0))
    server.routes["/stats"] = (200, SHOUTCAST_NO_SOURCE, 0)  # no streamuptime, status 0

    listeners_poll(now=at(30))

    latest = ListenerSnapshot.objects.filter(encoder=encoder).order_by("-taken_at").first()
    assert (latest.source_up, latest.listeners, latest.bitrate) == (False, 0, None)
    play = Play.objects.get()
    assert play.source == "shoutcast" and 29_000 < play.played_ms < 31_000


def test_shoutcast_title_changes_become_plays_with_the_station_total_at_start(station, stand_in):
    server = stand_in()
    server.routes["/stats"] = (200, shoutcast_up(5, "Artist - First"), 0)
    encoder_add(station, provider="shoutcast", external_id="1", url=server.url)
    encoder_add(station, provider="shoutcast", external_id="2", url=server.url)

    listeners_poll(now=at(0))  # two encoders (sids) of one station, 5 listeners each
    server.routes["/stats"] = (200, shoutcast_up(8, "Artist - Second"), 0)
    listeners_poll(now=at(45))

    plays = list(Play.objects.order_by("started_at", "encoder_id").select_related("song"))
    assert [(p.song.title, p.listeners_at_start, p.played_ms is None) for p in plays] == [
        ("First", 10, False),
        ("First", 10, False),
        ("Second", 16, True),
        ("Second", 16, True),
    ]
    assert all(44_000 < p.played_ms < 46_000 for p in plays[:2])
    # Both sids name the same song: one Song row per (station, title).
    assert len({p.song_id for p in plays}) == 2
    assert server.count("/stats") == 4  # one request per sid per round


def test_poll_rounds_roll_up_the_hours_that_settled(station, stand_in):
    """The poller rolls up at most two settled hours a round (from local midnight of the
    first snapshot); the day it answers from them is the day the raw snapshots give."""
    server = stand_in()
    server.routes["/stats"] = (200, shoutcast_up(17, "Lata Mangeshkar - Lag Jaa Gale"), 0)
    encoder_add(station, provider="shoutcast", external_id="1", url=server.url)
    start = datetime(2026, 6, 1, 9, 58, tzinfo=UTC)  # the station's timezone is UTC
    rounds = [start + timedelta(seconds=30 * i) for i in range(10)]  # to 10:02:30

    for n, now in enumerate(rounds):
        listeners_poll(now=now)
        if n == 0:  # 00:00–02:00, nothing polled in them
            assert ListenerHour.objects.filter(encoder__isnull=True).count() == 2

    hours = ListenerHour.objects.filter(encoder__isnull=True).order_by("start")
    assert [h.start.hour for h in hours] == list(range(10))  # 09:00–10:00 once 10:02 came
    nine = ListenerHour.objects.get(encoder__isnull=False, start=start.replace(minute=0))
    assert nine.peak == 17 and nine.observed_seconds == pytest.approx(120.0, abs=1.0)
    day = date(2026, 6, 1)
    now = rounds[-1] + timedelta(seconds=30)
    from_rollup = listeners_daily(station=station, date_from=day, date_to=day, now=now)
    ListenerHour.objects.all().delete()
    assert listeners_daily(station=station, date_from=day, date_to=day, now=now) == from_rollup
