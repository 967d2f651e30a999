"""Live viewers now (SPEC §6.5) on the stream page and the dashboard, in real Chromium:
the figure is there when the page opens and follows new viewers without a reload (every
LIVE_VIEWERS_REFRESH_SECONDS, shortened here), under the pages' CSP; screenshots in both
themes at desktop and phone width."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from streams.aggregation import stream_stats_recompute
from streams.models import Organizer, Stream

from .conftest import SCREENSHOTS, wait_for_js

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _watching(stream_key: str, client_id: str, *, ago: float = 2) -> None:
    """A player's batch whose newest event is `ago` seconds old, over real HTTP."""
    now = datetime.now(UTC)
    body = {
        "streamId": stream_key,
        "clientId": client_id,
        "sentAt": _iso(now),
        "events": [
            {"type": "play", "videoTime": 0, "ts": _iso(now - timedelta(seconds=ago + 15))},
            {"type": "heartbeat", "videoTime": 15, "ts": _iso(now - timedelta(seconds=ago))},
        ],
    }
    response = Client().post(
        "/analytics/events",
        json.dumps(body),
        content_type="application/json",
        HTTP_USER_AGENT=DESKTOP_UA,
    )
    assert response.status_code == 202, response.content


@pytest.fixture
def streams(db):
    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    launch = Stream.objects.create(
        key="launch-party", title="Launch party", organizer=organizer, status="live"
    )
    after = Stream.objects.create(
        key="after-party", title="After party", organizer=organizer, status="live"
    )
    _watching("launch-party", "c-1")
    _watching("after-party", "c-2")
    _watching("after-party", "c-3")
    stream_stats_recompute()
    return launch, after


def _figure(page) -> str:
    return page.locator('#live-viewers [data-live="viewers"]').inner_text()


def test_stream_page_follows_new_viewers_without_a_reload(
    streams, page, live_server, staff_login, settings
):
    settings.LIVE_VIEWERS_REFRESH_SECONDS = 1
    staff_login()
    page.goto(f"{live_server.url}/admin/analytics/streams/launch-party")
    panel = page.locator("#live-viewers")
    assert panel.get_attribute("data-refresh-seconds") == "1"
    assert _figure(page) == "1"
    page.evaluate("window.__sameDocument = true")
    _watching("launch-party", "c-4")
    _watching("launch-party", "c-5")
    wait_for_js(
        page,
        "document.querySelector('#live-viewers [data-live=\"viewers\"]').textContent === '3'",
        timeout=10_000,
    )
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator('#live-viewers [data-live="unit"]').inner_text() == "viewers"
    assert int(panel.get_attribute("data-refreshed")) >= 1


def test_dashboard_total_and_streams_follow_new_viewers(
    streams, page, live_server, staff_login, settings
):
    settings.LIVE_VIEWERS_REFRESH_SECONDS = 1
    staff_login()
    page.goto(f"{live_server.url}/admin/analytics/streams")
    assert _figure(page) == "3"
    items = page.locator("#live-viewers .live-streams li")
    assert items.all_inner_texts() == ["After party 2", "Launch party 1"]
    for n in range(4, 7):
        _watching("launch-party", f"c-{n}")
    wait_for_js(
        page,
        "document.querySelector('#live-viewers [data-live=\"viewers\"]').textContent === '6'",
        timeout=10_000,
    )
    assert items.all_inner_texts() == ["Launch party 4", "After party 2"]
    href = page.locator("#live-viewers .live-streams a").first.get_attribute("href")
    assert href == "/admin/analytics/streams/launch-party"


def test_a_failed_refresh_keeps_the_figure_and_says_so(
    streams, page, live_server, staff_login, settings
):
    settings.LIVE_VIEWERS_REFRESH_SECONDS = 1
    staff_login()
    page.route("**/admin/analytics/streams/launch-party/live", lambda route: route.abort())
    page.goto(f"{live_server.url}/admin/analytics/streams/launch-party")
    wait_for_js(page, "document.querySelector('#live-viewers').classList.contains('is-stale')")
    assert _figure(page) == "1"
    assert "refresh failed" in page.locator('#live-viewers [data-live="status"]').inner_text()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 420])
def test_screenshots_of_both_pages(streams, browser, live_server, django_user_model, theme, width):
    django_user_model.objects.create_superuser("shots", "shots@example.com", "pw-shots-123")
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=theme)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "shots")
        page.fill("#id_password", "pw-shots-123")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name, path in (
            ("dashboard", "/admin/analytics/streams"),
            ("stream", "/admin/analytics/streams/after-party"),
        ):
            page.goto(f"{live_server.url}{path}")
            panel = page.locator("#live-viewers")
            assert panel.is_visible()
            box = panel.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, box  # no overflow
            assert _figure(page) in ("3", "2")
            panel.scroll_into_view_if_needed()
            page.screenshot(
                path=str(SCREENSHOTS / f"live-viewers-{name}-{width}-{theme}.png"), full_page=False
            )
    finally:
        context.close()
