"""player-tracking.js keeps unsent batches in IndexedDB (SPEC §8, §6.5), in real Chromium
against the live server: events made while the server is unreachable survive a reload
and a crashed tab, and arrive exactly once, under the batchId they were first given; a
batch another live tab is still filling is left to that tab."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from streams.models import PlaybackBatch, PlaybackEvent

from .conftest import wait_for_js
from .test_player_tracking import FAKE_YT, _offline_providers, _open_watch_page, _stream

pytestmark = pytest.mark.django_db(transaction=True)

WATCH = "window.echoNestWatch.then(w => w.tracker)"


def _saved_batches(page) -> list[dict]:
    """What the SDK holds in IndexedDB (the `batches` store of `echonest-player`)."""
    return page.evaluate(
        """() => new Promise(resolve => {
            const open = indexedDB.open("echonest-player", 1);
            open.onupgradeneeded = () => open.result.createObjectStore("batches", {keyPath: "batchId"});
            open.onsuccess = () => {
              const request = open.result.transaction("batches").objectStore("batches").getAll();
              request.onsuccess = () => { open.result.close(); resolve(request.result); };
            };
        })"""
    )


def _watch(page, live_server, stream) -> None:
    page.add_init_script(FAKE_YT)
    _offline_providers(page)
    assert _open_watch_page(page, live_server, stream.key) == "youtube"


def _make_events(page, tracker: str = WATCH) -> None:
    """play, three errors numbered by extra.seq, pause: five events."""
    page.evaluate(
        f"""{tracker}.then(t => {{
            t.play();
            [0, 1, 2].forEach(seq => t.error({{seq: seq}}));
            t.pause();
        }})"""
    )


def _stored(stream) -> list[PlaybackEvent]:
    return list(PlaybackEvent.objects.filter(stream=stream).order_by("occurred_at", "id"))


def _seqs(stream) -> list[int]:
    return sorted(e.extra["seq"] for e in _stored(stream) if e.type == "error")


def test_a_reload_while_offline_loses_nothing_and_the_batch_arrives_once(
    page, live_server, wait_until
):
    stream = _stream("e2e-offline-reload", "youtube", "dQw4w9WgXcQ")
    _watch(page, live_server, stream)
    page.context.set_offline(True)
    _make_events(page)
    page.evaluate(f"{WATCH}.then(t => t.flush())")  # offline: it keeps the batch
    assert page.evaluate(f"{WATCH}.then(t => t.stats())")["batchesSent"] == 0
    wait_until(lambda: len(_saved_batches(page)) == 1, message="the batch is not in IndexedDB")
    (saved,) = _saved_batches(page)
    assert [e["type"] for e in saved["events"]] == ["play", "error", "error", "error", "pause"]
    assert saved["streamId"] == stream.key
    assert not PlaybackEvent.objects.filter(stream=stream).exists()

    with pytest.raises(Exception, match="ERR_INTERNET_DISCONNECTED"):
        page.reload()  # the page is gone, its memory queue with it

    sent: list[dict] = []

    def ingest(route):
        sent.append(json.loads(route.request.post_data))
        route.continue_()

    page.route("**/analytics/events", ingest)
    page.context.set_offline(False)
    _open_watch_page(page, live_server, stream.key)

    wait_until(lambda: len(_stored(stream)) >= 5, message="the saved batch never arrived")
    wait_until(lambda: _saved_batches(page) == [], message="IndexedDB still holds the batch")
    events = _stored(stream)
    assert [e.type for e in events] == ["play", "error", "error", "error", "pause"]
    assert _seqs(stream) == [0, 1, 2]
    # Under the batchId it was given offline, stored once however often it was sent.
    assert list(PlaybackBatch.objects.filter(stream=stream).values_list("batch_id", flat=True))
    assert {str(b.batch_id) for b in PlaybackBatch.objects.filter(stream=stream)} == {
        saved["batchId"]
    }
    # Whatever went over the wire carried that batchId too. (Which page hands the stored
    # batch on can vary: the new one restores it, or the old one still holding its lock
    # sends it on `online` while it unloads, unseen by page.route.)
    assert {s["batchId"] for s in sent} <= {saved["batchId"]}


def test_a_tab_that_crashed_offline_mid_batch_loses_nothing(page, live_server, wait_until):
    stream = _stream("e2e-offline-crash", "youtube", "dQw4w9WgXcQ")
    _watch(page, live_server, stream)
    page.context.set_offline(True)
    # A tracker that would only send in ten minutes: its batch is still filling when the
    # tab dies, so only the write-through on every event can save it.
    page.evaluate(
        """window.e2eTracker = Promise.resolve(EchoNestPlayer.createTracker(
            {streamId: "e2e-offline-crash", flushInterval: 600}))"""
    )
    _make_events(page, "window.e2eTracker")
    wait_until(
        lambda: [b["open"] for b in _saved_batches(page)] == [True],
        message="the filling batch is not in IndexedDB",
    )
    (saved,) = _saved_batches(page)
    assert len(saved["events"]) == 5
    context = page.context
    # The tab crashes: no pagehide handler runs, no beacon goes out.
    with pytest.raises(Exception, match="ERR_ABORTED"):
        page.goto("chrome://crash")
    page.close()
    context.set_offline(False)
    assert not PlaybackEvent.objects.filter(stream=stream).exists()

    opened_at = timezone.now()
    next_page = context.new_page()
    next_page.add_init_script(FAKE_YT)
    _offline_providers(next_page)
    _open_watch_page(next_page, live_server, stream.key)

    wait_until(
        lambda: len(_stored(stream)) >= 5,
        message="the crashed tab's batch never arrived",
        on=next_page,
    )
    wait_until(lambda: _saved_batches(next_page) == [], on=next_page)
    assert _seqs(stream) == [0, 1, 2]
    assert len(_stored(stream)) == 5
    (stored,) = PlaybackBatch.objects.filter(stream=stream)
    assert str(stored.batch_id) == saved["batchId"]
    # Received after the next page opened: that page sent it.
    assert all(e.received_at >= opened_at for e in _stored(stream))


def test_a_batch_another_live_tab_is_filling_is_left_to_it(page, live_server, wait_until):
    stream = _stream("e2e-two-tabs", "youtube", "dQw4w9WgXcQ")
    _watch(page, live_server, stream)
    page.evaluate(
        """window.e2eTracker = Promise.resolve(EchoNestPlayer.createTracker(
            {streamId: "e2e-two-tabs", flushInterval: 600}))"""
    )
    page.evaluate("window.e2eTracker.then(t => { t.play(); t.error({seq: 0}); })")
    wait_until(lambda: [b["open"] for b in _saved_batches(page)] == [True])

    other = page.context.new_page()
    other.add_init_script(FAKE_YT)
    _offline_providers(other)
    _open_watch_page(other, live_server, stream.key)
    # The other tab looks (on load and now again) and takes nothing: the first tab's lock
    # says it is alive, and the batch it is filling may still grow.
    other.evaluate(f"{WATCH}.then(t => t.restore())")
    assert other.evaluate(f"{WATCH}.then(t => t.stats().restored)") == 0
    assert not PlaybackEvent.objects.filter(stream=stream).exists()

    page.evaluate(
        "window.e2eTracker.then(t => { t.error({seq: 1}); t.error({seq: 2}); t.pause(); "
        "return t.flush(); })"
    )
    wait_until(lambda: len(_stored(stream)) >= 5, message="the batch never arrived")
    wait_for_js(page, "window.e2eTracker.then(t => t.stats().pending === 0)")
    assert _seqs(stream) == [0, 1, 2]
    assert [e.type for e in _stored(stream)] == ["play", "error", "error", "error", "pause"]
    assert PlaybackBatch.objects.filter(stream=stream).count() == 1
    other.close()
