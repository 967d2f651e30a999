"""SPEC §5.3: POST /api/analytics/event — validation, atomicity, idempotency, live counters."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from analytics.models import DailyRollup, Event
from echonest_analytics.redis import get_redis

from .conftest import post_batch

pytestmark = pytest.mark.django_db


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_a_valid_batch_answers_ok_with_logged_count_and_stores_every_field(api_client):
    event_uuid = uuid.uuid4()
    ts = timezone.now() - dt.timedelta(hours=1)
    response = post_batch(
        api_client,
        {
            "events": [
                {
                    "event_type": "page_view",
                    "user_id": "user123",
                    "feature": "dashboard",
                    "metadata": {"referrer": "https://example.com"},
                    "ts": iso(ts),
                    "url": "/dashboard",
                    "uuid": str(event_uuid),
                },
                {"event_type": "action"},  # user_id optional: anonymous
            ]
        },
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "logged": 2}
    stored = Event.objects.get(uuid=event_uuid)
    assert (stored.event_type, stored.user_id, stored.feature, stored.url) == (
        "page_view",
        "user123",
        "dashboard",
        "/dashboard",
    )
    assert stored.metadata == {"referrer": "https://example.com"}
    assert stored.occurred_at == ts.replace(microsecond=ts.microsecond)
    assert Event.objects.get(event_type="action").user_id == ""


def test_text_plain_bodies_from_send_beacon_are_accepted(api_client):
    response = post_batch(
        api_client, {"events": [{"event_type": "page_view"}]}, content_type="text/plain"
    )
    assert response.status_code == 200
    assert Event.objects.count() == 1


def test_events_older_than_365_days_are_ignored_and_not_counted(api_client):
    now = timezone.now()
    response = post_batch(
        api_client,
        {
            "events": [
                {"event_type": "old", "ts": iso(now - dt.timedelta(days=366))},
                {"event_type": "recent", "ts": iso(now - dt.timedelta(days=364))},
                {"event_type": "ancient", "ts": "0001-01-01T00:00:00+05:00"},
            ]
        },
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "logged": 1}
    assert list(Event.objects.values_list("event_type", flat=True)) == ["recent"]


def test_a_future_timestamp_is_clamped_to_the_receive_time(api_client):
    before = timezone.now()
    post_batch(api_client, {"events": [{"event_type": "x", "ts": "9999-12-31T23:59:59-05:00"}]})
    stored = Event.objects.get()
    assert before <= stored.occurred_at <= timezone.now()
    assert stored.occurred_at == stored.received_at


def test_a_retried_batch_with_uuids_is_stored_once_and_answered_the_same(api_client):
    payload = {"events": [{"event_type": "page_view", "uuid": str(uuid.uuid4())} for _ in range(3)]}
    first = post_batch(api_client, payload)
    second = post_batch(api_client, payload)
    assert first.json() == second.json() == {"ok": True, "logged": 3}
    assert Event.objects.count() == 3


def test_a_retried_batch_with_batch_id_and_no_uuids_is_stored_once(api_client):
    payload = {"batchId": str(uuid.uuid4()), "events": [{"event_type": "a"}, {"event_type": "b"}]}
    assert post_batch(api_client, payload).json() == {"ok": True, "logged": 2}
    assert post_batch(api_client, payload).json() == {"ok": True, "logged": 2}
    assert Event.objects.count() == 2


def test_a_uuid_repeated_inside_one_batch_is_one_event(api_client):
    same = str(uuid.uuid4())
    response = post_batch(
        api_client,
        {"events": [{"event_type": "a", "uuid": same}, {"event_type": "a", "uuid": same}]},
    )
    assert response.json() == {"ok": True, "logged": 1}
    assert Event.objects.count() == 1


def test_a_retry_does_not_count_twice_in_the_live_counters(
    api_client, redis_client, django_capture_on_commit_callbacks
):
    payload = {
        "events": [{"event_type": "song_add", "user_id": "a@x.io", "uuid": str(uuid.uuid4())}]
    }
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(api_client, payload)
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(api_client, payload)
    today = timezone.now().astimezone(dt.UTC).date().isoformat()
    assert redis_client.zscore(f"ANALYTICS|song_add|{today}", "a@x.io") == 1.0
    assert redis_client.hget(f"ANALYTICS|totals|{today}", "song_add") == "1"


def test_stored_events_feed_the_live_counters_on_the_day_they_happened(
    api_client, redis_client, django_capture_on_commit_callbacks
):
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    day = three_days_ago.date().isoformat()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_batch(
            api_client,
            {
                "events": [
                    {"event_type": "vote", "user_id": "v@x.io", "ts": iso(three_days_ago)},
                    {"event_type": "vote", "ts": iso(three_days_ago)},
                ]
            },
        )
    assert len(callbacks) == 1  # counted after the commit, in one go
    assert redis_client.hgetall(f"ANALYTICS|totals|{day}") == {"vote": "2"}
    assert redis_client.smembers(f"ANALYTICS|dau|{day}") == {"v@x.io"}


def test_redis_outage_still_answers_200_and_stores_the_events(
    api_client, settings, django_capture_on_commit_callbacks, caplog
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    get_redis.cache_clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_batch(
            api_client, {"events": [{"event_type": "page_view", "user_id": "u1"}] * 2}
        )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "logged": 2}
    assert len(callbacks) == 1
    assert Event.objects.count() == 2
    assert "tracking failed" in caplog.text


def test_a_late_event_flags_its_days_rollup_for_recompute(api_client):
    two_days_ago = timezone.now() - dt.timedelta(days=2)
    post_batch(api_client, {"events": [{"event_type": "late", "ts": iso(two_days_ago)}]})
    flagged = DailyRollup.objects.get()
    assert flagged.day == two_days_ago.astimezone(dt.UTC).date()
    assert flagged.needs_recompute is True


def test_more_than_100_events_is_a_400_and_nothing_is_stored(api_client):
    response = post_batch(api_client, {"events": [{"event_type": "a"}] * 101})
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert "101" in response.json()["error"]
    assert Event.objects.count() == 0


def test_exactly_100_events_is_accepted(api_client):
    assert post_batch(api_client, {"events": [{"event_type": "a"}] * 100}).json() == {
        "ok": True,
        "logged": 100,
    }


def test_one_bad_event_rejects_the_whole_batch_naming_its_index(api_client):
    response = post_batch(api_client, {"events": [{"event_type": "fine"}, {"event_type": ""}]})
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert "events[1].event_type" in body["details"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"events": [{"user_id": "u"}]}, "events[0]"),  # event_type missing
        ({"events": [{"event_type": ""}]}, "events[0].event_type"),
        ({"events": [{"event_type": "   "}]}, "events[0].event_type"),
        ({"events": [{"event_type": 5}]}, "events[0].event_type"),
        ({"events": [{"event_type": None}]}, "events[0].event_type"),
        ({"events": [{"event_type": "a\u0001b"}]}, "events[0].event_type"),
        ({"events": [{"event_type": "dau"}]}, "events[0].event_type"),
        ({"events": [{"event_type": "x" * 65}]}, "events[0].event_type"),
        ({"events": [{"event_type": "a", "user_id": 123}]}, "events[0].user_id"),
        ({"events": [{"event_type": "a", "user_id": "u" * 129}]}, "events[0].user_id"),
        ({"events": [{"event_type": "a", "feature": ["x"]}]}, "events[0].feature"),
        ({"events": [{"event_type": "a", "url": "/" * 2049}]}, "events[0].url"),
        ({"events": [{"event_type": "a", "metadata": [1]}]}, "events[0].metadata"),
        ({"events": [{"event_type": "a", "metadata": {"k": "v" * 3000}}]}, "events[0].metadata"),
        ({"events": [{"event_type": "a", "ts": "yesterday"}]}, "events[0].ts"),
        ({"events": [{"event_type": "a", "ts": 1700000000}]}, "events[0].ts"),
        ({"events": [{"event_type": "a", "uuid": "not-a-uuid"}]}, "events[0].uuid"),
        ({"events": [{"event_type": "a", "user_id": "nul\u0000"}]}, "events[0].user_id"),
        ({"events": "all of them"}, "events"),
        ({"batchId": "nope", "events": []}, "batchId"),
    ],
)
def test_bad_fields_and_types_are_400_naming_the_field(api_client, payload, field):
    response = post_batch(api_client, payload)
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert field in body["error"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"events": [{"event_type": "a\\ud800"}]}',  # lone surrogate
        b'{"events": [{"event_type": "\xff\xfe"}]}',  # not UTF-8
        b'{"events": [{"event_type": "a", "metadata": {"n": 1e400}}]}',
        b'{"events": [{"event_type": "a", "metadata": {"k": ' + b"[" * 5000 + b"]" * 5000 + b"}}]}",
        b'{"events": [{"event_type": "a", "metadata": {"k": [[[[[[[[[[1]]]]]]]]]]}}]}',
        b'{"events": [{"event_type": "a", "metadata": {"k\\u0000": 1}}]}',
    ],
)
def test_malformed_bodies_are_400_never_5xx(api_client, body):
    response = post_batch(api_client, body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert Event.objects.count() == 0


def test_odd_but_valid_unicode_and_huge_integers_are_stored_safely(api_client):
    metadata = {"emoji": "🎵 ñ 漢字", "big": 123456789012345678901234567890, "neg": -1e308}
    response = post_batch(
        api_client,
        {"events": [{"event_type": "spëcial ✓", "user_id": "ユーザー", "metadata": metadata}]},
    )
    assert response.status_code == 200
    stored = Event.objects.get()
    assert stored.event_type == "spëcial ✓"
    assert stored.metadata["emoji"] == "🎵 ñ 漢字"
    assert stored.metadata["big"] == 123456789012345678901234567890


def test_an_empty_event_list_logs_nothing(api_client):
    assert post_batch(api_client, {"events": []}).json() == {"ok": True, "logged": 0}
    assert Event.objects.count() == 0


def test_other_content_types_are_415_and_oversized_bodies_413(api_client):
    form = api_client.post("/api/analytics/event", data={"events": "x"})
    assert form.status_code == 415
    big = json.dumps({"events": [{"event_type": "a", "url": "x" * 2000}] * 140}).encode()
    assert len(big) > 256 * 1024
    assert post_batch(api_client, big).status_code == 413
    assert Event.objects.count() == 0  # neither body stored anything


def test_cors_preflight_is_answered_for_configured_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client.options(
        "/api/analytics/event",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
