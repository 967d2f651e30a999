"""Video quality from the player SDK (SPEC §6.5) in real Chromium: the watch page plays a
real HLS video made by ffmpeg (native HLS where Chromium has it, else hls.js), and the
events it sends carry what the aggregator turns into startup time, exits before video
start and playback failures."""

from __future__ import annotations

import pytest

from streams.aggregation import stream_stats_recompute
from streams.models import Organizer, PlaybackEvent, Stream, StreamProvider, StreamStats

from .conftest import wait_for_js

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO_SECONDS = 5
VIDEO = "document.querySelector('#player video')"


def _stream(key: str, url: str) -> Stream:
    organizer, _ = Organizer.objects.get_or_create(slug="e2e", defaults={"name": "E2E"})
    stream = Stream.objects.create(key=key, title="E2E video quality", organizer=organizer)
    StreamProvider.objects.create(stream=stream, provider="hls", external_id=url, is_primary=True)
    return stream


def _open(page, live_server, stream: Stream) -> None:
    page.goto(f"{live_server.url}/streams/{stream.key}/watch")
    page.wait_for_selector("#player[data-ready]", state="attached")
    assert page.get_attribute("#player", "data-ready") == "hls", page.inner_text("#status")


def _events(stream: Stream) -> list[PlaybackEvent]:
    return list(PlaybackEvent.objects.filter(stream=stream).order_by("occurred_at", "id"))


def _day_stats(stream: Stream) -> StreamStats:
    assert stream_stats_recompute().ran
    return StreamStats.objects.get(stream=stream)


def test_the_first_play_carries_its_startup_time_and_the_video_duration(
    page, live_server, settings, hls_video_url, wait_until
):
    settings.HEARTBEAT_INTERVAL = 1
    stream = _stream("e2e-startup", hls_video_url)
    _open(page, live_server, stream)
    # The page's own clock around the SDK's: from play() to the first "playing".
    page.evaluate(
        f"""() => {{
        const v = {VIDEO};
        v.addEventListener('playing', () => {{
            window.e2eFirstFrame = window.e2eFirstFrame || performance.now();
        }});
        v.muted = true;
        window.e2eAsked = performance.now();
        v.play();
    }}"""
    )
    wait_for_js(page, f"{VIDEO}.currentTime >= 1.5", timeout=15000)
    page.evaluate(f"{VIDEO}.pause()")
    page.evaluate(f"{VIDEO}.play()")  # a resume is no new start: no startupMs on it
    page.evaluate("window.echoNestWatch.then(w => w.tracker.flush())")
    wait_until(
        lambda: PlaybackEvent.objects.filter(stream=stream, type="play").count() == 2,
        message="the two plays were never stored",
    )

    first, resume = [e for e in _events(stream) if e.type == "play"]
    waited = page.evaluate("window.e2eFirstFrame - window.e2eAsked")
    startup = first.extra["startupMs"]
    assert isinstance(startup, int)
    # Measured from the play request (the video's "play" event, just after play()) to the
    # first frame: within what the page itself saw.
    assert 0 <= startup <= waited + 5, (startup, waited)
    assert first.extra["duration"] == pytest.approx(VIDEO_SECONDS, abs=0.2)
    assert resume.extra is None or "startupMs" not in resume.extra

    row = _day_stats(stream)
    assert row.startup_time_median_ms == startup == row.startup_time_p95_ms
    assert row.exits_before_start == 0


def test_leaving_before_the_first_frame_sends_the_play_as_an_exit_before_start(
    page, live_server, settings, hls_video_url, wait_until
):
    stream = _stream("e2e-exit", hls_video_url)
    # The media segments never arrive: playback cannot start.
    page.route("**/*.ts", lambda route: None)
    _open(page, live_server, stream)
    page.evaluate(f"{VIDEO}.muted = true; {VIDEO}.play(); null")  # not awaiting play()
    page.wait_for_timeout(800)
    assert page.evaluate(f"{VIDEO}.currentTime") == 0
    assert page.evaluate("window.echoNestWatch.then(w => w.tracker.stats().events)") == 0

    page.goto("about:blank")  # pagehide: the waiting play goes out by sendBeacon

    wait_until(lambda: PlaybackEvent.objects.filter(stream=stream).exists())
    (play,) = _events(stream)
    assert play.type == "play"
    assert "startupMs" not in (play.extra or {})  # it never started
    row = _day_stats(stream)
    assert (row.sessions, row.exits_before_start, row.startup_time_median_ms) == (1, 1, None)


def test_a_fatal_player_error_is_marked_fatal_and_counts_as_a_playback_failure(
    page, live_server, settings, wait_until
):
    stream = _stream("e2e-fatal", "/static/e2e/no-such-playlist.m3u8")
    # The playlist request is held until the viewer has asked to play, then answered 404.
    held = []
    page.route("**/no-such-playlist.m3u8", lambda route: held.append(route))
    _open(page, live_server, stream)
    page.evaluate(f"{VIDEO}.muted = true; {VIDEO}.play().catch(() => null); null")
    wait_until(lambda: held, message="the player never asked for its playlist")
    held[0].fulfill(status=404, content_type="text/plain", body="missing")

    # The player gives up on the missing playlist (a media error, or hls.js's fatal
    # network error); the error batch goes out on the next flush.
    wait_until(
        lambda: PlaybackEvent.objects.filter(stream=stream, type="error").exists(),
        timeout=30,
        message="no error event stored",
    )
    events = _events(stream)
    assert [e.type for e in events] == ["play", "error"]
    error = events[1]
    assert error.extra["fatal"] is True and error.extra["source"] in ("video", "hls.js")
    assert "startupMs" not in (events[0].extra or {})
    row = _day_stats(stream)
    assert (row.sessions, row.fatal_error_sessions, row.playback_failure_rate) == (1, 1, 1.0)
    assert row.exits_before_start == 1  # it asked to play and never played
