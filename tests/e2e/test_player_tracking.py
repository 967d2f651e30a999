"""Player tracking SDK (SPEC §8) in real Chromium against the live server: the demo watch
page plays a real HLS video made by ffmpeg, and the Bunny Stream and YouTube adapters run
against stand-in players that emit those players' real event and state sequences."""

from __future__ import annotations

import json

import pytest

from streams.models import (
    Organizer,
    PlaybackBatch,
    PlaybackEvent,
    Stream,
    StreamProvider,
    ViewerSession,
)

from .conftest import wait_for_js

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO_SECONDS = 5


def _stream(key: str, provider: str, external_id: str, config: dict | None = None) -> Stream:
    organizer, _ = Organizer.objects.get_or_create(slug="e2e", defaults={"name": "E2E"})
    stream = Stream.objects.create(
        key=key, title=f"E2E {provider}", organizer=organizer, kind="video", status="live"
    )
    StreamProvider.objects.create(
        stream=stream,
        provider=provider,
        external_id=external_id,
        config=config or {},
        is_primary=True,
    )
    return stream


def _events(stream: Stream) -> list[PlaybackEvent]:
    return list(PlaybackEvent.objects.filter(stream=stream).order_by("occurred_at", "id"))


def _types(events: list[PlaybackEvent]) -> list[str]:
    return [e.type for e in events]


def _without_heartbeats(types: list[str]) -> list[str]:
    return [t for t in types if t != "heartbeat"]


def _offline_providers(page) -> None:
    """The real embeds need the internet: answer their hosts with an empty page."""
    page.route(
        "https://iframe.mediadelivery.net/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<!doctype html>"),
    )
    page.route("https://www.youtube.com/**", lambda route: route.abort())


def _open_watch_page(page, live_server, key: str, query: str = "") -> str:
    page.goto(f"{live_server.url}/streams/{key}/watch{query}")
    page.wait_for_selector("#player[data-ready]", state="attached")
    ready = page.get_attribute("#player", "data-ready")
    assert ready != "error", page.inner_text("#status")
    return ready


# --- HTML5 video with a real HLS stream -----------------------------------------------


@pytest.mark.parametrize("hls_mode", ["auto", "hlsjs"])
def test_hls_watch_page_records_play_heartbeats_pause_and_ended_for_one_session(
    page, live_server, settings, hls_video_url, wait_until, hls_mode
):
    settings.HEARTBEAT_INTERVAL = 1
    stream = _stream("e2e-hls", "hls", hls_video_url)

    assert _open_watch_page(page, live_server, stream.key, f"?hls={hls_mode}") == "hls"
    engine = page.evaluate("window.echoNestWatch.then(w => w.engine)")
    # "auto": native HLS where canPlayType says so (recent Chromium), else hls.js over MSE;
    # "hlsjs" forces hls.js.
    native_hls = page.evaluate(
        "!!document.createElement('video').canPlayType('application/vnd.apple.mpegurl')"
    )
    assert engine == ("native" if hls_mode == "auto" and native_hls else "hls.js")

    video = "document.querySelector('#player video')"
    page.evaluate(f"{video}.muted = true; {video}.play()")
    wait_for_js(page, f"{video}.currentTime >= 2.3", timeout=15000)
    page.evaluate(f"window.e2ePausedAt = performance.now(); {video}.pause()")
    # Stay paused until the pause is stored and has lasted past a heartbeat interval (1 s),
    # so a heartbeat timer left running would have fired; the order check below says none did.
    wait_until(
        lambda: (
            PlaybackEvent.objects.filter(stream=stream, type="pause").exists()
            and page.evaluate("performance.now() - window.e2ePausedAt") > 1300
        ),
        message="the pause was never stored",
    )
    page.evaluate(f"{video}.play()")
    wait_for_js(page, f"{video}.ended", timeout=15000)

    wait_until(
        lambda: PlaybackEvent.objects.filter(stream=stream, type="ended").exists(),
        message="no ended event stored",
    )
    events = _events(stream)
    types = _types(events)
    # Buffering may legitimately occur on a loaded machine; it must come in pairs.
    assert types.count("buffer_start") == types.count("buffer_end")
    core = [t for t in types if t not in ("buffer_start", "buffer_end")]
    assert _without_heartbeats(core) == ["play", "pause", "play", "ended"], types
    pause_at = core.index("pause")
    assert core[pause_at + 1] == "play", types  # nothing while paused, heartbeats included
    first_run = core[1:pause_at]
    second_run = core[pause_at + 2 : -1]
    # At least two heartbeats in the first 2.3 s of video: the shortened 1 s interval is
    # used (the default 15 s gives none).
    assert len(first_run) >= 2 and set(first_run) == {"heartbeat"}, types
    assert len(second_run) >= 1 and set(second_run) == {"heartbeat"}, types

    # One viewer, one session, every event in it.
    assert len({e.client_id for e in events}) == 1
    sessions = ViewerSession.objects.filter(stream=stream)
    assert sessions.count() == 1
    assert {e.session_id for e in events} == {sessions.get().pk}

    # videoTime is the position: it never goes back, heartbeats before the pause are at or
    # before its position, those after it at or after it.
    heartbeats = [e for e in events if e.type == "heartbeat"]
    assert [e.video_time for e in heartbeats] == sorted(e.video_time for e in heartbeats)
    pause = next(e for e in events if e.type == "pause")
    assert pause.video_time >= 2.3
    before_pause = [e for e in heartbeats if e.occurred_at < pause.occurred_at]
    after_pause = [e for e in heartbeats if e.occurred_at > pause.occurred_at]
    assert len(before_pause) == len(first_run) and len(after_pause) == len(second_run)
    assert all(e.video_time <= pause.video_time for e in before_pause)
    assert all(e.video_time >= pause.video_time for e in after_pause)
    assert events[-1].video_time == pytest.approx(VIDEO_SECONDS, abs=0.3)
    # Stored once: as many rows as the page tracked.
    assert len(events) == page.evaluate("window.echoNestWatch.then(w => w.tracker.stats().events)")


