"""Liveness and readiness probes."""

from __future__ import annotations

import pytest

from echonest_analytics.redis import get_redis

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_when_database_and_migrations_are_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"


def test_readyz_names_redis_when_configured_but_unreachable(client, settings, staff_user):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    get_redis.cache_clear()
    client.force_login(staff_user)  # staff see the error itself
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"].startswith("error: ConnectionError")
    assert body["checks"]["database"] == "ok"
    assert response["Retry-After"] == "5"


def test_readyz_tells_anonymous_callers_which_check_failed_but_no_host_port_or_error(
    client, settings
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "unavailable",
        "failing": ["redis"],
        "checks": {"database": "ok", "migrations": "ok", "redis": "error"},
    }
    assert "127.0.0.1" not in response.content.decode()


def test_readyz_hides_the_database_host_from_anonymous_callers(client):
    from .test_database_outage import database_down

    with database_down():
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == "error"
    text = response.content.decode()
    assert "127.0.0.1" not in text and "port" not in text.lower()
    assert "nonexistent-directory" not in text


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_openapi_schema_generates_without_errors_or_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = out.read_text()
    for path in (
        "/analytics/events",
        "/api/streams/{key}",
        "/api/analytics/event",
        "/api/analytics/usage",
        "/admin/analytics/streams",
        "/admin/analytics/streams/summary",
        "/admin/analytics/streams/bunny-sync",
    ):
        assert f"  {path}:" in schema, path
