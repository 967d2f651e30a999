"""`?format=` is the user's choice and wins over the Accept header (SPEC §5.5: "CSV with
`?format=csv`"), on every staff endpoint that offers CSV; an unknown format is a 400
that names the formats the endpoint offers, in that endpoint's own error shape.

The staff reports offering CSV: `/admin/analytics/streams`, `…/streams/summary` and
`…/streams/<key>` (echonest_analytics.renderers.CSVRenderer).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from streams.aggregation import stream_stats_recompute
from streams.models import Organizer, Stream, StreamProvider
from streams.selectors import DAILY_COLUMNS, STATS_COLUMNS, VIDEO_QUALITY_COLUMNS
from tests.streams.conftest import DESKTOP_UA, T0, batch, heartbeats

pytestmark = pytest.mark.django_db

RANGE = {"from": T0.date().isoformat(), "to": T0.date().isoformat()}
SUMMARY_COLUMNS = [
    "from",
    "to",
    "organizer",
    "streams",
    "events",
    "unique_viewers",
    "sessions",
    "total_watch_seconds",
    "avg_watch_seconds",
    "peak_concurrent_viewers",
    "buffer_ratio",
    "error_rate",
    "top_countries",
    "device_breakdown",
    "last_calculated_at",
    *VIDEO_QUALITY_COLUMNS,
]
# path, CSV header row, a key only that report's JSON has
CSV_REPORTS = [
    pytest.param("/admin/analytics/streams", STATS_COLUMNS, "streams", id="list"),
    pytest.param("/admin/analytics/streams/summary", SUMMARY_COLUMNS, "events", id="summary"),
    pytest.param("/admin/analytics/streams/launch-party", DAILY_COLUMNS, "days", id="detail"),
]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
OFFERED = "expected one of: json, html, csv"


@pytest.fixture
def watched(client) -> Stream:
    """launch-party of nightjar, one viewer for 60 s two days ago, stats recomputed."""
    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    stream = Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)
    StreamProvider.objects.create(
        stream=stream, provider="hls", external_id="https://cdn.example/l.m3u8", is_primary=True
    )
    response = client.post(
        "/analytics/events",
        data=json.dumps(batch("launch-party", "c-1", heartbeats(0, 15, 30, 45))),
        content_type="application/json",
        HTTP_USER_AGENT=DESKTOP_UA,
    )
    assert response.status_code == 202, response.content
    assert stream_stats_recompute().ran
    return stream


@pytest.fixture
def superuser_browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


@pytest.mark.parametrize("accept", ["application/json", "text/html", BROWSER_ACCEPT])
@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_format_csv_wins_over_the_accept_header(
    superuser_browser, watched, path, header, key, accept
):
    response = superuser_browser.get(path, {**RANGE, "format": "csv"}, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    rows = csv_rows(response)
    assert rows[0] == header
    assert len(rows) == 2  # one stream, one summary, one day
    assert dict(zip(rows[0], rows[1], strict=True))["unique_viewers"] == "1"


@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_format_csv_wins_for_an_api_client_too(admin_client_api, watched, path, header, key):
    response = admin_client_api.get(
        path, {**RANGE, "format": "csv"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert csv_rows(response)[0] == header


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_format_json_wins_over_a_browser_accept_header(
    superuser_browser, watched, path, header, key, accept
):
    response = superuser_browser.get(path, {**RANGE, "format": "json"}, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body["from"], body["to"]) == (RANGE["from"], RANGE["to"])
    assert key in body


@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_format_html_wins_over_a_json_accept_header(superuser_browser, watched, path, header, key):
    response = superuser_browser.get(
        path, {**RANGE, "format": "html"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Django administration" in html or 'id="header"' in html


def test_without_format_the_accept_header_still_decides(superuser_browser, watched):
    path = "/admin/analytics/streams"
    as_json = superuser_browser.get(path, RANGE, HTTP_ACCEPT="application/json")
    assert as_json["Content-Type"].startswith("application/json")
    as_page = superuser_browser.get(path, RANGE, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert as_page["Content-Type"].startswith("text/html")
    as_csv = superuser_browser.get(path, RANGE, HTTP_ACCEPT="text/csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    assert superuser_browser.get(path, RANGE, HTTP_ACCEPT="image/png").status_code == 406


@pytest.mark.parametrize("accept", ["application/json", "text/html", "text/csv"])
@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_an_unknown_format_is_a_400_naming_the_formats_offered(
    superuser_browser, watched, path, header, key, accept
):
    response = superuser_browser.get(path, {**RANGE, "format": "xlsx"}, HTTP_ACCEPT=accept)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" not in response.get("Content-Disposition", "")
    assert response.json() == {
        "error": "Invalid query parameters.",
        "details": {"format": f"unsupported format 'xlsx'; {OFFERED}"},
    }


def test_a_huge_unknown_format_is_not_echoed_whole(superuser_browser, watched):
    response = superuser_browser.get("/admin/analytics/streams", {"format": "x" * 10_000})
    assert response.status_code == 400
    assert response.json()["details"]["format"] == f"unsupported format '{'x' * 32}…'; {OFFERED}"


def test_an_unknown_format_on_bunny_sync_is_a_400_in_its_error_shape(staff_client):
    response = staff_client.post("/admin/analytics/streams/bunny-sync?format=xlsx")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid query parameters.",
        "details": {"format": "unsupported format 'xlsx'; expected one of: json, api"},
    }


def test_an_unknown_format_on_the_usage_summary_is_a_400_in_its_error_shape(staff_client):
    response = staff_client.get("/api/analytics/usage", {"format": "xlsx"})
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error": "unsupported format 'xlsx'; expected one of: json, api",
    }


@pytest.mark.parametrize(("path", "header", "key"), CSV_REPORTS)
def test_anonymous_format_csv_with_a_json_accept_header_is_still_refused(
    api_client, watched, path, header, key
):
    response = api_client.get(path, {"format": "csv"}, HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert b"launch-party" not in response.content
    assert "attachment" not in response.get("Content-Disposition", "")


def test_an_unknown_format_on_ingestion_is_a_rejection_in_the_ingestion_shape(client):
    # DRF-wide, so the anonymous endpoints answer it too, as SPEC §5 shapes rejections.
    details = {"format": "unsupported format 'xlsx'; expected one of: json"}
    playback = client.post("/analytics/events?format=xlsx", "{}", content_type="application/json")
    assert playback.status_code == 400
    assert playback.json() == {"error": "Invalid query parameters.", "details": details}
    telemetry = client.post("/api/analytics/event?format=xlsx", "{}", content_type="text/plain")
    assert telemetry.status_code == 400
    assert telemetry.json() == {
        "ok": False,
        "error": "Invalid query parameters.",
        "details": details,
    }
