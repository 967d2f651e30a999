"""The stream analytics dashboard (SPEC §5.5): the SVG chart helper, the page per stream
(`/admin/analytics/streams/<key>`: JSON, CSV, HTML, the organizer boundary), the Bunny
block, the dashboard's filters and KPI cards, and the routing next to `summary` and
`bunny-sync`.

Heartbeat interval 15 s: heartbeats at 0/15/30/45 s are 60 s of watching.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.urls import resolve, reverse

from streams.aggregation import stream_stats_recompute
from streams.apis import (
    BunnySyncApi,
    StreamStatsDetailApi,
    StreamStatsListApi,
    StreamStatsSummaryApi,
)
from streams.charts import (
    compact_number,
    duration_axis_text,
    duration_text,
    percent_text,
    svg_chart,
)
from streams.models import BunnyVideoStats, Stream, StreamProvider
from streams.selectors import DAILY_COLUMNS

from .conftest import T0, ev, heartbeats

LIST = "/admin/analytics/streams"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DAY = T0.date()  # two days ago: the traffic day
DAY_BEFORE = DAY - timedelta(days=1)
RANGE = {"from": DAY_BEFORE.isoformat(), "to": DAY.isoformat()}
SVG = "{http://www.w3.org/2000/svg}"


def detail(key: str) -> str:
    return f"/admin/analytics/streams/{key}"


def svg_tree(svg: str) -> ElementTree.Element:
    """The chart must be well-formed XML (it is inlined into the page)."""
    return ElementTree.fromstring(str(svg))  # noqa: S314 — our own markup, not untrusted


# --- The SVG chart helper -------------------------------------------------------------

THREE_DAYS = [(date(2026, 11, 19), 2), (date(2026, 11, 20), 5), (date(2026, 11, 21), 3)]


def test_bar_chart_draws_one_bar_per_day_with_day_and_value_labels():
    svg = svg_chart(THREE_DAYS, title="Unique viewers per day")
    root = svg_tree(svg)
    bars = root.findall(f"{SVG}rect[@class='chart-bar']")
    assert len(bars) == 3
    x_labels = [t.text for t in root.findall(f"{SVG}text[@class='chart-x-label']")]
    assert x_labels == ["Nov 19", "Nov 20", "Nov 21"]
    # y axis: 0, half and the top: the largest count rounded up to an even step, so
    # the half-way tick is a whole number
    y_labels = [t.text for t in root.findall(f"{SVG}text[@class='chart-y-label']")]
    assert y_labels == ["0", "3", "6"]
    assert root.find(f"{SVG}title").text == "Unique viewers per day"
    # the tallest bar is 5/6 of the plot
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == max(heights)
    assert heights[0] == pytest.approx(heights[1] * 2 / 5, abs=0.05)
    # each bar says its day and value on hover
    assert [b.find(f"{SVG}title").text for b in bars] == [
        "2026-11-19: 2",
        "2026-11-20: 5",
        "2026-11-21: 3",
    ]


def test_line_chart_draws_one_polyline_and_one_point_per_day():
    root = svg_tree(svg_chart(THREE_DAYS, title="Peak concurrent", kind="line"))
    assert len(root.findall(f"{SVG}polyline[@class='chart-line']")) == 1
    assert len(root.findall(f"{SVG}circle[@class='chart-point']")) == 3
    assert not root.findall(f"{SVG}rect[@class='chart-bar']")
    points = root.find(f"{SVG}polyline").get("points").split()
    assert len(points) == 3


def test_chart_of_no_data_draws_the_axes_and_says_so():
    root = svg_tree(svg_chart([], title="Watch time"))
    assert not root.findall(f"{SVG}rect[@class='chart-bar']")
    assert root.find(f"{SVG}text[@class='chart-empty']").text == "No data in this range"
    assert [t.text for t in root.findall(f"{SVG}text[@class='chart-y-label']")] == [
        "0",
        "1",
        "2",
    ]


def test_chart_of_zero_values_has_flat_bars_and_a_scale():
    root = svg_tree(svg_chart([(DAY_BEFORE, 0), (DAY, 0)], title="Viewers"))
    bars = root.findall(f"{SVG}rect[@class='chart-bar']")
    assert [float(b.get("height")) for b in bars] == [0.0, 0.0]
    assert root.findall(f"{SVG}text[@class='chart-y-label']")[-1].text == "2"


@pytest.mark.parametrize(
    ("largest", "top"), [(1, "2"), (3, "4"), (5, "6"), (7, "10"), (11, "20"), (450, "600")]
)
def test_count_axis_tops_keep_the_half_way_tick_whole(largest, top):
    root = svg_tree(svg_chart([(DAY, largest)], title="Viewers"))
    assert root.findall(f"{SVG}text[@class='chart-y-label']")[-1].text == top


def test_fractional_values_use_the_plain_nice_scale():
    root = svg_tree(svg_chart([(DAY, 2.2)], title="Ratio"))
    labels = [t.text for t in root.findall(f"{SVG}text[@class='chart-y-label']")]
    assert labels == ["0", "1.2", "2.5"]


def test_chart_of_huge_and_broken_values_stays_inside_its_box():
    points = [
        (date(2026, 1, 1), 1e15),
        (date(2026, 1, 2), float("inf")),
        (date(2026, 1, 3), float("nan")),
        (date(2026, 1, 4), None),
        (date(2026, 1, 5), -40),
        (date(2026, 1, 6), 12_345_678_901),
    ]
    for kind in ("bar", "line"):
        svg = str(svg_chart(points, title="Big", kind=kind))
        root = svg_tree(svg)
        width, height = (float(n) for n in root.get("viewBox").split()[2:])
        numbers = [float(n) for n in re.findall(r'(?:x|y|cx|cy|height|width)="(-?[\d.]+)"', svg)]
        numbers += [
            float(n)
            for p in root.findall(f"{SVG}polyline")
            for n in re.split("[ ,]", p.get("points"))
        ]
        assert all(math.isfinite(n) and -1 <= n <= max(width, height) + 1 for n in numbers)
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
        assert root.findall(f"{SVG}text[@class='chart-y-label']")[-1].text == "2.0e+15"


def test_chart_of_many_days_labels_at_most_five_days_first_and_last_included():
    start = date(2020, 1, 1)
    points = [(start + timedelta(days=i), i % 17) for i in range(3660)]
    root = svg_tree(svg_chart(points, title="Ten years"))
    assert len(root.findall(f"{SVG}rect[@class='chart-bar']")) == 3660
    labels = [t.text for t in root.findall(f"{SVG}text[@class='chart-x-label']")]
    assert len(labels) == 5
    assert labels[0] == "Jan 01" and labels[-1] == points[-1][0].strftime("%b %d")


def test_chart_escapes_its_title():
    svg = str(svg_chart(THREE_DAYS, title="<script>alert(1)</script>"))
    assert "<script>" not in svg
    assert svg_tree(svg).find(f"{SVG}title").text == "<script>alert(1)</script>"


def test_chart_axis_of_durations_uses_steps_that_read_well():
    def y_labels(seconds):
        root = svg_tree(svg_chart([(DAY, seconds)], title="Watch", unit="seconds"))
        return [t.text for t in root.findall(f"{SVG}text[@class='chart-y-label']")]

    assert y_labels(5400) == ["0s", "1h", "2h"]
    assert y_labels(45) == ["0s", "30s", "1m"]
    assert y_labels(0) == ["0s", "0.5s", "1s"]
    assert y_labels(300) == ["0s", "2m 30s", "5m"]
    assert y_labels(1500) == ["0s", "15m", "30m"]
    assert y_labels(4 * 3600 + 1) == ["0s", "3h", "6h"]
    assert y_labels(3 * 86400) == ["0s", "50h", "100h"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "0s"),
        (0, "0s"),
        (2.5, "2.5s"),
        (45, "45s"),
        (60, "1m 00s"),
        (185, "3m 05s"),
        (3600, "1h 00m"),
        (7260, "2h 01m"),
        (360_000_000, "100,000h 00m"),
        (float("nan"), "0s"),
    ],
)
def test_durations_read_in_hours_minutes_and_seconds(seconds, text):
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "0.5s"), (30, "30s"), (150, "2m 30s"), (600, "10m"), (5400, "1h 30m")],
)
def test_axis_durations_are_short(seconds, text):
    assert duration_axis_text(seconds) == text


@pytest.mark.parametrize(
    ("ratio", "text"), [(0, "0%"), (None, "0%"), (5 / 120, "4.2%"), (1.0, "100.0%")]
)
def test_percentages_have_one_decimal(ratio, text):
    assert percent_text(ratio) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (950, "950"), (2.5, "2.5"), (12_500, "12.5k"), (3e9, "3B"), (1e6, "1M")],
)
def test_axis_numbers_are_compact(value, text):
    assert compact_number(value) == text


# --- Fixtures: an HLS stream and a Bunny stream of A, an HLS stream of B ----------------


@pytest.fixture
def bunny_stream(organizer) -> Stream:
    s = Stream.objects.create(key="bunny-show", title="Bunny show", organizer=organizer)
    StreamProvider.objects.create(
        stream=s,
        provider="bunny_stream",
        external_id="guid-bunny-show",
        config={"library_id": "12345"},
        is_primary=True,
    )
    BunnyVideoStats.objects.create(
        library_id="12345",
        video_guid="guid-bunny-show",
        day=DAY,
        views=7,
        watch_time_seconds=300,  # more than the 60 s we tracked: the day's total is 300 s
        country_views={"DE": 5, "FR": 2},
        country_watch_time={"DE": 200, "FR": 100},
        engagement_score=81.5,
        fetched_at=datetime(2026, 11, 21, 6, 30, tzinfo=UTC),
    )
    return s


@pytest.fixture
def other_stream(other_organizer) -> Stream:
    s = Stream.objects.create(key="other-show", title="Other show", organizer=other_organizer)
    StreamProvider.objects.create(
        stream=s, provider="hls", external_id="https://cdn.example/o.m3u8", is_primary=True
    )
    return s


@pytest.fixture
def watched(stream, bunny_stream, other_stream, send_batch):
    """launch-party (HLS): c-1 60 s and c-2 60 s with 5 s buffering and an error, both on
    DAY, overlapping (peak 2). bunny-show: c-3 60 s on DAY. other-show: c-4 60 s."""
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    send_batch(
        "c-2",
        [
            ev("play", 0),
            ev("heartbeat", 15),
            ev("buffer_start", 20),
            ev("buffer_end", 25),
            ev("error", 50, extra={"code": "NETWORK"}),
            ev("heartbeat", 60),
        ],
    )
    send_batch("c-3", heartbeats(0, 15, 30, 45), stream_key="bunny-show")
    send_batch("c-4", heartbeats(0, 15, 30, 45), stream_key="other-show")
    assert stream_stats_recompute().ran


@pytest.fixture
def superuser_browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def member_browser(staff_user, organizer) -> Client:
    """Staff (not superuser) who is a member of organizer A ("nightjar") only."""
    organizer.members.add(staff_user)
    client = Client()
    client.force_login(staff_user)
    return client


def html_of(client: Client, path: str, **params) -> str:
    response = client.get(path, params, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def kpis(html: str) -> dict[str, str]:
    return dict(
        re.findall(
            r'data-kpi="(\w+)"><span class="kpi-label">[^<]*</span>'
            r'<span class="kpi-value"[^>]*>([^<]*)</span>',
            html,
        )
    )


# --- The page per stream: JSON, CSV, HTML ------------------------------------------------


def test_stream_page_json_has_the_daily_rows_and_the_range_totals(admin_client_api, watched):
    response = admin_client_api.get(detail("launch-party"), RANGE, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == DAY_BEFORE.isoformat() and body["to"] == DAY.isoformat()
    assert body["stream"]["stream_id"] == "launch-party"
    assert body["stream"]["organizer"] == "nightjar"
    # One row per day of the range, oldest first; nothing on the day before.
    assert [d["day"] for d in body["days"]] == [DAY_BEFORE.isoformat(), DAY.isoformat()]
    assert body["days"][0]["unique_viewers"] == 0 and body["days"][0]["sessions"] == 0
    day = body["days"][1]
    assert set(day) == set(DAILY_COLUMNS)
    # c-1: 60 s; c-2: 55 s playing + 5 s buffering = 60 s, one error.
    assert day["unique_viewers"] == 2
    assert day["sessions"] == 2
    assert day["total_watch_seconds"] == 120.0
    assert day["avg_watch_seconds"] == 60.0
    assert day["peak_concurrent_viewers"] == 2
    assert day["buffer_ratio"] == pytest.approx(5 / 120, abs=1e-6)
    assert day["error_rate"] == 0.5
    assert day["events"] == 10
    totals = body["totals"]
    assert totals["unique_viewers"] == 2
    assert totals["total_watch_seconds"] == 120.0
    assert totals["peak_concurrent_viewers"] == 2
    assert totals["error_rate"] == 0.5
    assert totals["bunny"] is None


def test_stream_page_csv_is_one_row_per_day(admin_client_api, watched):
    response = admin_client_api.get(detail("launch-party"), {**RANGE, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    filename = f"stream-launch-party_{DAY_BEFORE}_{DAY}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == DAILY_COLUMNS
    assert [r[0] for r in rows[1:]] == [DAY_BEFORE.isoformat(), DAY.isoformat()]
    last = dict(zip(rows[0], rows[2], strict=True))
    assert last["unique_viewers"] == "2"
    assert last["total_watch_seconds"] == "120"
    assert last["error_rate"] == "0.5"


def test_stream_page_html_shows_figures_charts_and_qoe(superuser_browser, watched):
    html = html_of(superuser_browser, detail("launch-party"), **RANGE)
    assert 'id="header"' in html  # inside the admin
    assert "<h1>Launch party</h1>" in html
    assert kpis(html) == {
        "unique_viewers": "2",
        "sessions": "2",
        "watch_time": "2m 00s",
        "avg_watch": "1m 00s",
        "peak_concurrent": "2",
        "buffer_ratio": "4.2%",
        "error_rate": "50.0%",
    }
    svg = '<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart'
    assert html.count(svg) == 4  # three daily charts and the audience retention curve
    assert html.count(f"{svg} stats-chart-retention") == 1
    for caption in (
        "Unique viewers per day",
        "Watch time per day",
        "Peak concurrent viewers per day",
    ):
        assert f"<figcaption>{caption}</figcaption>" in html
    assert "Buffer ratio (range)</th><td>4.2%</td>" in html
    assert "Error rate (range)</th><td>50.0%</td>" in html
    # Video quality (SPEC §6.5): no player here reports a startup time or a fatal error.
    assert 'data-vq="startup_median"' in html and "How to read the video quality" in html
    assert 'id="audience-retention"' in html
    # per-day QoE in the daily table
    assert f'<tr data-day="{DAY}">' in html
    assert "<td>4.2%</td>" in html and "<td>50.0%</td>" in html
    assert "desktop</th><td>2 viewers</td>" in html
    assert "format=csv" in html
    assert 'id="bunny-block"' not in html
    assert "Bunny Stream statistics" not in html


def test_bunny_block_appears_for_a_bunny_stream_with_bunnys_figures(superuser_browser, watched):
    html = html_of(superuser_browser, detail("bunny-show"), **RANGE)
    assert 'id="bunny-block"' in html
    assert "Bunny Stream statistics" in html
    assert '<td data-bunny="views">7</td>' in html
    assert '<td data-bunny="watch_time" title="300 s">5m 00s</td>' in html
    assert '<td data-bunny="engagement_score">81.5</td>' in html
    assert '<td data-bunny="country_views">DE 5, FR 2</td>' in html
    assert '<td data-bunny="fetched_at">2026-11-21 06:30</td>' in html
    # §6.2 Bunny rule: the day's total is Bunny's 300 s, not the 60 s tracked.
    assert kpis(html)["watch_time"] == "5m 00s"


def test_bunny_figures_in_the_stream_json(admin_client_api, watched):
    body = admin_client_api.get(detail("bunny-show"), RANGE, HTTP_ACCEPT="application/json").json()
    bunny = body["totals"]["bunny"]
    assert bunny["views"] == 7
    assert bunny["watch_time_seconds"] == 300.0
    assert bunny["engagement_score"] == 81.5
    assert body["days"][1]["total_watch_seconds"] == 300.0


# --- Who may see a stream page ---------------------------------------------------------


def test_staff_of_one_organizer_gets_404_for_another_organizers_stream(member_browser, watched):
    assert member_browser.get(detail("launch-party"), HTTP_ACCEPT=BROWSER_ACCEPT).status_code == 200
    for accept in ("application/json", BROWSER_ACCEPT):
        response = member_browser.get(detail("other-show"), HTTP_ACCEPT=accept)
        assert response.status_code == 404
        assert "Other show" not in response.content.decode()


def test_unknown_stream_is_404(admin_client_api, watched):
    response = admin_client_api.get(detail("no-such-stream"), HTTP_ACCEPT="application/json")
    assert response.status_code == 404


def test_superuser_sees_every_organizers_stream(superuser_browser, watched):
    assert "<h1>Other show</h1>" in html_of(superuser_browser, detail("other-show"))


def test_anonymous_api_client_is_refused_a_stream_page(api_client, watched):
    response = api_client.get(detail("launch-party"), HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert "total_watch_seconds" not in response.content.decode()


def test_anonymous_browser_is_sent_to_the_admin_login(watched):
    response = Client().get(detail("launch-party"), HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_logged_in_non_staff_is_refused(django_user_model, watched):
    user = django_user_model.objects.create_user("listener", "l@example.com", "pw-listener-1")
    client = Client()
    client.force_login(user)
    assert client.get(detail("launch-party"), HTTP_ACCEPT=BROWSER_ACCEPT).status_code == 403


def test_stream_page_with_a_bad_date_is_a_400(admin_client_api, watched):
    response = admin_client_api.get(
        detail("launch-party"), {"from": "2026-02-30"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "from" in response.json()["details"]


# --- The dashboard: KPI cards, filters, links -------------------------------------------


def test_dashboard_kpi_cards_are_the_summary_over_all_streams(superuser_browser, watched):
    html = html_of(superuser_browser, LIST, **RANGE)
    # 4 viewers; watch 120 + 300 (Bunny rule) + 60 = 480 s; 5 s buffering of 240 s
    # tracked; one error in 4 sessions; 10 + 4 + 4 events; 3 streams.
    assert kpis(html) == {
        "unique_viewers": "4",
        "sessions": "4",
        "watch_time": "8m 00s",
        "avg_watch": "2m 00s",
        "peak_concurrent": "2",
        "buffer_ratio": "2.1%",
        "error_rate": "25.0%",
        "events": "18",
        "streams": "3",
    }


def test_dashboard_organizer_filter_offers_the_organizers_the_user_may_see(
    superuser_browser, member_browser, watched
):
    everyone = html_of(superuser_browser, LIST)
    assert '<option value="nightjar">Nightjar Records</option>' in everyone
    assert '<option value="other-label">Other Label</option>' in everyone
    mine = html_of(member_browser, LIST)
    assert '<option value="nightjar">Nightjar Records</option>' in mine
    assert "other-label" not in mine
    filtered = html_of(superuser_browser, LIST, organizer="other-label", **RANGE)
    assert '<option value="other-label" selected>Other Label</option>' in filtered
    assert 'data-stream="other-show"' in filtered
    assert 'data-stream="launch-party"' not in filtered
    assert kpis(filtered)["streams"] == "1"


def test_dashboard_links_each_title_to_its_page_and_offers_the_csv(superuser_browser, watched):
    html = html_of(superuser_browser, LIST, **RANGE)
    link = reverse("stream-stats-detail", args=["bunny-show"])
    assert (
        f'<a href="{link}?from={DAY_BEFORE}&amp;to={DAY}"><strong>Bunny show</strong></a>' in html
    )
    assert f'href="?from={DAY_BEFORE}&amp;to={DAY}&amp;format=csv"' in html
    assert "/static/streams/dashboard.js" in html
    assert "/static/streams/dashboard.css" in html
    assert "data-sortable" in html
    assert "cdn" not in html.lower().replace("cdn.example", "")


def test_admin_index_links_stream_analytics_next_to_product_stats(superuser_browser):
    html = html_of(superuser_browser, "/admin/")
    assert f'<a href="{reverse("stream-stats")}">Stream analytics</a>' in html
    assert "Product stats" in html


# --- Routing: nothing shadowed ----------------------------------------------------------


def test_summary_and_bunny_sync_still_resolve_to_their_views():
    assert resolve("/admin/analytics/streams").func.view_class is StreamStatsListApi
    assert resolve("/admin/analytics/streams/summary").func.view_class is StreamStatsSummaryApi
    assert resolve("/admin/analytics/streams/bunny-sync").func.view_class is BunnySyncApi
    match = resolve("/admin/analytics/streams/launch-party")
    assert match.func.view_class is StreamStatsDetailApi
    assert match.kwargs == {"key": "launch-party"}
    assert reverse("stream-stats-detail", args=["launch-party"]) == detail("launch-party")


def test_summary_still_answers_the_summary(admin_client_api, watched):
    body = admin_client_api.get(
        "/admin/analytics/streams/summary", RANGE, HTTP_ACCEPT="application/json"
    ).json()
    assert body["streams"] == 3
    assert "days" not in body


@pytest.mark.django_db
def test_bunny_sync_still_answers_post_only(admin_client_api):
    assert admin_client_api.get("/admin/analytics/streams/bunny-sync").status_code == 405
