"""The poller's faults and bounds (SPEC §9.2, §10): an unreachable server or a malformed
answer is a source-down snapshot and a log entry, never a crash; a slow server does not
delay the others; one request per Icecast server per round; one round at a time; no
credential in any log."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command

from echonest_analytics.locks import job_lock
from streams.broadcast.encoder_status import icecast_status_parse
from streams.broadcast.models import BroadcastLogEntry, ListenerSnapshot
from streams.broadcast.poller import POLL_LOCK, listeners_poll
from streams.broadcast.tasks import poll_listeners

from .poller_support import *  # noqa: F403 - the fixtures
from .poller_support import ADMIN_PASSWORD, at, closed_port_url, encoder_add


def icecast_status(*sources: dict) -> dict:
    source = list(sources) if len(sources) > 1 else sources[0] if sources else None
    stats = {"admin": "a@b", "host": "127.0.0.1", "server_id": "Icecast 2.4.4"}
    return {"icestats": stats | ({"source": source} if source is not None else {})}


def mount(path: str, listeners: int, **fields) -> dict:
    return {"listenurl": f"http://127.0.0.1:8000{path}", "listeners": listeners} | fields


def log_events(station) -> list[tuple[str, str, str]]:
    return list(
        BroadcastLogEntry.objects.filter(station=station)
        .order_by("timestamp", "id")
        .values_list("event", "level", "encoder")
    )


def test_an_unreachable_server_is_a_down_snapshot_and_an_error_log_entry(station):
    encoder = encoder_add(
        station, provider="icecast", external_id="/live.mp3", url=closed_port_url(), admin=True
    )

    summary = listeners_poll(now=at(0))

    snapshot = ListenerSnapshot.objects.get(encoder=encoder)
    assert (snapshot.source_up, snapshot.listeners) == (False, 0)
    assert summary.failures == 1
    assert log_events(station) == [("server_unreachable", "error", "/live.mp3")]
    entry = BroadcastLogEntry.objects.get()
    assert ADMIN_PASSWORD not in entry.message + repr(entry.metadata)


def test_a_server_down_for_many_rounds_is_logged_once_and_again_when_it_answers(station, stand_in):
    server = stand_in()
    encoder = encoder_add(station, provider="icecast", external_id="/live.mp3", url=server.url)
    server.routes["/status-json.xsl"] = (503, "busy", 0)
    listeners_poll(now=at(0))
    listeners_poll(now=at(30))
    server.routes["/status-json.xsl"] = (200, icecast_status(mount("/live.mp3", 4)), 0)
    listeners_poll(now=at(60))

    assert [s.source_up for s in ListenerSnapshot.objects.filter(encoder=encoder)] == [
        True,
        False,
        False,
    ]  # newest first
    assert [e for e, _, _ in log_events(station)] == [
        "malformed_answer",
        "server_answering",
        "source_up",
    ]


@pytest.mark.parametrize(
    "body",
    [
        "<html><body><h1>Icecast2 Status</h1></body></html>",  # an HTML page
        '{"icestats":"server_start":"Tue, 01 Dec 2026","dummy":null}}',  # invalid JSON
        '{"icestats": {"source": "live"}}',  # JSON of the wrong shape
        '{"icestats": {"source": [{"listeners": 3}]}}',  # a source without listenurl
        '{"icestats": {"source": {"listenurl": "http://h/live.mp3", "listeners": "many"}}}',
        "[1, 2, 3]",
    ],
    ids=["html", "invalid-json", "source-not-object", "no-listenurl", "odd-count", "array"],
)
def test_a_malformed_icecast_answer_is_a_down_snapshot_and_a_warning(station, stand_in, body):
    server = stand_in()
    server.routes["/status-json.xsl"] = (200, body, 0)
    encoder = encoder_add(station, provider="icecast", external_id="/live.mp3", url=server.url)

    listeners_poll(now=at(0))

    assert ListenerSnapshot.objects.get(encoder=encoder).source_up is False
    assert log_events(station) == [("malformed_answer", "warn", "/live.mp3")]


@pytest.mark.parametrize(
    "body",
    ["<html>SHOUTcast Administrator</html>", "{not json", '{"currentlisteners": 3}'],
    ids=["html", "invalid-json", "no-streamstatus"],
)
def test_a_malformed_shoutcast_answer_is_a_down_snapshot_and_a_warning(station, stand_in, body):
    server = stand_in()
    server.routes["/stats"] = (200, body, 0)
    encoder = encoder_add(station, provider="shoutcast", external_id="1", url=server.url)

    listeners_poll(now=at(0))

    assert ListenerSnapshot.objects.get(encoder=encoder).source_up is False
    assert log_events(station) == [("malformed_answer", "warn", "1")]


def test_a_slow_server_does_not_delay_another_encoders_snapshot(station, stand_in, settings):
    settings.BROADCAST_POLL_TIMEOUT = 0.5
    slow, fast = stand_in(), stand_in()
    slow.routes["/status-json.xsl"] = (200, icecast_status(mount("/slow.mp3", 1)), 3.0)
    fast.routes["/status-json.xsl"] = (200, icecast_status(mount("/fast.mp3", 7)), 0)
    slow_encoder = encoder_add(station, provider="icecast", external_id="/slow.mp3", url=slow.url)
    fast_encoder = encoder_add(station, provider="icecast", external_id="/fast.mp3", url=fast.url)

    started = time.monotonic()
    summary = listeners_poll(now=at(0))
    elapsed = time.monotonic() - started

    assert elapsed < 3.0  # the round did not wait for the slow answer
    fast_snapshot = ListenerSnapshot.objects.get(encoder=fast_encoder)
    assert (fast_snapshot.source_up, fast_snapshot.listeners) == (True, 7)
    assert fast_snapshot.taken_at - at(0) < timedelta(seconds=0.5)
    assert ListenerSnapshot.objects.get(encoder=slow_encoder).source_up is False
    assert summary.failures == 1
    assert [e for e, _, enc in log_events(station) if enc == "/slow.mp3"] == ["server_unreachable"]


def test_one_status_request_per_icecast_server_per_round_for_all_its_mounts(station_make, stand_in):
    server = stand_in()
    server.routes["/status-json.xsl"] = (
        200,
        icecast_status(mount("/a.mp3", 1), mount("/b.mp3", 2), mount("/c.ogg", 3)),
        0,
    )
    first, second = station_make(), station_make()
    for station, path in [(first, "/a.mp3"), (first, "/b.mp3"), (second, "/c.ogg")]:
        encoder_add(station, provider="icecast", external_id=path, url=server.url + "/")
    encoder_add(second, provider="icecast", external_id="/gone.mp3", url=server.url)

    summary = listeners_poll(now=at(0))

    assert server.count("/status-json.xsl") == 1
    by_mount = {
        s.encoder.external_id: (s.source_up, s.listeners)
        for s in ListenerSnapshot.objects.select_related("encoder")
    }
    assert by_mount == {
        "/a.mp3": (True, 1),
        "/b.mp3": (True, 2),
        "/c.ogg": (True, 3),
        "/gone.mp3": (False, 0),  # not listed: its source is down
    }
    assert (summary.encoders, summary.sources_up, summary.listeners) == (4, 3, 6)


def test_icecast_bitrate_as_int_string_or_absent_and_artist_with_title():
    readings = icecast_status_parse(
        b'{"icestats": {"source": ['
        b'{"listenurl": "http://h:8000/a.mp3", "listeners": 1, "bitrate": 128, "title": "T"},'
        b'{"listenurl": "http://h:8000/b.ogg", "listeners": 2, "bitrate": "96",'
        b' "artist": "Rafi", "title": "Chaudhvin Ka Chand"},'
        b'{"listenurl": "http://h:8000/c.mp3", "listeners": 0}]}}'
    )
    assert {m: (r.bitrate, r.title) for m, r in readings.items()} == {
        "/a.mp3": (128, "T"),
        "/b.ogg": (96, "Rafi - Chaudhvin Ka Chand"),
        "/c.mp3": (None, ""),
    }


def test_a_poll_round_is_skipped_while_another_holds_the_lock(station, stand_in):
    server = stand_in()
    server.routes["/status-json.xsl"] = (200, icecast_status(mount("/live.mp3", 1)), 0)
    encoder_add(station, provider="icecast", external_id="/live.mp3", url=server.url)

    with job_lock(POLL_LOCK):
        summary = listeners_poll(now=at(0))

    assert summary.skipped and not ListenerSnapshot.objects.exists()
    assert server.count("/status-json.xsl") == 0


def test_the_task_and_the_command_run_one_round(station, stand_in, capsys):
    server = stand_in()
    server.routes["/status-json.xsl"] = (200, icecast_status(mount("/live.mp3", 12)), 0)
    encoder_add(station, provider="icecast", external_id="/live.mp3", url=server.url)

    result = poll_listeners.apply().get()
    call_command("poll_listeners")

    assert (result["encoders"], result["listeners"]) == (1, 12)
    assert ListenerSnapshot.objects.count() == 2
    out = capsys.readouterr().out
    assert "Polled 1 encoders" in out and "12 listeners" in out


def test_a_server_that_stalls_after_its_headers_is_unreachable_not_a_crash(
    station, stand_in, settings
):
    settings.BROADCAST_POLL_TIMEOUT = 0.5
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def stall() -> None:
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"icestats"')
        stop.wait(5)
        connection.close()

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    healthy = stand_in()
    healthy.routes["/status-json.xsl"] = (200, icecast_status(mount("/ok.mp3", 2)), 0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    stalled = encoder_add(station, provider="icecast", external_id="/live.mp3", url=url)
    fine = encoder_add(station, provider="icecast", external_id="/ok.mp3", url=healthy.url)
    try:
        summary = listeners_poll(now=at(0))
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()

    assert ListenerSnapshot.objects.get(encoder=stalled).source_up is False
    assert ListenerSnapshot.objects.get(encoder=fine).listeners == 2
    assert summary.failures == 1
    assert [e for e, _, enc in log_events(station) if enc == "/live.mp3"] == ["server_unreachable"]


def test_an_encoder_configured_not_to_be_polled_keeps_its_history_and_is_not_asked(station):
    polled = encoder_add(
        station, provider="icecast", external_id="/live.mp3", url=closed_port_url()
    )
    kept = encoder_add(station, provider="icecast", external_id="/old.mp3", url=closed_port_url())
    kept.config = {**kept.config, "poll": False}
    kept.save(update_fields=["config"])

    summary = listeners_poll(now=at(0))

    assert summary.encoders == 1
    assert ListenerSnapshot.objects.filter(encoder=polled).count() == 1
    assert not ListenerSnapshot.objects.filter(encoder=kept).exists()
    assert [encoder for _, _, encoder in log_events(station)] == ["/live.mp3"]