def test_player_events_are_delivered_by_sendbeacon_when_the_page_is_left(
    page, live_server, settings, hls_video_url, wait_until, beacon_log
):
    settings.HEARTBEAT_INTERVAL = 1
    stream = _stream("e2e-hls-beacon", "hls", hls_video_url)
    _open_watch_page(page, live_server, stream.key)
    video = "document.querySelector('#player video')"
    page.evaluate(f"{video}.muted = true; {video}.play()")
    wait_for_js(page, f"{video}.currentTime >= 1.3", timeout=15000)
    # Before the 5 s flush interval: nothing has been sent yet.
    stats = page.evaluate("window.echoNestWatch.then(w => w.tracker.stats())")
    assert stats["batchesSent"] == 0 and stats["events"] >= 2

    page.goto("about:blank")  # pagehide → sendBeacon

    wait_until(lambda: PlaybackEvent.objects.filter(stream=stream).count() >= stats["events"])
    types = _types(_events(stream))
    assert types[0] == "play" and set(types[1:]) == {"heartbeat"}, types
    assert len(types) in (stats["events"], stats["events"] + 1)  # a heartbeat may slip in
    beacons = beacon_log()
    assert beacons and all(b["url"].endswith("/analytics/events") and b["queued"] for b in beacons)
    assert PlaybackBatch.objects.filter(stream=stream).count() == len(beacons)


# --- Bunny Stream embed (player.js) against a stand-in player ---------------------------

# player.js as the Bunny embed speaks it: the events it supports are those of the player.js
# spec (no "buffering"); getters answer through callbacks.
FAKE_PLAYERJS = """
window.__bunny = [];
window.playerjs = {
  Player: function (iframe) {
    var handlers = {};
    var supported = ["ready", "play", "pause", "ended", "timeupdate", "progress", "seeked",
                     "error"];
    this.iframe = iframe;
    this.on = function (name, fn) { (handlers[name] = handlers[name] || []).push(fn); };
    this.off = function (name) { delete handlers[name]; };
    this.supports = function (kind, names) {
      return [].concat(names).every(function (n) { return supported.indexOf(n) >= 0; });
    };
    this.getCurrentTime = function (fn) { fn(0); };
    this.emit = function (name, value) {
      (handlers[name] || []).slice().forEach(function (fn) { fn(value); });
    };
    window.__bunny.push(this);
  }
};
"""


def test_bunny_adapter_tracks_the_player_js_event_sequence(page, live_server, settings, wait_until):
    settings.HEARTBEAT_INTERVAL = 1
    guid = "5f2c9d1e-7a3b-4c8d-9e0f-1a2b3c4d5e6f"
    stream = _stream("e2e-bunny", "bunny_stream", guid, {"library_id": "12345"})
    # The stand-in is served where the page loads the real player.js from.
    page.route(
        "**/static/vendor/player.js/**",
        lambda route: route.fulfill(content_type="application/javascript", body=FAKE_PLAYERJS),
    )
    _offline_providers(page)
    # The ingestion endpoint answers 503 twice: the batch must be retried with its batchId.
    requests: list[dict] = []

    def ingest(route):
        requests.append(json.loads(route.request.post_data))
        if len(requests) <= 2:
            route.fulfill(status=503, headers={"Retry-After": "1"}, json={"error": "db down"})
        else:
            route.continue_()

    page.route("**/analytics/events", ingest)

    assert _open_watch_page(page, live_server, stream.key) == "bunny_stream"
    src = page.get_attribute("#player iframe", "src")
    assert src == f"https://iframe.mediadelivery.net/embed/12345/{guid}"

    bunny = "window.__bunny[0]"
    page.evaluate(f"""() => {{
        {bunny}.emit('ready');
        {bunny}.emit('play');
        {bunny}.emit('timeupdate', {{seconds: 0.25, duration: 60}});
    }}""")
    page.evaluate(f"""() => new Promise(done => {{
        let t = 0.25;
        const tick = setInterval(() => {{
            t += 0.25; {bunny}.emit('timeupdate', {{seconds: t, duration: 60}});
            if (t >= 1.5) {{ clearInterval(tick); done(); }}
        }}, 250);
    }})""")
    page.evaluate(f"""() => {{
        {bunny}.emit('pause');
        {bunny}.emit('play');
        {bunny}.emit('timeupdate', {{seconds: 1.75, duration: 60}});
        {bunny}.emit('error', {{code: 'NETWORK', message: 'segment failed'}});
        {bunny}.emit('timeupdate', {{seconds: 2.0, duration: 60}});
        {bunny}.emit('ended');
    }}""")

    wait_until(
        lambda: PlaybackEvent.objects.filter(stream=stream, type="ended").exists(),
        message="no ended event stored",
    )
    events = _events(stream)
    types = _types(events)
    assert _without_heartbeats(types) == ["play", "pause", "play", "error", "ended"], types
    assert types.count("heartbeat") >= 1
    assert types.index("heartbeat") < types.index("pause")
    error = next(e for e in events if e.type == "error")
    assert error.extra == {"source": "bunny", "code": "NETWORK", "message": "segment failed"}
    assert error.video_time == pytest.approx(1.75)
    assert events[-1].video_time == pytest.approx(2.0)
    assert ViewerSession.objects.filter(stream=stream).count() == 1

    # Retried batches kept their batchId; the server stored each batch once.
    sent_ids = [r["batchId"] for r in requests]
    assert len(sent_ids) > len(set(sent_ids)) and sent_ids[0] == sent_ids[2]
    stored = set(
        str(b)
        for b in PlaybackBatch.objects.filter(stream=stream).values_list("batch_id", flat=True)
    )
    assert stored == set(sent_ids)
    events_per_batch = {r["batchId"]: len(r["events"]) for r in requests}
    assert len(events) == sum(events_per_batch.values())


