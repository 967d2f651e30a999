"""The listener poller against a real Icecast 2.4 (SPEC §9.2): real ffmpeg sources, real
listener connections, titles set through Icecast's admin API."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from streams.broadcast.models import (
    Alert,
    BroadcastLogEntry,
    ListenerSession,
    ListenerSnapshot,
    Play,
    Song,
)
from streams.broadcast.poller import listeners_poll, song_external_id_from_title

from .poller_support import *  # noqa: F403 - the fixtures
from .poller_support import at, encoder_add

MS = timedelta(milliseconds=1)


def snapshots_of(encoder):
    return list(ListenerSnapshot.objects.filter(encoder=encoder).order_by("taken_at"))


def events_of(station, *names):
    return list(
        BroadcastLogEntry.objects.filter(station=station, event__in=names)
        .order_by("timestamp", "id")
        .values_list("event", flat=True)
    )


def test_listener_counts_follow_real_connections_0_then_3_then_0(icecast, station):
    live = encoder_add(station, provider="icecast", external_id="/live.mp3", url=icecast.base_url)
    icecast.source_start("/live.mp3")

    listeners_poll(now=at(0))
    icecast.listeners_open("/live.mp3", 3)
    listeners_poll(now=at(30))
    icecast.listeners_close()
    icecast.listeners_await("/live.mp3", 0)
    summary = listeners_poll(now=at(60))

    assert [s.listeners for s in snapshots_of(live)] == [0, 3, 0]
    assert [s.source_up for s in snapshots_of(live)] == [True, True, True]
    assert snapshots_of(live)[1].server_peak == 3
    assert summary.encoders == 1 and summary.sources_up == 1 and summary.failures == 0


def test_one_source_object_and_many_sources_array_both_give_every_mount(icecast, station):
    live = encoder_add(station, provider="icecast", external_id="/live.mp3", url=icecast.base_url)
    other = encoder_add(station, provider="icecast", external_id="/other.mp3", url=icecast.base_url)
    icecast.source_start("/live.mp3")
    assert isinstance(icecast.status()["icestats"]["source"], dict)  # one source: an object
    icecast.listeners_open("/live.mp3", 2)

    listeners_poll(now=at(0))
    icecast.source_start("/other.mp3")
    assert isinstance(icecast.status()["icestats"]["source"], list)  # many: an array
    listeners_poll(now=at(30))

    assert [(s.source_up, s.listeners) for s in snapshots_of(live)] == [(True, 2), (True, 2)]
    assert [(s.source_up, s.listeners) for s in snapshots_of(other)] == [(False, 0), (True, 0)]
    # One round, one instant: the encoders of a round share round_at.
    rounds = ListenerSnapshot.objects.values("round_at").annotate(n=models.Count("id"))
    assert sorted((r["round_at"], r["n"]) for r in rounds) == [(at(0), 2), (at(30), 2)]


def test_a_mount_vanishing_opens_stream_down_after_more_than_30_s_and_resolves_when_back(
    icecast, station
):
    live = encoder_add(station, provider="icecast", external_id="/live.mp3", url=icecast.base_url)
    # No source at all: icestats has no `source` key.
    assert "source" not in icecast.status()["icestats"]
    listeners_poll(now=at(0))
    icecast.source_start("/live.mp3")
    listeners_poll(now=at(30))
    icecast.source_stop("/live.mp3")

    listeners_poll(now=at(60))  # down from here
    listeners_poll(now=at(90))  # down for exactly 30 s: not yet
    assert not Alert.objects.exists()
    summary = listeners_poll(now=at(91))  # down for more than 30 s
    assert summary.alerts_opened == 1
    alert = Alert.objects.get()
    assert (alert.kind, alert.subject, alert.opened_at, alert.resolved_at) == (
        "stream_down",
        "/live.mp3",
        at(91),
        None,
    )
    listeners_poll(now=at(120))  # still down: still the one alert
    assert Alert.objects.count() == 1

    icecast.source_start("/live.mp3")
    summary = listeners_poll(now=at(150))
    alert.refresh_from_db()
    assert summary.alerts_resolved == 1 and alert.resolved_at == at(150)
    assert [s.source_up for s in snapshots_of(live)] == [
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    ]
    assert events_of(station, "source_up", "source_down", "alert_stream_down") == [
        "source_up",
        "source_down",
        "alert_stream_down",
        "source_up",
    ]


def test_a_mount_never_seen_up_opens_stream_down_too(icecast, station):
    encoder_add(station, provider="icecast", external_id="/never.mp3", url=icecast.base_url)
    listeners_poll(now=at(0))
    listeners_poll(now=at(30))
    assert not Alert.objects.exists()
    listeners_poll(now=at(31))
    assert Alert.objects.get().subject == "/never.mp3"


def test_listclients_gives_listener_sessions_with_hashed_identities_and_no_ip(icecast, station):
    live = encoder_add(
        station, provider="icecast", external_id="/live.mp3", url=icecast.base_url, admin=True
    )
    icecast.source_start("/live.mp3")
    icecast.listeners_open("/live.mp3", 2, user_agent="VLC")

    first = listeners_poll(now=at(0))
    sessions = list(ListenerSession.objects.filter(encoder=live).order_by("listener"))
    assert first.sessions_started == 2 and len(sessions) == 2
    assert all(
        len(s.listener) == 64 and s.last_seen_at == sessions[0].last_seen_at for s in sessions
    )
    assert len({s.listener for s in sessions}) == 2  # IP|User-Agent differ by the agent
    # started_at comes from Icecast's connected-for seconds: at or before the first sight.
    assert all(s.started_at <= s.last_seen_at for s in sessions)

    # Seen again 30 s later (within 60 s): the same sessions, extended.
    second = listeners_poll(now=at(30))
    assert second.sessions_started == 0
    extended = list(ListenerSession.objects.filter(encoder=live).order_by("listener"))
    assert [s.pk for s in extended] == [s.pk for s in sessions]
    assert all(s.last_seen_at >= at(30) for s in extended)
    assert [s.started_at for s in extended] == [s.started_at for s in sessions]

    # Seen again only 61 s after the last sighting: new sessions, after the old ones.
    third = listeners_poll(now=at(30 + 61 + 1))
    assert third.sessions_started == 2
    assert ListenerSession.objects.filter(encoder=live).count() == 4
    newest = ListenerSession.objects.filter(encoder=live, last_seen_at__gte=at(92))
    assert all(s.started_at >= extended[0].last_seen_at for s in newest)

    # The listeners' IP is in no column of anything the poller wrote.
    for model in (ListenerSession, ListenerSnapshot, BroadcastLogEntry, Song, Play):
        for row in model.objects.values():
            assert "127.0.0.1" not in repr(row), model.__name__


def test_title_changes_become_plays_with_played_ms_and_the_source_going_down_ends_one(
    icecast, station
):
    live = encoder_add(station, provider="icecast", external_id="/live.mp3", url=icecast.base_url)
    icecast.source_start("/live.mp3")
    icecast.listeners_open("/live.mp3", 2)
    icecast.title_set("/live.mp3", "Asha Bhosle - Dum Maro Dum")

    listeners_poll(now=at(0))
    listeners_poll(now=at(30))  # same title: the same play goes on
    icecast.title_set("/live.mp3", "Kishore Kumar - Ek Ladki")
    listeners_poll(now=at(40))
    icecast.source_stop("/live.mp3")
    listeners_poll(now=at(70))

    plays = list(Play.objects.filter(encoder=live).order_by("started_at").select_related("song"))
    assert [(p.song.artist, p.song.title, p.source) for p in plays] == [
        ("Asha Bhosle", "Dum Maro Dum", "icecast"),
        ("Kishore Kumar", "Ek Ladki", "icecast"),
    ]
    snaps = snapshots_of(live)
    assert plays[0].started_at == snaps[0].taken_at
    assert plays[1].started_at == snaps[2].taken_at
    # played_ms = time from the play's start to the change (about 40 s), then to the drop.
    assert plays[0].played_ms == (snaps[2].taken_at - snaps[0].taken_at) // MS
    assert 39_000 < plays[0].played_ms < 41_000  # the answers take a few ms either way
    assert plays[1].played_ms == (snaps[3].taken_at - snaps[2].taken_at) // MS
    assert 29_000 < plays[1].played_ms < 31_000
    assert [p.listeners_at_start for p in plays] == [2, 2]
    assert plays[0].song.external_id == song_external_id_from_title("asha bhosle -  dum maro dum")


def test_a_station_whose_playout_pushes_plays_gets_no_plays_from_titles(icecast, station_make):
    station = station_make(plays_from_poller=False)
    encoder_add(station, provider="icecast", external_id="/live.mp3", url=icecast.base_url)
    icecast.source_start("/live.mp3")
    icecast.title_set("/live.mp3", "Artist - Song")
    listeners_poll(now=at(0))
    assert ListenerSnapshot.objects.get().title == "Artist - Song"
    assert not Play.objects.exists()
