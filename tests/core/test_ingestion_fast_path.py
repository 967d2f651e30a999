"""POST /analytics/events takes a shorter way through the middleware and skips DRF
(echonest_analytics/middleware.py, echonest_analytics/ingestion.py): it must answer
exactly as the full way does — headers, host check, HTTPS redirect, CORS, shapes."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from echonest_analytics import middleware
from streams.models import Organizer, PlaybackEvent, Stream

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
# Headers that differ by request or by nature: the date, DRF's Vary/Allow of its own views.
_PER_RESPONSE = {"date", "vary", "allow"}


@pytest.fixture
def stream(db) -> Stream:
    organizer = Organizer.objects.create(name="Org", slug="org")
    return Stream.objects.create(key="fast", title="Fast", organizer=organizer)


def body(client_id: str = "c-1") -> str:
    return json.dumps(
        {
            "streamId": "fast",
            "clientId": client_id,
            "events": [{"type": "play", "videoTime": 0}, {"type": "heartbeat", "videoTime": 15}],
        }
    )


def post(client, path: str = "/analytics/events", data: str | None = None, **extra):
    return client.post(
        path, data or body(), content_type="application/json", HTTP_USER_AGENT=UA, **extra
    )


def headers(response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.items() if k.lower() not in _PER_RESPONSE}


@pytest.fixture
def full_way_client(monkeypatch) -> Client:
    """A client whose requests go through every middleware and DRF, as before the short way."""
    monkeypatch.setattr(middleware, "INGESTION_PATHS", frozenset())
    return Client()


def test_the_short_way_answers_with_the_headers_of_the_full_way(client, stream, full_way_client):
    short = post(client)  # no query string: the short way
    drf = post(client, "/analytics/events?format=json", body("c-2"))  # DRF's view
    full = post(full_way_client, "/analytics/events?format=json", body("c-3"))
    assert short.status_code == drf.status_code == full.status_code == 202
    assert short.json() == drf.json() == full.json() == {"ingested": 2}
    assert headers(short) == headers(drf) == headers(full)
    again = post(client, data=body("c-4"))  # headers built once, then reused
    assert headers(again) == headers(full)
    for name in (
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert short.has_header(name), name
    assert int(short["Content-Length"]) == len(short.content)
    assert PlaybackEvent.objects.count() == 8


def test_a_rejection_on_the_short_way_matches_the_full_way(client, stream, full_way_client):
    bad = '{"streamId": "fast", "clientId": "c-1", "events": [{"type": "seek"}]}'
    short = post(client, data=bad)
    full = post(full_way_client, "/analytics/events?format=json", bad)
    assert short.status_code == full.status_code == 400
    assert short.json() == full.json()
    assert short.json()["details"] == {"events[0].type": short.json()["details"]["events[0].type"]}
    assert headers(short) == headers(full)
    assert PlaybackEvent.objects.count() == 0


def test_a_host_outside_allowed_hosts_is_refused_and_nothing_stored(client, stream, settings):
    settings.ALLOWED_HOSTS = ["analytics.example.com"]
    response = post(client, HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    assert PlaybackEvent.objects.count() == 0
    assert post(client, HTTP_HOST="analytics.example.com").status_code == 202


def test_plain_http_is_redirected_to_https_when_configured(stream, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # a new handler reads the setting
    response = post(client)
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/analytics/events"
    assert PlaybackEvent.objects.count() == 0
    assert post(client, HTTP_X_FORWARDED_PROTO="https").status_code == 202


def test_cors_on_the_short_way(client, stream, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://player.example.com"]
    allowed = post(client, HTTP_ORIGIN="https://player.example.com")
    assert allowed.status_code == 202
    assert allowed["Access-Control-Allow-Origin"] == "https://player.example.com"
    other = post(client, HTTP_ORIGIN="https://elsewhere.example.net")
    assert "Access-Control-Allow-Origin" not in other
    preflight = client.options(
        "/analytics/events",
        HTTP_ORIGIN="https://player.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://player.example.com"


def test_methods_other_than_post_get_drfs_answer(client, stream):
    response = client.get("/analytics/events")
    assert response.status_code == 405
    assert response.has_header("X-Frame-Options")
    assert response.has_header("Content-Security-Policy")
