"""Database unavailable on any other page (SPEC §5, §10): 503 with Retry-After, never a
500 page. API clients get `{"error": ...}`, browsers a short plain page.

The outage is real, as in test_database_outage.py: the connection points where no
database can be reached."""

from __future__ import annotations

import pytest

from streams.models import Organizer, Stream

from .test_database_outage import database_down

pytestmark = pytest.mark.django_db(transaction=True)

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def stream(db):
    organizer = Organizer.objects.create(name="Org", slug="org")
    return Stream.objects.create(key="outage", title="Outage", organizer=organizer)


def assert_503_json(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("application/json")
    assert "unavailable" in response.json()["error"].lower()


def test_stream_info_answers_503_json(client, stream):
    with database_down():
        response = client.get("/api/streams/outage")
    assert_503_json(response)
    assert client.get("/api/streams/outage").status_code == 200  # back once it is


def test_usage_summary_answers_503_json(client, settings):
    settings.ANALYTICS_DASH_KEY = "dash-key-123"
    with database_down():
        response = client.get("/api/analytics/usage", HTTP_X_DASH_KEY="dash-key-123")
    assert_503_json(response)


@pytest.mark.parametrize(
    "path", ["/admin/analytics/streams", "/admin/stats", "/admin/", "/admin/streams/stream/"]
)
def test_staff_pages_answer_a_plain_503_page_to_browsers(client, superuser, path):
    client.force_login(superuser)
    with database_down():
        response = client.get(path, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/plain")
    assert "unavailable" in response.content.decode().lower()


def test_staff_api_answers_503_json_to_a_token(client, superuser):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=superuser)
    with database_down():
        response = client.get("/admin/analytics/streams", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert_503_json(response)
