"""The stream analytics dashboard in a real browser: staff log in through the
admin form, reach the dashboard from the admin index, read the KPI figures, filter by
organizer and by date, sort the table, download the CSV, and open the stream pages, whose
Bunny block appears only for the Bunny stream. Light and dark themes are screenshotted
to var/screenshots/ for a person to look at.

Traffic goes in through the real ingestion endpoint of the live server, then
`stream_stats_recompute()` builds the daily figures, as the 5-minute job would.
Heartbeat interval 15 s: heartbeats at 0/15/30/45 s are 60 s of watching.

The data, over two UTC days counted back when the test runs (`seeded.day_before` = DAY_BEFORE
= three days ago, `seeded.day` = DAY = two days ago):

- "Launch party" (Nightjar Records, Bunny Stream video "guid-launch"):
  DAY_BEFORE: c-1 (desktop, DE) 60 s.
  DAY: c-1 again 60 s; c-2 (mobile, FR) 55 s playing + 5 s buffering = 60 s with one
  error, overlapping c-1 (peak 2). Bunny says DAY_BEFORE 3 views / 40 s, DAY 7 views /
  300 s, so by the §6.2 Bunny rule the days count 60 s and 300 s.
  → 2 viewers, 3 sessions, 360 s, peak 2, buffer 5/180 = 2.8 %, errors 1/3 = 33.3 %.
- "Moonlight show" (Other Label, HLS): DAY: c-3 (tablet, US) heartbeats 0…105 s = 120 s.
  → 1 viewer, 1 session, 120 s, peak 1, no buffering, no errors.

Over both: 2 streams, 3 viewers, 4 sessions, 480 s (8m 00s), 160 s (2m 40s) per viewer,
peak 2, buffer 5/300 = 1.7 %, errors 1/4 = 25.0 %, 8 + 6 + 8 = 22 events.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from streams.aggregation import stream_stats_recompute
from streams.models import BunnyVideoStats, Organizer, Stream, StreamProvider

pytestmark = pytest.mark.django_db(transaction=True)


DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
TABLET_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def ev(event_type: str, seconds: float, base: datetime) -> dict:
    ts = (base + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "videoTime": seconds, "ts": ts}


def heartbeats(*seconds: float, base: datetime) -> list[dict]:
    return [ev("heartbeat", s, base) for s in seconds]


@dataclass(frozen=True)
class SeededDays:
    day: date  # two days before the test's own UTC day
    day_before: date


@pytest.fixture
def seeded(django_db_setup, live_server, settings) -> SeededDays:
    """Two organizers, a Bunny and an HLS stream, and traffic sent over HTTP, on the two
    days before yesterday counted from the moment the test runs (not from the import).

    Asking for `django_db_setup` here creates the test database before the session's
    browser starts Playwright's event loop (Django refuses ORM calls beside a running
    loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set, which only happens per test)."""
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    t0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    day, day_before = t0.date(), t0.date() - timedelta(days=1)
    nightjar = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    other = Organizer.objects.create(name="Other Label", slug="other-label")
    launch = Stream.objects.create(key="launch-party", title="Launch party", organizer=nightjar)
    StreamProvider.objects.create(
        stream=launch,
        provider="bunny_stream",
        external_id="guid-launch",
        config={"library_id": "12345"},
        is_primary=True,
    )
    moon = Stream.objects.create(key="moonlight-show", title="Moonlight show", organizer=other)
    StreamProvider.objects.create(
        stream=moon, provider="hls", external_id="https://cdn.example/moon.m3u8", is_primary=True
    )
    fetched = datetime.now(UTC).replace(microsecond=0)
    for bunny_day, views, watch, countries in (
        (day_before, 3, 40.0, {"DE": 3}),
        (day, 7, 300.0, {"DE": 4, "FR": 3}),
    ):
        BunnyVideoStats.objects.create(
            library_id="12345",
            video_guid="guid-launch",
            day=bunny_day,
            views=views,
            watch_time_seconds=watch,
            country_views=countries,
            engagement_score=72.5,
            fetched_at=fetched,
        )

    def send(stream_key: str, client_id: str, events: list[dict], ua: str, country: str):
        response = requests.post(
            f"{live_server.url}/analytics/events",
            data=json.dumps({"streamId": stream_key, "clientId": client_id, "events": events}),
            headers={
                "Content-Type": "application/json",
                "User-Agent": ua,
                "CF-IPCountry": country,
            },
            timeout=10,
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"ingested": len(events)}

    send(
        "launch-party",
        "c-1",
        heartbeats(0, 15, 30, 45, base=t0 - timedelta(days=1)),
        DESKTOP_UA,
        "DE",
    )
    send("launch-party", "c-1", heartbeats(0, 15, 30, 45, base=t0), DESKTOP_UA, "DE")
    send(
        "launch-party",
        "c-2",
        [
            ev("play", 0, t0),
            ev("heartbeat", 15, t0),
            ev("buffer_start", 20, t0),
            ev("buffer_end", 25, t0),
            ev("error", 50, t0),
            ev("heartbeat", 60, t0),
        ],
        MOBILE_UA,
        "FR",
    )
    send("moonlight-show", "c-3", heartbeats(*range(0, 106, 15), base=t0), TABLET_UA, "US")
    assert stream_stats_recompute().ran
    return SeededDays(day=day, day_before=day_before)


def kpi_values(page) -> dict[str, str]:
    cards = page.locator(".kpi")
    return {
        cards.nth(i).get_attribute("data-kpi"): cards.nth(i).locator(".kpi-value").inner_text()
        for i in range(cards.count())
    }


def table_streams(page) -> list[str]:
    rows = page.locator("#result_list tbody tr")
    return [rows.nth(i).get_attribute("data-stream") for i in range(rows.count())]


def row_cells(page, stream_key: str) -> dict[str, str]:
    headers = page.locator("#result_list thead th")
    cells = page.locator(f'#result_list tbody tr[data-stream="{stream_key}"] td')
    return {
        headers.nth(i).text_content().strip(): cells.nth(i).text_content().strip()
        for i in range(cells.count())
    }


def test_staff_reads_filters_sorts_and_exports_the_stream_dashboard(
    seeded, live_server, page, staff_login, screenshot
):
    staff_login()
    page.locator("#analytics-dashboards").get_by_role("link", name="Stream analytics").click()
    page.wait_for_url(f"{live_server.url}/admin/analytics/streams")
    assert page.locator("h1").inner_text().startswith("Stream analytics")

    # KPI cards: the summary over both streams (default range: the last 30 days).
    assert kpi_values(page) == {
        "unique_viewers": "3",
        "sessions": "4",
        "watch_time": "8m 00s",
        "avg_watch": "2m 40s",
        "peak_concurrent": "2",
        "buffer_ratio": "1.7%",
        "error_rate": "25.0%",
        "events": "22",
        "streams": "2",
    }
    assert table_streams(page) == ["launch-party", "moonlight-show"]
    launch = row_cells(page, "launch-party")
    assert launch["Unique viewers"] == "2"
    assert launch["Sessions"] == "3"
    assert launch["Watch time"] == "6m 00s"
    assert launch["Peak concurrent"] == "2"
    assert launch["Buffer ratio"] == "2.8%"
    assert launch["Error rate"] == "33.3%"
    assert launch["Provider"] == "bunny_stream"
    screenshot("dashboard")

    # Sort: click "Watch time": ascending puts Moonlight (120 s) first, again reverses.
    header = page.locator("#result_list thead th", has_text="Watch time")
    header.click()
    assert table_streams(page) == ["moonlight-show", "launch-party"]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert table_streams(page) == ["launch-party", "moonlight-show"]
    assert header.get_attribute("aria-sort") == "descending"

    # Filter by organizer: the select offers both organizers; Other Label keeps Moonlight.
    options = page.locator("select[name=organizer] option")
    assert [options.nth(i).inner_text() for i in range(options.count())] == [
        "All organizers",
        "Nightjar Records",
        "Other Label",
    ]
    page.select_option("select[name=organizer]", "other-label")
    page.click("input[type=submit][value=Filter]")
    page.wait_for_url("**organizer=other-label**")
    assert table_streams(page) == ["moonlight-show"]
    figures = kpi_values(page)
    assert (figures["streams"], figures["unique_viewers"], figures["watch_time"]) == (
        "1",
        "1",
        "2m 00s",
    )
    assert row_cells(page, "moonlight-show")["Watch time"] == "2m 00s"

    # Filter by date: all organizers, DAY_BEFORE only: c-1's 60 s on Launch party, and
    # nothing yet on Moonlight.
    page.select_option("select[name=organizer]", "")
    page.fill("input[name=from]", seeded.day_before.isoformat())
    page.fill("input[name=to]", seeded.day_before.isoformat())
    page.click("input[type=submit][value=Filter]")
    page.wait_for_url(f"**to={seeded.day_before.isoformat()}**")
    assert table_streams(page) == ["launch-party", "moonlight-show"]
    launch = row_cells(page, "launch-party")
    assert (launch["Unique viewers"], launch["Sessions"], launch["Watch time"]) == (
        "1",
        "1",
        "1m 00s",
    )
    moon = row_cells(page, "moonlight-show")
    assert (moon["Unique viewers"], moon["Watch time"]) == ("0", "0s")
    assert kpi_values(page)["watch_time"] == "1m 00s"

    # CSV: the button downloads the same query as CSV.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert (
        download.suggested_filename == f"stream-stats_{seeded.day_before}_{seeded.day_before}.csv"
    )
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8"))))
    assert rows[0] == [  # SPEC §5.5 order
        "stream_id",
        "title",
        "organizer",
        "provider",
        "unique_viewers",
        "sessions",
        "total_watch_seconds",
        "avg_watch_seconds",
        "peak_concurrent_viewers",
        "buffer_ratio",
        "error_rate",
        "top_countries",
        "device_breakdown",
        "bunny",
        "last_calculated_at",
        # SPEC §6.5's video quality, after §5.5's columns
        "startup_time_median_ms",
        "startup_time_p95_ms",
        "exits_before_start",
        "playback_failure_rate",
        "rebuffer_frequency",
    ]
    by_stream = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(by_stream) == {"launch-party", "moonlight-show"}
    assert by_stream["launch-party"]["total_watch_seconds"] == "60"
    assert by_stream["launch-party"]["unique_viewers"] == "1"
    assert by_stream["moonlight-show"]["total_watch_seconds"] == "0"


def test_stream_pages_show_charts_and_the_bunny_block_only_for_bunny(
    seeded, live_server, page, staff_login, screenshot
):
    staff_login()
    page.goto(f"{live_server.url}/admin/analytics/streams")
    page.get_by_role("link", name="Launch party").click()
    page.wait_for_url("**/admin/analytics/streams/launch-party?**")
    assert page.locator("h1").inner_text() == "Launch party"
    figures = kpi_values(page)
    assert (figures["unique_viewers"], figures["watch_time"], figures["error_rate"]) == (
        "2",
        "6m 00s",
        "33.3%",
    )
    charts = page.locator(".stats-charts svg.stats-chart")  # the daily ones
    assert charts.count() == 3
    # 30 days in the default range: 30 bars in each bar chart, 30 points in the line.
    assert charts.nth(0).locator("rect.chart-bar").count() == 30
    assert charts.nth(1).locator("rect.chart-bar").count() == 30
    assert charts.nth(2).locator("circle.chart-point").count() == 30
    assert charts.nth(0).bounding_box()["height"] > 100
    bunny = page.locator("#bunny-block")
    assert bunny.is_visible()
    assert bunny.locator('[data-bunny="views"]').inner_text() == "10"
    assert bunny.locator('[data-bunny="watch_time"]').inner_text() == "5m 40s"
    assert bunny.locator('[data-bunny="engagement_score"]').inner_text() == "72.5"
    assert bunny.locator('[data-bunny="country_views"]').inner_text() == "DE 7, FR 3"
    day_row = page.locator(f'#daily_list tr[data-day="{seeded.day}"] td')
    cells = [day_row.nth(i).inner_text() for i in range(day_row.count())]
    # Video quality: no startup reported, no exit before start, no fatal error.
    assert cells[8:11] == ["\u2014", "0", "0%"], cells
    assert float(cells[11]) >= 0
    assert cells[:8] + cells[12:] == [
        seeded.day.isoformat(),
        "2",
        "2",
        "5m 00s",
        "2m 30s",
        "2",
        "4.2%",
        "50.0%",
        "10",
    ]
    screenshot("stream-bunny")

    page.goto(f"{live_server.url}/admin/analytics/streams")
    page.get_by_role("link", name="Moonlight show").click()
    page.wait_for_url("**/admin/analytics/streams/moonlight-show?**")
    assert page.locator("h1").inner_text() == "Moonlight show"
    assert page.locator(".stats-charts svg.stats-chart").count() == 3
    assert page.locator("#audience-retention svg.stats-chart-retention").count() == 1
    assert page.locator("#bunny-block").count() == 0
    assert page.get_by_text("Bunny Stream statistics").count() == 0
    assert kpi_values(page)["watch_time"] == "2m 00s"
    screenshot("stream-hls")


def test_dashboard_in_the_admins_dark_theme(seeded, live_server, page, staff_login, screenshot):
    staff_login()
    # Django 5.2's admin theme switcher keeps the choice in localStorage["theme"].
    page.add_init_script("window.localStorage.setItem('theme', 'dark')")
    page.goto(f"{live_server.url}/admin/analytics/streams")
    assert page.locator("html").get_attribute("data-theme") == "dark"
    body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    card_fg = page.evaluate("getComputedStyle(document.querySelector('.kpi-value')).color")
    assert body_bg != "rgb(255, 255, 255)"  # dark background
    assert card_fg != "rgb(51, 51, 51)"  # light text, not the light theme's
    assert kpi_values(page)["streams"] == "2"
    screenshot("dashboard-dark")
    page.get_by_role("link", name="Launch party").click()
    page.wait_for_url("**/admin/analytics/streams/launch-party?**")
    assert page.locator("#bunny-block").is_visible()
    screenshot("stream-bunny-dark")
