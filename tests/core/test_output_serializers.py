"""Each staff API's OutputSerializer describes exactly what the API answers.

The APIs answer their selector's or service's dict as it is and the OpenAPI schema is
generated from the OutputSerializer; serializing a real answer through it must give
the answer back unchanged: a key it does not declare would be dropped, a key it
declares but the answer lacks would fail, a value of another type would change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from analytics.apis import UsageSummaryApi
from streams.aggregation import stream_stats_recompute
from streams.apis import (
    BunnySyncApi,
    StreamAudienceApi,
    StreamStatsDetailApi,
    StreamStatsListApi,
    StreamStatsSummaryApi,
)
from streams.models import BunnyVideoStats, Organizer, Stream, StreamProvider
from tests.streams.conftest import DESKTOP_UA, T0, batch, heartbeats

pytestmark = pytest.mark.django_db

VIDEO = "0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b3c"
RANGE = {"from": (T0.date() - timedelta(days=1)).isoformat(), "to": T0.date().isoformat()}


def assert_described(output_serializer, body: dict) -> None:
    assert json.loads(json.dumps(output_serializer(body).data)) == body


@pytest.fixture
def watched(client, settings) -> None:
    """A watched HLS stream, and a Bunny stream with Bunny's own figures for one day."""
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    organizer = Organizer.objects.create(name="Nightjar Records", slug="nightjar")
    hls = Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)
    StreamProvider.objects.create(
        stream=hls, provider="hls", external_id="https://cdn.example/l.m3u8", is_primary=True
    )
    bunny = Stream.objects.create(key="bunny-show", title="Bunny show", organizer=organizer)
    StreamProvider.objects.create(
        stream=bunny,
        provider=StreamProvider.Provider.BUNNY_STREAM,
        external_id=VIDEO,
        is_primary=True,
    )
    BunnyVideoStats.objects.create(
        library_id="4242",
        video_guid=VIDEO,
        day=T0.date(),
        views=12,
        watch_time_seconds=3600.0,
        country_views={"DE": 7, "US": 5},
        engagement_score=55,
        fetched_at=datetime.now(UTC),
    )
    response = client.post(
        "/analytics/events",
        data=json.dumps(batch("launch-party", "c-1", heartbeats(0, 15, 30, 45))),
        content_type="application/json",
        HTTP_USER_AGENT=DESKTOP_UA,
        HTTP_CF_IPCOUNTRY="DE",
    )
    assert response.status_code == 202, response.content
    assert stream_stats_recompute().ran


def get_json(client, path: str, params: dict) -> dict:
    response = client.get(path, params, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("organizer", [None, "nightjar"])
def test_the_stream_list_answers_what_its_output_serializer_describes(
    admin_client_api, watched, organizer
):
    params = {**RANGE, **({"organizer": organizer} if organizer else {})}
    body = get_json(admin_client_api, "/admin/analytics/streams", params)
    rows = {row["stream_id"]: row for row in body["streams"]}
    assert rows["bunny-show"]["bunny"]["views"] == 12  # a Bunny block, not only None
    assert rows["launch-party"]["bunny"] is None
    assert rows["launch-party"]["top_countries"]  # a list of countries, not only []
    assert_described(StreamStatsListApi.OutputSerializer, body)


def test_the_summary_answers_what_its_output_serializer_describes(admin_client_api, watched):
    body = get_json(admin_client_api, "/admin/analytics/streams/summary", RANGE)
    assert body["last_calculated_at"]
    assert_described(StreamStatsSummaryApi.OutputSerializer, body)


def test_an_empty_summary_answers_what_its_output_serializer_describes(admin_client_api, db):
    body = get_json(admin_client_api, "/admin/analytics/streams/summary", RANGE)
    assert body["last_calculated_at"] is None
    assert_described(StreamStatsSummaryApi.OutputSerializer, body)


@pytest.mark.parametrize("key", ["launch-party", "bunny-show"])
def test_the_stream_page_answers_what_its_output_serializer_describes(
    admin_client_api, watched, key
):
    body = get_json(admin_client_api, f"/admin/analytics/streams/{key}", RANGE)
    assert len(body["days"]) == 2
    assert_described(StreamStatsDetailApi.OutputSerializer, body)


@pytest.mark.parametrize("length", [None, 60])
def test_audience_retention_answers_what_its_output_serializer_describes(
    admin_client_api, watched, length
):
    if length:  # an on-demand video of known length: 101 points; else none
        StreamProvider.objects.filter(stream__key="launch-party").update(config={"length": length})
    body = get_json(
        admin_client_api,
        "/admin/analytics/streams/launch-party/audience",
        {"day": T0.date().isoformat()},
    )
    assert len(body["points"]) == (101 if length else 0)
    assert_described(StreamAudienceApi.OutputSerializer, body)


def test_bunny_sync_answers_what_its_output_serializer_describes(staff_client, watched, settings):
    # Bunny unreachable: every video-day fails, and a provider without a video id
    # fails on its own (no `day`); both failure shapes are in the answer.
    settings.BUNNY_API_KEY, settings.BUNNY_LIBRARY_ID = "key", "4242"
    settings.BUNNY_API_BASE_URL = "http://127.0.0.1:9"
    settings.BUNNY_RETRIES, settings.BUNNY_TIMEOUT = 0, 1.0
    StreamProvider.objects.create(
        stream=Stream.objects.get(key="launch-party"),
        provider=StreamProvider.Provider.BUNNY_STREAM,
        external_id="",
    )
    response = staff_client.post("/admin/analytics/streams/bunny-sync?days=1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {"day" in failure for failure in body["failures"]} == {True, False}
    assert_described(BunnySyncApi.OutputSerializer, body)


def test_the_usage_summary_answers_what_its_output_serializer_describes(staff_client):
    events = [
        {"event_type": "page_view", "user_id": "u-1", "feature": "dashboard"},
        {"event_type": "action", "user_id": "u-1", "feature": "player"},
    ]
    assert staff_client.post("/api/analytics/event", {"events": events}, format="json").json() == {
        "ok": True,
        "logged": 2,
    }
    body = staff_client.get("/api/analytics/usage", {"days": 7}).json()
    assert body["total_events"] == 2
    assert_described(UsageSummaryApi.OutputSerializer, body)
