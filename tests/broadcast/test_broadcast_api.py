"""SPEC §9.4 staff endpoints: every path answers JSON, CSV and a page to staff, nothing
to anyone else, and 404 for a station of another organizer."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from streams.broadcast.models import BroadcastLogEntry
from streams.broadcast.play_stats import broadcast_stats_refresh
from tests.broadcast.staff_support import make_encoder, make_station, play, song, staff_user

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "",
    "top-songs",
    "genres",
    "heatmap",
    "songs/7/plays",
    "listeners",
    "listeners/daily",
    "requests",
    "log",
    "health",
    "health/history",
    "alerts",
    "uptime",
    "reports/",
    "reports/daily-broadcast",
    "reports/song-history?song_id=7",
    "reports/listener-trend",
    "reports/request-log",
    "reports/stream-uptime",
]


def url(path: str, key: str = "night-radio") -> str:
    return f"/admin/broadcast/{key}/{path}"


def with_format(path: str, fmt: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}format={fmt}"


@pytest.fixture
def station():
    station = make_station()
    make_encoder(station)
    tune = song(station, "7", "Nightcall", genre="Synthwave")
    play(station, tune, timezone.now() - timedelta(hours=1), crossfade=True)
    broadcast_stats_refresh(station=station)
    return station


@pytest.fixture
def staff(client, station):
    client.force_login(staff_user())
    return client


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_gets_401_and_non_staff_403(client, station, django_user_model, path):
    assert client.get(url(path), HTTP_ACCEPT="application/json").status_code in (401, 403)
    user = django_user_model.objects.create_user("plain", password="pw")
    token = Token.objects.create(user=user)
    answer = client.get(
        url(path), HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert answer.status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_staff_of_another_organizer_get_404(client, station, path):
    client.force_login(staff_user("other", organizer="elsewhere"))
    assert client.get(url(path), HTTP_ACCEPT="application/json").status_code == 404


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_answers_json_page_and_csv_with_a_header(staff, path):
    assert staff.get(url(path), HTTP_ACCEPT="application/json").status_code == 200
    page = staff.get(url(path), HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Night Radio" in page.content
    answer = staff.get(with_format(url(path), "csv"), HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")  # ?format= wins over Accept
    header = next(csv.reader(io.StringIO(answer.content.decode())))
    assert len(header) >= 2 and all(header)


def test_top_songs_shape(staff):
    body = staff.get(url("top-songs?period=all"), HTTP_ACCEPT="application/json").json()
    assert body["period"] == "all"
    [row] = body["songs"]
    assert set(row) == {
        "song_id", "title", "artist", "genre", "play_count", "total_played_ms", "skip_count",
        "crossfade_count", "avg_duration_ms", "avg_played_ms", "last_played_at",
    }  # fmt: skip
    assert (row["song_id"], row["play_count"], row["crossfade_count"]) == ("7", 1, 1)


def test_superuser_sees_every_station(client, station):
    client.force_login(staff_user("root", superuser=True, organizer=None))
    assert client.get(url("genres"), HTTP_ACCEPT="application/json").status_code == 200
    stations = client.get("/admin/broadcast/", HTTP_ACCEPT="application/json").json()["stations"]
    assert [s["key"] for s in stations] == ["night-radio"]


@pytest.mark.parametrize(
    "path, param",
    [
        ("top-songs?period=1y", "period"),
        ("top-songs?limit=0", "limit"),
        ("heatmap?from=2026-13-01", "from"),
        ("heatmap?from=2026-06-10&to=2026-06-01", "from"),
        ("listeners?period=2h", "period"),
        ("listeners?encoder=/nope", "encoder"),
        ("log?level=fatal", "level"),
        ("log?from=yesterday", "from"),
        ("health/history?minutes=99999999", "minutes"),
        ("reports/song-history", "song_id"),
        ("reports/listener-trend?period=year", "period"),
        ("top-songs?format=xml", "format"),
    ],
)
def test_bad_input_is_a_clear_400(staff, path, param):
    answer = staff.get(url(path), HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    assert param in answer.json()["details"]


def test_log_filters_search_paging_and_delete(staff, station):
    now = timezone.now()
    for i, (level, event) in enumerate(
        [("info", "track_loaded"), ("error", "stream_disconnected"), ("warn", "buffer_low")]
    ):
        BroadcastLogEntry.objects.create(
            station=station, timestamp=now - timedelta(minutes=i), level=level, category="stream",
            event=event, message=f"Message {i}",
        )  # fmt: skip
    BroadcastLogEntry.objects.create(
        station=station, timestamp=now - timedelta(days=40), level="info", category="audio",
        event="old", message="",
    )  # fmt: skip
    body = staff.get(url("log?limit=2"), HTTP_ACCEPT="application/json").json()
    assert body["total"] == 4 and [e["event"] for e in body["events"]] == [
        "track_loaded",
        "stream_disconnected",
    ]
    assert (
        staff.get(url("log?offset=3"), HTTP_ACCEPT="application/json").json()["events"][0]["event"]
        == "old"
    )
    assert staff.get(url("log?level=error"), HTTP_ACCEPT="application/json").json()["total"] == 1
    assert staff.get(url("log?search=DISCONN"), HTTP_ACCEPT="application/json").json()["total"] == 1
    assert (
        staff.get(url("log?search=message 2"), HTTP_ACCEPT="application/json").json()["total"] == 1
    )
    assert staff.delete(url("log?older_than_days=abc")).status_code == 400
    assert BroadcastLogEntry.objects.count() == 4  # bad input changed nothing
    answer = staff.delete(url("log?older_than_days=30"), HTTP_ACCEPT="application/json")
    assert answer.status_code == 200 and answer.json()["deleted"] == 1
    assert BroadcastLogEntry.objects.count() == 3


def test_schema_lists_the_broadcast_endpoints(staff):
    schema = staff.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "/admin/broadcast/{station}/top-songs" in paths
    params = {p["name"] for p in paths["/admin/broadcast/{station}/log"]["get"]["parameters"]}
    assert {"limit", "offset", "level", "category", "from", "to", "search"} <= params
    assert "delete" in paths["/admin/broadcast/{station}/log"]


@pytest.mark.parametrize("path", ["requests", "heatmap", "reports/request-log"])
def test_a_station_key_that_is_no_slug_reaches_the_api_not_the_admin_login(client, station, path):
    """Found by the schema fuzzer: a key like `Åv` fell through to the admin's catch-all,
    which answered anonymous callers with its login redirect."""
    anonymous = client.get(f"/admin/broadcast/%C3%85v/{path}", HTTP_ACCEPT="application/json")
    assert anonymous.status_code in (401, 403)
    client.force_login(staff_user())
    staff = client.get(f"/admin/broadcast/%C3%85v/{path}", HTTP_ACCEPT="application/json")
    assert staff.status_code == 404


def test_the_admin_keeps_its_own_broadcast_model_pages(client, superuser):
    client.force_login(superuser)
    assert client.get("/admin/broadcast/station/").status_code == 200
    assert client.get("/admin/broadcast/play/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/admin/broadcast/night-radio/uptime", "/admin/analytics/streams"]
)
def test_only_a_signed_out_browser_is_sent_to_the_login_page(client, station, path):
    """Found by the schema fuzzer: `?format=html` from a client that is no browser got the
    login redirect, which it followed to a 200 page, as if its request were accepted."""
    not_a_browser = client.get(f"{path}?format=html&from=%C3%8B", HTTP_ACCEPT="*/*")
    assert not_a_browser.status_code in (401, 403)
    browser = client.get(f"{path}?from=%C3%8B", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert browser.status_code == 302
    assert browser["Location"].startswith("/admin/login/")
