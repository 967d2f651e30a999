"""telemetry.js (SPEC §8) in real Chromium against the live server and its real database:
page views (also SPA history changes), [data-track] clicks, setUserId, offline delivery,
IndexedDB across a reload, sendBeacon on page hide, and retries that never double count."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from analytics.models import Event

from .conftest import wait_for_js

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = "/analytics/demo"


def _sdk_config(page, **options) -> None:
    """window.EchoPilotConfig, read by telemetry.js when it loads (documented option)."""
    page.add_init_script(f"window.EchoPilotConfig = {json.dumps(options)};")


def _open_demo(page, live_server, wait_until, query: str = "") -> None:
    page.goto(f"{live_server.url}{DEMO}{query}")
    wait_until(
        lambda: Event.objects.filter(event_type="page_view", url=f"{DEMO}{query}").exists(),
        message="the page view never arrived",
    )


def _track(page, count: int, event_type: str = "offline_test", start: int = 0) -> list[str]:
    """Track `count` events numbered by metadata.seq; returns their uuids."""
    return page.evaluate(
        """([count, type, start]) => Array.from({length: count},
              (_, i) => EchoPilot.track(type, "tests", {seq: start + i}))""",
        [count, event_type, start],
    )


def _seqs(event_type: str = "offline_test") -> list[int]:
    return sorted(
        e.metadata["seq"] for e in Event.objects.filter(event_type=event_type).only("metadata")
    )


def _indexeddb_count(page) -> int:
    return page.evaluate(
        """() => new Promise(resolve => {
            const open = indexedDB.open("echopilot", 1);
            open.onsuccess = () => {
              const request = open.result.transaction("events").objectStore("events").count();
              request.onsuccess = () => { open.result.close(); resolve(request.result); };
            };
        })"""
    )


def test_page_views_clicks_and_user_id_arrive_as_specified(page, live_server, wait_until):
    _open_demo(page, live_server, wait_until)
    first = Event.objects.get(event_type="page_view")
    assert (first.feature, first.user_id) == ("telemetry_demo", "")
    assert first.metadata == {"title": "Telemetry demo · EchoNest"}

    # SPA navigation: pushState, then back (popstate); each is a page view with its referrer.
    page.click("a[data-spa-tab=pricing]")
    page.go_back()
    wait_for_js(page, "location.search === ''")
    # [data-track] clicks, one on a child element of the tracked button.
    page.click("#cta")
    page.click("#share span")
    page.click("#pricing-link")  # hash change only: an action, not a page view
    # setUserId: events from then on carry the id; earlier ones stay anonymous.
    page.fill("#user-id", "user-42")
    page.click("#login")
    page.click("#cta")

    wait_until(lambda: Event.objects.count() == 8, message=f"{Event.objects.count()} events")
    # Nothing else can arrive: the SDK holds nothing more and says it sent exactly these 8.
    wait_for_js(page, "EchoPilot.pending() === 0 && EchoPilot.stats().sent === 8")
    assert Event.objects.count() == 8
    rows = list(Event.objects.order_by("occurred_at", "id"))
    assert [(e.event_type, e.feature, e.user_id) for e in rows] == [
        ("page_view", "telemetry_demo", ""),
        ("page_view", "telemetry_demo", ""),
        ("page_view", "telemetry_demo", ""),
        ("action", "signup_cta", ""),
        ("action", "share_button", ""),
        ("action", "pricing_page", ""),
        ("login", "auth", "user-42"),
        ("action", "signup_cta", "user-42"),
    ]
    assert [e.url for e in rows[:3]] == [DEMO, f"{DEMO}?tab=pricing", DEMO]
    assert rows[1].metadata["referrer"] == f"{live_server.url}{DEMO}"
    assert rows[2].metadata["referrer"] == f"{live_server.url}{DEMO}?tab=pricing"
    assert [e.metadata for e in rows[3:6]] == [
        {"action": "click"},
        {"action": "share"},
        {"action": "navigate"},
    ]
    assert rows[6].metadata == {"method": "demo"}
    # The id is kept for the next page of the site.
    page.reload()
    wait_until(lambda: Event.objects.filter(event_type="page_view", user_id="user-42").exists())


def test_offline_events_are_delivered_once_when_back_online(page, live_server, wait_until):
    _open_demo(page, live_server, wait_until)
    page.context.set_offline(True)
    uuids = _track(page, 5)
    # Ask for the send at once instead of waiting out the 1 s debounce: offline, it keeps them.
    page.evaluate("EchoPilot.flush()")
    assert not Event.objects.filter(event_type="offline_test").exists()
    assert page.evaluate("EchoPilot.pending()") == 5
    assert _indexeddb_count(page) == 5

    page.context.set_offline(False)

    wait_until(lambda: len(_seqs()) >= 5, message="offline events not delivered")
    wait_for_js(page, "EchoPilot.pending() === 0")
    assert _seqs() == [0, 1, 2, 3, 4]
    assert sorted(
        str(u)
        for u in Event.objects.filter(event_type="offline_test").values_list("uuid", flat=True)
    ) == sorted(uuids)
    assert _indexeddb_count(page) == 0


def test_a_reload_while_offline_still_delivers_from_indexeddb(page, live_server, wait_until):
    _open_demo(page, live_server, wait_until)
    page.context.set_offline(True)
    _track(page, 3)
    wait_for_js(page, "EchoPilot.pending() === 3")
    assert _indexeddb_count(page) == 3
    with pytest.raises(Exception, match="ERR_INTERNET_DISCONNECTED"):
        page.reload()  # the page is gone, its memory queue with it
    # (Chromium's offline emulation lets the unloading page's beacon through, so the
    # events may arrive already; the next test takes the beacon out of the picture.)

    page.context.set_offline(False)
    page.goto(f"{live_server.url}{DEMO}?tab=after-reload")

    wait_until(lambda: len(_seqs()) >= 3, message="events kept in IndexedDB not delivered")
    wait_until(lambda: Event.objects.filter(url=f"{DEMO}?tab=after-reload").exists())
    # Delivered and forgotten: nothing queued, nothing left in IndexedDB to send again.
    wait_until(
        lambda: page.evaluate("EchoPilot.pending()") == 0 and _indexeddb_count(page) == 0,
        message="the SDK still holds events",
    )
    assert _seqs() == [0, 1, 2]
    assert _indexeddb_count(page) == 0


def test_events_of_a_tab_that_crashed_offline_are_sent_by_the_next_page(
    page, live_server, wait_until
):
    _open_demo(page, live_server, wait_until)
    page.context.set_offline(True)
    _track(page, 3)
    wait_for_js(page, "EchoPilot.pending() === 3")
    assert _indexeddb_count(page) == 3
    context = page.context
    # The tab crashes: no pagehide handler runs, no beacon goes out (Chromium's offline
    # emulation does not hold back the beacons of a page that is closed or navigated).
    with pytest.raises(Exception, match="ERR_ABORTED"):
        page.goto("chrome://crash")
    page.close()
    context.set_offline(False)
    next_page = context.new_page()
    assert not Event.objects.filter(event_type="offline_test").exists()

    opened_at = timezone.now()
    next_page.goto(f"{live_server.url}{DEMO}?tab=next")
    wait_until(
        lambda: len(_seqs()) >= 3, message="events kept in IndexedDB not delivered", on=next_page
    )
    wait_for_js(next_page, "EchoPilot.pending() === 0")
    assert _seqs() == [0, 1, 2]
    # Received after the next page opened: it sent them, not a beacon of the crashed tab.
    received = Event.objects.filter(event_type="offline_test").values_list("received_at", flat=True)
    assert all(at >= opened_at for at in received), (opened_at, list(received))
    assert _indexeddb_count(next_page) == 0


def test_page_hide_delivers_through_sendbeacon(page, live_server, wait_until, beacon_log):
    # A long debounce: only the page-hide path can deliver these events.
    _sdk_config(page, debounceMs=60000, maxWaitMs=60000)
    page.goto(f"{live_server.url}{DEMO}")
    wait_for_js(page, "EchoPilot.pending() === 1")  # the page view, not sent yet
    _track(page, 2, event_type="hidden_test")
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", {value: "hidden"});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    wait_until(lambda: Event.objects.count() == 3, message="visibilitychange hidden sent nothing")
    assert page.evaluate("EchoPilot.pending()") == 0
    assert _seqs("hidden_test") == [0, 1]

    # Leaving the page (pagehide) sends too.
    _track(page, 2, event_type="pagehide_test")
    page.goto("about:blank")
    wait_until(lambda: len(_seqs("pagehide_test")) == 2, message="pagehide sent nothing")

    beacons = beacon_log()
    assert len(beacons) == 2
    assert all(b["url"].endswith("/api/analytics/event") and b["queued"] for b in beacons)
    assert Event.objects.filter(event_type="page_view").count() == 1


def test_a_server_answering_503_for_a_while_loses_and_duplicates_nothing(
    page, live_server, wait_until
):
    _sdk_config(page, retryBaseMs=200)
    attempts: list[list[str]] = []

    def ingest(route):
        attempts.append([e["uuid"] for e in json.loads(route.request.post_data)["events"]])
        if len(attempts) <= 3:
            route.fulfill(
                status=503,
                headers={"Retry-After": "1"},
                json={"ok": False, "error": "Database unavailable."},
            )
        else:
            route.continue_()

    page.route("**/api/analytics/event", ingest)
    page.goto(f"{live_server.url}{DEMO}")
    wait_for_js(page, "EchoPilot.pending() === 1")
    uuids = _track(page, 6, event_type="retry_test")

    wait_until(
        lambda: len(attempts) >= 4 and page.evaluate("EchoPilot.pending()") == 0,
        timeout=20,
        message=f"{len(attempts)} attempts",
    )
    # No retry is left to come: nothing queued, no failure outstanding, all 7 sent.
    wait_for_js(
        page, "(s => s.queued === 0 && s.failures === 0 && s.sent === 7)(EchoPilot.stats())"
    )
    stats = page.evaluate("EchoPilot.stats()")
    assert stats["retried"] == 3 and stats["dropped"] == 0
    # Every retry carried the same events with the same uuids.
    assert len(attempts) == 4 and all(a == attempts[0] for a in attempts)
    assert Event.objects.count() == 7
    assert _seqs("retry_test") == [0, 1, 2, 3, 4, 5]
    stored = {str(u) for u in Event.objects.values_list("uuid", flat=True)}
    assert stored == set(attempts[0]) and set(uuids) <= stored


def test_a_batch_the_server_refuses_with_4xx_is_dropped_not_retried(page, live_server, wait_until):
    attempts: list[int] = []

    def ingest(route):
        attempts.append(len(json.loads(route.request.post_data)["events"]))
        if len(attempts) == 1:
            route.fulfill(status=400, json={"ok": False, "error": "Invalid events[0]"})
        else:
            route.continue_()

    page.route("**/api/analytics/event", ingest)
    page.goto(f"{live_server.url}{DEMO}")  # the page view: refused, dropped
    wait_for_js(page, "EchoPilot.stats().dropped === 1")
    _track(page, 2, event_type="after_refusal")
    wait_until(lambda: len(_seqs("after_refusal")) == 2)
    # The refused page view is not retried: the SDK dropped it, sent the 2 and holds nothing.
    wait_for_js(page, "(s => s.queued === 0 && s.dropped === 1 && s.sent === 2)(EchoPilot.stats())")
    assert attempts == [1, 2]
    assert not Event.objects.filter(event_type="page_view").exists()


def test_the_retry_queue_keeps_the_newest_100_events(page, live_server, wait_until):
    _open_demo(page, live_server, wait_until)
    page.context.set_offline(True)
    _track(page, 130)
    assert page.evaluate("EchoPilot.pending()") == 100
    page.context.set_offline(False)
    wait_until(lambda: len(_seqs()) >= 100)
    wait_for_js(page, "EchoPilot.pending() === 0")
    assert _seqs() == list(range(30, 130))
    assert page.evaluate("EchoPilot.stats().dropped") == 30
