"""Property-based ingestion (SPEC §5, §10): Hypothesis generates batches for both
ingestion endpoints, valid and not, and every answer is either a 2xx that stored exactly
what it says, or a 4xx that stored nothing. Never a 5xx.

A fixed seed (`derandomize`) and a bounded example count keep it reproducible in CI."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analytics.models import Event
from streams.models import Organizer, PlaybackBatch, PlaybackEvent, Stream

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

PROPERTY_SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOW = dt.datetime.now(dt.UTC)
TYPES = ["play", "pause", "heartbeat", "ended", "error", "buffer_start", "buffer_end"]


@pytest.fixture
def stream(db) -> Stream:
    organizer = Organizer.objects.create(name="Org", slug="org")
    return Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
recent_times = st.datetimes(
    min_value=(NOW - dt.timedelta(days=30)).replace(tzinfo=None),
    max_value=(NOW + dt.timedelta(days=2)).replace(tzinfo=None),
    timezones=st.just(dt.UTC),
)
any_times = st.datetimes(timezones=st.just(dt.UTC)).map(iso) | st.text(max_size=30)


def maybe(key: str, strategy) -> st.SearchStrategy[dict]:
    return st.one_of(st.just({}), strategy.map(lambda value: {key: value}))


small_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def valid_playback_events(draw) -> dict:
    event = {"type": draw(st.sampled_from(TYPES))}
    event |= draw(maybe("videoTime", st.floats(min_value=0, max_value=1e7) | st.none()))
    event |= draw(maybe("ts", recent_times.map(iso)))
    event |= draw(maybe("extra", small_objects | st.none()))
    return event


@st.composite
def any_playback_events(draw) -> dict:
    event = {"type": draw(st.sampled_from(TYPES) | st.text(max_size=12))}
    event |= draw(maybe("videoTime", st.floats(allow_nan=False) | st.none() | st.text(max_size=3)))
    event |= draw(maybe("ts", recent_times.map(iso) | any_times))
    event |= draw(maybe("extra", small_objects | json_values))
    return event


@st.composite
def playback_bodies(draw) -> bytes:
    """Half valid batches of the known stream, half with any field of any shape."""
    if draw(st.integers(0, 20)) == 0:  # now and then, not JSON at all
        return draw(st.binary(max_size=64))
    if draw(st.booleans()):
        batch = {
            "streamId": "launch-party",
            "clientId": draw(st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)),
            "events": draw(st.lists(valid_playback_events(), min_size=1, max_size=6)),
        }
        batch |= draw(maybe("sentAt", recent_times.map(iso)))
        batch |= draw(maybe("batchId", st.uuids().map(str)))
        return json.dumps(batch).encode()
    batch = {}
    batch |= draw(
        maybe(
            "streamId",
            st.sampled_from(["launch-party", "no-such-stream", ""]) | st.text(max_size=8),
        )
    )
    batch |= draw(
        maybe(
            "clientId",
            st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True) | st.text(max_size=70),
        )
    )
    batch |= draw(maybe("sentAt", recent_times.map(iso) | any_times))
    batch |= draw(maybe("batchId", st.uuids().map(str) | st.text(max_size=8)))
    batch |= draw(maybe("events", st.lists(any_playback_events(), max_size=6) | json_values))
    return json.dumps(batch).encode()


@given(body=playback_bodies())
@PROPERTY_SETTINGS
def test_playback_batches_store_what_they_answer_or_nothing(client, stream, body):
    try:
        batch_id = json.loads(body).get("batchId")
    except (ValueError, AttributeError):
        batch_id = None
    replay = (
        isinstance(batch_id, str)
        and _is_uuid(batch_id)
        and PlaybackBatch.objects.filter(batch_id=batch_id).exists()
    )
    events_before, batches_before = PlaybackEvent.objects.count(), PlaybackBatch.objects.count()
    last_id = PlaybackEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client.post("/analytics/events", body, content_type="application/json")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.content
    stored = list(PlaybackEvent.objects.filter(id__gt=last_id).order_by("id"))
    if response.status_code >= 400:
        assert response.status_code in (400, 413, 415)
        assert "error" in response.json()
        assert stored == [] and PlaybackBatch.objects.count() == batches_before
        return
    assert response.status_code == 202
    sent = json.loads(body)["events"]
    if replay:  # a batch already stored is answered as before and stored no second time
        first = PlaybackBatch.objects.get(batch_id=batch_id)
        assert response.json() == {"ingested": first.event_count}
        assert PlaybackEvent.objects.count() == events_before
        return
    assert response.json() == {"ingested": len(sent)}
    assert PlaybackBatch.objects.count() == batches_before + 1
    assert Counter((e.type, e.video_time) for e in stored) == Counter(
        (e["type"], e.get("videoTime")) for e in sent
    )
    assert {e.stream_id for e in stored} == {stream.id}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


old_times = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=(NOW - dt.timedelta(days=400)).replace(tzinfo=None),
    timezones=st.just(dt.UTC),
)


@st.composite
def telemetry_events(draw) -> dict:
    event = {
        "event_type": draw(
            st.sampled_from(["page_view", "action", "totals", " ", ""]) | st.text(max_size=70)
        )
    }
    event |= draw(maybe("user_id", st.text(max_size=130) | st.none() | st.integers()))
    event |= draw(maybe("feature", st.text(max_size=10) | st.none()))
    event |= draw(maybe("url", st.text(max_size=10)))
    event |= draw(
        maybe(
            "metadata", st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values
        )
    )
    event |= draw(maybe("ts", recent_times.map(iso) | old_times.map(iso) | any_times))
    event["uuid"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    if draw(st.integers(0, 10)) == 0:
        event["uuid"] = draw(st.text(max_size=8))
    return event


@st.composite
def telemetry_bodies(draw) -> bytes:
    if draw(st.integers(0, 20)) == 0:
        return draw(st.binary(max_size=64))
    events = draw(st.lists(telemetry_events(), max_size=5, unique_by=lambda e: str(e.get("uuid"))))
    batch = {"events": events} if draw(st.integers(0, 10)) else draw(json_values)
    return json.dumps(batch).encode()


def _counted(event: dict) -> bool:
    """Stored and logged, if the batch is accepted: not over 365 days old."""
    ts = event.get("ts")
    if ts is None:
        return True
    when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return when >= NOW - dt.timedelta(days=365)


@given(body=telemetry_bodies())
@PROPERTY_SETTINGS
def test_telemetry_batches_store_what_they_answer_or_nothing(client, body):
    before = Event.objects.count()
    try:
        sent = json.loads(body)["events"]
        existing = set(
            Event.objects.filter(
                uuid__in=[e["uuid"] for e in sent if _is_uuid(str(e["uuid"]))]
            ).values_list("uuid", flat=True)
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        sent, existing = None, set()
    response = client.post("/api/analytics/event", body, content_type="text/plain")
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.status_code in (400, 413, 415)
        assert response.json()["ok"] is False
        assert Event.objects.count() == before
        return
    assert response.status_code == 200
    counted = [e for e in sent if _counted(e)]
    assert response.json() == {"ok": True, "logged": len(counted)}
    new = [e for e in counted if uuid.UUID(e["uuid"]) not in existing]
    assert Event.objects.count() == before + len(new)
    for e in counted:
        stored = Event.objects.get(uuid=e["uuid"])
        assert stored.event_type == e["event_type"].strip()
        assert stored.user_id == (e.get("user_id") or "").strip()
