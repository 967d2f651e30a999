"""The stream dashboard and the stats page in a real browser, for a new user: at 420 px
the KPI cards stack and the per-stream table scrolls sideways with a visible hint, and
/admin/stats moves its counters without a reload after a new event is tracked.

Data: one stream with one viewer (60 s of heartbeats two days ago), enough for a row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.aggregation import stream_stats_recompute
from streams.models import Organizer, Stream

from .conftest import wait_for_js

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_stream(django_db_setup, live_server):
    import requests

    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)
    base = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0)
    events = [
        {
            "type": "heartbeat",
            "videoTime": s,
            "ts": (base + timedelta(seconds=s)).isoformat().replace("+00:00", "Z"),
        }
        for s in (0, 15, 30, 45)
    ]
    response = requests.post(
        f"{live_server.url}/analytics/events",
        json={"streamId": "launch-party", "clientId": "c-1", "events": events},
        timeout=10,
    )
    assert response.status_code == 202
    assert stream_stats_recompute().ran


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_at_420_px_cards_stack_and_the_table_scrolls_with_a_hint(
    one_stream, browser, live_server, django_user_model, theme
):
    django_user_model.objects.create_superuser("narrow", "n@example.com", "e2e-pass-123")
    context = browser.new_context(viewport={"width": 420, "height": 900}, color_scheme=theme)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "narrow")
        page.fill("#id_password", "e2e-pass-123")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        page.goto(f"{live_server.url}/admin/analytics/streams")
        cards = page.locator(".kpi")
        assert cards.count() == 9
        boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
        assert all(box["width"] > 300 for box in boxes)
        assert len({round(box["x"]) for box in boxes}) == 1  # one column
        wrap = page.locator(".stats-table-wrap").first
        assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
        hint = page.locator(".stats-scroll-hint").first
        assert hint.is_visible()
        assert "Scroll sideways" in hint.inner_text()
        # The page itself does not scroll sideways: only the table does.
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        page.screenshot(path=f"var/screenshots/dashboard-420-{theme}.png", full_page=True)
    finally:
        context.close()


def test_at_1280_px_the_table_fits_without_the_hint_on_a_short_table(
    one_stream, page, live_server, staff_login
):
    staff_login()
    page.set_viewport_size({"width": 1600, "height": 900})
    page.goto(f"{live_server.url}/admin/analytics/streams/launch-party")
    wrap = page.locator(".stats-table-wrap").first
    fits = wrap.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert page.locator(".stats-scroll-hint").first.is_visible() == (not fits)


def test_the_stats_page_updates_its_counters_without_a_reload(
    live_server, page, staff_login, settings
):
    from analytics.live_counters import track
    from echonest_analytics.redis import get_redis

    settings.ADMIN_STATS_REFRESH_SECONDS = 1
    staff_login()
    page.goto(f"{live_server.url}/admin/stats")
    status = page.locator("#stats-refresh")
    assert status.get_attribute("data-refresh-seconds") == "1"
    page.evaluate("window.__sameDocument = true")
    card = page.locator('#glance li[data-event="song_add"] .figure')
    before = int(card.inner_text().replace(",", ""))
    track(get_redis(), "song_add", email="e2e-live@example.com")
    wait_for_js(
        page,
        f"""() => {{
            const el = document.querySelector('#glance li[data-event="song_add"] .figure');
            return el && Number(el.textContent.replace(/,/g, "")) === {before + 1};
        }}""",
        timeout=10_000,
    )
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert int(status.get_attribute("data-refreshed") or 0) >= 1
