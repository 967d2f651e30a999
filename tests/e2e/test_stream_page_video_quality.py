"""The stream page's video quality panel and audience retention curve in a real browser,
in both themes, at 1280 px and at a phone's 420 px: the figures read as the data says,
the curve is drawn, and nothing makes the page itself scroll sideways. Screenshots go to
var/screenshots/ (stream-video-quality-<width>-<theme>.png) for a person to look at.

Data: one on-demand stream (a 600 s video) watched on one day by 6 viewers: startups
0.8 s to 3.4 s, one who left before the first frame, one fatal error, some rebuffering.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.aggregation import stream_stats_recompute
from streams.models import Organizer, Stream, StreamProvider

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db(transaction=True)

BASE = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY = BASE.date().isoformat()


def _at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _view(startup_ms: int | None, watched_to: int, *, rebuffers: int = 0, fatal=False) -> list:
    extra = {"duration": 600, **({"startupMs": startup_ms} if startup_ms else {})}
    events = [{"type": "play", "videoTime": 0, "ts": _at(0), "extra": extra}]
    for t in range(15, watched_to + 1, 15):
        events.append({"type": "heartbeat", "videoTime": t, "ts": _at(t)})
    for n in range(rebuffers):
        t = 20 + n * 30
        events.append({"type": "buffer_start", "videoTime": t, "ts": _at(t + 0.5)})
        events.append({"type": "buffer_end", "videoTime": t, "ts": _at(t + 2.5)})
    if fatal:
        t = watched_to + 1
        events.append({"type": "error", "videoTime": t, "ts": _at(t), "extra": {"fatal": True}})
    return sorted(events, key=lambda e: e["ts"])


@pytest.fixture
def watched_vod(django_db_setup, live_server):
    import requests

    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    stream = Stream.objects.create(
        key="studio-session", title="Studio session", organizer=organizer
    )
    StreamProvider.objects.create(
        stream=stream, provider="hls", external_id="https://cdn.example/s.m3u8", is_primary=True
    )
    views = {
        "c-1": _view(800, 600),
        "c-2": _view(1200, 450, rebuffers=2),
        "c-3": _view(1500, 300),
        "c-4": _view(2100, 150, rebuffers=1),
        "c-5": _view(3400, 60, fatal=True),
        "c-6": [{"type": "play", "videoTime": 0, "ts": _at(0)}],  # left before the first frame
    }
    for client_id, events in views.items():
        response = requests.post(
            f"{live_server.url}/analytics/events",
            json={"streamId": "studio-session", "clientId": client_id, "events": events},
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
    assert stream_stats_recompute().ran
    return stream


@pytest.mark.parametrize("width", [1280, 420])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_stream_page_shows_video_quality_and_the_audience_curve(
    watched_vod, browser, live_server, django_user_model, theme, width
):
    django_user_model.objects.create_superuser("vq", "vq@example.com", "e2e-pass-123")
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=theme)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "vq")
        page.fill("#id_password", "e2e-pass-123")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        page.goto(f"{live_server.url}/admin/analytics/streams/studio-session?from={DAY}&to={DAY}")

        figures = {
            row.get_attribute("data-vq"): row.locator("td").inner_text()
            for row in page.locator("tr[data-vq]").all()
        }
        assert figures == {
            "startup_median": "1.50 s",  # 800, 1200, 1500, 2100, 3400 ms
            "startup_p95": "3.40 s",
            "exits_before_start": "1",
            "playback_failure_rate": "16.7%",  # 1 of 6
            "rebuffer_frequency": figures["rebuffer_frequency"],
        }
        assert figures["rebuffer_frequency"].endswith("/ min")
        assert float(figures["rebuffer_frequency"].split()[0]) > 0

        chart = page.locator("#audience-retention svg.stats-chart-retention")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box["width"] > 300 and box["height"] > 100
        caption = page.locator("#audience-retention figcaption").inner_text()
        caption = caption.replace("\xa0", " ")
        assert DAY in caption and "6 sessions" in caption and "600 s" in caption
        # 3 of 6 sessions reached half the video (c-1, c-2, c-3).
        tips = page.locator("#audience-retention circle title").all_text_contents()
        assert len(tips) == 11  # every 10 %
        assert "50% of the video: 50.0% of sessions" in tips
        legend = page.locator("#video-quality-legend")
        assert "Exits before video start" in legend.inner_text()
        # The page itself does not scroll sideways (only the daily table may).
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(SCREENSHOTS / f"stream-video-quality-{width}-{theme}.png"), full_page=True
        )
    finally:
        context.close()