# --- YouTube IFrame API against a stand-in YT.Player --------------------------------------

# YT.Player as the IFrame API exposes it: onReady, then onStateChange with numeric states
# (-1 unstarted, 0 ended, 1 playing, 2 paused, 3 buffering, 5 cued) and onError codes.
FAKE_YT = """
window.__yt = [];
window.YT = {
  PlayerState: {UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5},
  Player: function (element, options) {
    var self = this;
    this.element = element;
    this.options = options;
    this.t = 0;
    this.getCurrentTime = function () { return self.t; };
    this.state = function (data, t) {
      if (t !== undefined) self.t = t;
      options.events.onStateChange({target: self, data: data});
    };
    this.fail = function (code) { options.events.onError({target: self, data: code}); };
    window.__yt.push(this);
    setTimeout(function () { options.events.onReady({target: self}); }, 0);
  }
};
"""


def test_youtube_adapter_maps_iframe_api_states(page, live_server, settings, wait_until):
    settings.HEARTBEAT_INTERVAL = 1
    stream = _stream("e2e-youtube", "youtube", "dQw4w9WgXcQ")
    page.add_init_script(FAKE_YT)
    _offline_providers(page)

    assert _open_watch_page(page, live_server, stream.key) == "youtube"
    assert page.evaluate("window.__yt.length === 1 && window.__yt[0].options.videoId") == (
        "dQw4w9WgXcQ"
    )
    yt = "window.__yt[0]"
    # Load: unstarted, cued, buffering before the first frame (not rebuffering), playing.
    page.evaluate(f"{yt}.state(-1); {yt}.state(5); {yt}.state(3); {yt}.state(1, 0)")
    page.evaluate(f"""() => new Promise(done => {{
        const tick = setInterval(() => {{
            {yt}.t += 0.25;
            if ({yt}.t >= 1.5) {{ clearInterval(tick); done(); }}
        }}, 250);
    }})""")
    page.evaluate(f"""() => {{
        {yt}.state(3, 1.5);   // rebuffering mid-play
        {yt}.state(1, 1.5);
        {yt}.state(2, 1.6);   // paused
        {yt}.state(3, 1.6);   // seek while paused: not rebuffering
        {yt}.state(1, 30.0);  // playing again
        {yt}.fail(150);       // embedding not allowed
        {yt}.state(0, 212.0); // ended
    }}""")

    wait_until(
        lambda: PlaybackEvent.objects.filter(stream=stream, type="ended").exists(),
        message="no ended event stored",
    )
    events = _events(stream)
    types = _types(events)
    assert _without_heartbeats(types) == [
        "play",
        "buffer_start",
        "buffer_end",
        "pause",
        "play",
        "error",
        "ended",
    ], types
    assert 1 <= types.count("heartbeat") and types.index("heartbeat") < types.index("buffer_start")
    by_type = {e.type: e for e in events}
    assert by_type["buffer_start"].video_time == pytest.approx(1.5)
    assert by_type["pause"].video_time == pytest.approx(1.6)
    assert by_type["error"].extra == {"source": "youtube", "code": 150, "fatal": True}
    assert by_type["ended"].video_time == pytest.approx(212.0)
    assert ViewerSession.objects.filter(stream=stream).count() == 1


def test_watch_page_answers_404_for_an_unknown_stream(page, live_server):
    response = page.goto(f"{live_server.url}/streams/no-such-stream/watch")
    assert response.status == 404
