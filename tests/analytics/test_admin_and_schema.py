"""Django admin for events and rollups, staff-login tracking, and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import Event
from analytics.rollups import daily_rollup_recompute

from .conftest import USAGE_DATASET, store

pytestmark = pytest.mark.django_db


def test_event_changelist_is_read_only_and_filters_by_type_feature_and_date(
    client, superuser, frozen_now
):
    store(USAGE_DATASET)
    daily_rollup_recompute(day=frozen_now.date().replace(day=10))
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/analytics/event/?event_type=action&feature=player")
    assert response.status_code == 200
    assert sorted(response.context["cl"].result_list.values_list("user_id", flat=True)) == [
        "",
        "carol",
    ]
    # Filter choices come from rollups; no unbounded COUNT(*) of the events table.
    assert b"?event_type=page_view" in response.content
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all("LIMIT" in sql.upper() for sql in counts if "analytics_event" in sql)
    assert b"Add event" not in response.content
    event = Event.objects.first()
    change = client.get(f"/admin/analytics/event/{event.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content


def test_rollup_changelist_lists_days(client, superuser, frozen_now):
    store(USAGE_DATASET)
    daily_rollup_recompute(day=frozen_now.date().replace(day=10))
    client.force_login(superuser)
    response = client.get("/admin/analytics/dailyrollup/")
    assert response.status_code == 200
    assert b"March 10, 2026" in response.content or b"2026-03-10" in response.content


def test_staff_logins_are_tracked_as_login_events(client, staff_user, django_user_model):
    client.login(username="staffer", password="pw-staff-123")
    login = Event.objects.get(event_type="login")
    assert (login.user_id, login.feature) == ("staffer@example.com", "admin")
    django_user_model.objects.create_user("member", "m@example.com", "pw-member-1")
    client.login(username="member", password="pw-member-1")
    assert Event.objects.filter(event_type="login").count() == 1


def test_the_openapi_schema_documents_the_analytics_endpoints_with_examples(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/analytics/event",
        "/api/analytics/usage",
        "/api/analytics/users/{user_id}/export",
        "/api/analytics/users/{user_id}",
    ):
        assert path in paths, path
    ingest = paths["/api/analytics/event"]["post"]
    assert "examples" in ingest["requestBody"]["content"]["application/json"]
    assert (
        "examples"
        in paths["/api/analytics/usage"]["get"]["responses"]["200"]["content"]["application/json"]
    )
