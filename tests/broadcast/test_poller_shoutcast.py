"""The listener poller against Shoutcast v2's documented `stats?sid=N&json=1` answer
(no free server exists: a local stand-in answers the documented shape)."""

from __future__ import annotations

from streams.broadcast.models import ListenerSnapshot, Play
from streams.broadcast.poller import listeners_poll

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
