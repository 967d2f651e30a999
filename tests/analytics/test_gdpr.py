"""SPEC §5.5 GDPR: export and erase one user, end to end (events, rollups, live counters)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from analytics import live_counters
from analytics.models import DailyActiveUser, DailyRollup, Event
from analytics.rollups import daily_rollup_recompute
from analytics.selectors import usage_summary
from echonest_analytics.redis import get_redis

from .conftest import USAGE_DATASET, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracked_dataset(frozen_now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        store(USAGE_DATASET)
    for offset in range(1, 25):
        daily_rollup_recompute(day=dt.date(2026, 3, 11) - dt.timedelta(days=offset))
    return frozen_now


def test_export_answers_every_event_of_the_user_oldest_first(staff_client, tracked_dataset):
    response = staff_client.get("/api/analytics/users/alice/export")
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "alice"
    assert body["count"] == 4
    assert [(e["event_type"], e["occurred_at"]) for e in body["events"]] == [
        ("page_view", "2026-03-05T09:00:00Z"),
        ("action", "2026-03-05T10:00:00Z"),
        ("page_view", "2026-03-07T12:00:00Z"),
        ("page_view", "2026-03-11T08:00:00Z"),
    ]


def test_export_and_erase_are_staff_only(api_client, client, django_user_model, tracked_dataset):
    assert api_client.get("/api/analytics/users/alice/export").status_code in (401, 403)
    assert api_client.delete("/api/analytics/users/alice").status_code in (401, 403)
    member = django_user_model.objects.create_user("member", "m@example.com", "pw-member-1")
    client.force_login(member)
    assert client.get("/api/analytics/users/alice/export").status_code == 403
    assert Event.objects.filter(user_id="alice").count() == 4


def test_erase_removes_events_rollup_contributions_and_live_counters(
    staff_client, tracked_dataset, redis_client
):
    assert redis_client.zscore("ANALYTICS|page_view|2026-03-07", "alice") == 1.0
    before = usage_summary(days=14)

    response = staff_client.delete("/api/analytics/users/alice")

    assert response.status_code == 200
    body = response.json()
    assert body["events_deleted"] == 4
    assert body["rollup_days_recomputed"] == ["2026-03-05", "2026-03-07"]
    assert not Event.objects.filter(user_id="alice").exists()
    assert not DailyActiveUser.objects.filter(user_id="alice").exists()
    march_7 = DailyRollup.objects.get(day="2026-03-07")
    assert (march_7.total_events, march_7.dau, march_7.needs_recompute) == (2, 1, False)
    assert march_7.event_counts == {"conversion": 1, "page_view": 1}

    for key in redis_client.scan_iter("ANALYTICS|*"):
        if redis_client.type(key) == "zset":
            assert redis_client.zscore(key, "alice") is None, key
        elif redis_client.type(key) == "set":
            assert not redis_client.sismember(key, "alice"), key
    assert redis_client.hgetall("ANALYTICS|totals|2026-03-07") == {
        "page_view": "1",
        "conversion": "1",
    }

    after = usage_summary(days=14)
    assert (before["mau"], after["mau"]) == (6, 5)
    assert (before["total_events"], after["total_events"]) == (15, 11)
    assert after["feature_usage"]["dashboard"] == 3


def test_erasing_again_finds_nothing_and_succeeds(staff_client, tracked_dataset):
    staff_client.delete("/api/analytics/users/alice")
    again = staff_client.delete("/api/analytics/users/alice")
    assert again.status_code == 200
    assert again.json()["events_deleted"] == 0


def test_erase_with_redis_down_is_503_after_the_database_part(
    staff_client, tracked_dataset, settings
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    response = staff_client.delete("/api/analytics/users/alice")
    assert response.status_code == 503
    assert "retry" in response.json()["error"]
    assert not Event.objects.filter(user_id="alice").exists()


def test_a_failed_erase_never_logs_the_user_id(staff_client, tracked_dataset, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    caplog.set_level("DEBUG")
    response = staff_client.delete("/api/analytics/users/alice")
    assert response.status_code == 503
    assert "live counters not cleaned" in caplog.text  # the failure is logged…
    assert "alice" not in caplog.text  # …without naming whom it was for


def test_a_done_erase_never_logs_the_user_id(staff_client, tracked_dataset, caplog):
    caplog.set_level("DEBUG")
    assert staff_client.delete("/api/analytics/users/alice").status_code == 200
    assert "GDPR erase" in caplog.text
    assert "alice" not in caplog.text


def test_gdpr_commands_export_then_erase(tracked_dataset, capsys, redis_client):
    call_command("gdpr_export", "bob")
    exported = json.loads(capsys.readouterr().out)
    assert exported["count"] == 3
    assert {e["user_id"] for e in exported["events"]} == {"bob"}

    call_command("gdpr_erase", "bob")
    assert "3 events deleted" in capsys.readouterr().out
    assert not Event.objects.filter(user_id="bob").exists()
    assert "bob" not in live_counters.get_daily_active_users(redis_client, "2026-03-10")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/analytics/users/a%00b/export"),
        ("delete", "/api/analytics/users/a%00b"),
        ("get", "/api/analytics/users/%00/export"),
    ],
)
def test_a_user_id_with_a_nul_byte_is_refused_with_400_not_a_database_error(
    staff_client, method, path
):
    # PostgreSQL refuses NUL in text; the id cannot name any stored user anyway.
    now = dt.datetime.now(dt.UTC)
    Event.objects.create(event_type="page_view", user_id="ab", occurred_at=now, received_at=now)
    response = getattr(staff_client, method)(path)
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert "NUL" in body["error"]
    assert Event.objects.filter(user_id="ab").count() == 1
