"""SPEC §5.1 `POST /analytics/events` and §5.2 `GET /api/streams/<key>`, over HTTP.

Every rejection is checked three ways: the status, a message naming the fault (with the
per-event path in `details` where there is one), and that nothing at all was stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from streams.models import PlaybackBatch, PlaybackEvent, Stream, StreamProvider, ViewerSession

from .conftest import DESKTOP_UA, T0, at, batch, ev, heartbeats, new_batch_id

pytestmark = pytest.mark.django_db

MAX_BODY = 256 * 1024


def good_events() -> list[dict]:
    return [
        {"type": "play", "videoTime": 0, "ts": at(0)},
        {"type": "heartbeat", "videoTime": 15.0, "ts": at(15)},
        {"type": "error", "videoTime": 31.2, "ts": at(31), "extra": {"code": "NETWORK"}},
    ]


def good_batch(**fields) -> dict:
    return batch("launch-party", "c-7f3a9e21", good_events(), **fields)


def assert_nothing_stored() -> None:
    assert PlaybackEvent.objects.count() == 0
    assert ViewerSession.objects.count() == 0
    assert PlaybackBatch.objects.count() == 0


def assert_rejected(response, *, names: str, detail: str | None = None) -> None:
    """400, an error message naming `names`, the per-event `detail` path, nothing stored."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert names in body["error"], body
    if detail is not None:
        assert detail in body["details"], body
    assert_nothing_stored()


# --- 400: what the batch must contain -----------------------------------------------


def test_body_that_is_not_json_is_rejected(stream, post_events):
    response = post_events(b'{"streamId": "launch-party", "clientId": ')
    assert_rejected(response, names="JSON")


def test_missing_stream_id_is_rejected(stream, post_events):
    payload = good_batch()
    del payload["streamId"]
    assert_rejected(post_events(payload), names="streamId")


def test_unknown_stream_id_is_rejected(stream, post_events):
    response = post_events(batch("no-such-stream", "c-1", good_events()))
    assert_rejected(response, names="no-such-stream", detail="streamId")


def test_stream_deleted_after_a_batch_is_unknown_to_the_next_one(stream, post_events):
    assert post_events(good_batch()).status_code == 202
    assert PlaybackEvent.objects.filter(stream=stream).count() == 3
    deleted_id = stream.pk
    Stream.objects.filter(pk=deleted_id).delete()
    assert PlaybackEvent.objects.count() == 0

    try:
        response = post_events(good_batch())
        assert_rejected(response, names="launch-party", detail="streamId")
    finally:
        # Rows a wrongly accepted batch left pointing at the deleted stream would fail the
        # foreign-key check at teardown and bury this test's own message.
        for model in (PlaybackEvent, ViewerSession, PlaybackBatch):
            model.objects.filter(stream_id=deleted_id).delete()


def test_missing_client_id_is_rejected(stream, post_events):
    payload = good_batch()
    del payload["clientId"]
    assert_rejected(post_events(payload), names="clientId")


def test_empty_client_id_is_rejected(stream, post_events):
    response = post_events(batch("launch-party", "", good_events()))
    assert_rejected(response, names="clientId", detail="clientId")


def test_client_id_of_65_characters_is_rejected(stream, post_events):
    response = post_events(batch("launch-party", "c" * 65, good_events()))
    assert_rejected(response, names="clientId", detail="clientId")


def test_client_id_of_64_characters_is_accepted(stream, post_events):
    response = post_events(batch("launch-party", "c" * 64, good_events()))
    assert response.status_code == 202, response.content
    assert set(PlaybackEvent.objects.values_list("client_id", flat=True)) == {"c" * 64}


@pytest.mark.parametrize("client_id", ["c 7f3a", "c/7f3a"], ids=["space", "slash"])
def test_client_id_with_a_character_outside_the_alphabet_is_rejected(
    stream, post_events, client_id
):
    response = post_events(batch("launch-party", client_id, good_events()))
    assert_rejected(response, names="clientId", detail="clientId")


def test_client_id_with_a_trailing_newline_is_rejected(stream, post_events):
    # "\n" is not in [A-Za-z0-9_.:-]; a regex ending in `$` still matches before it.
    response = post_events(batch("launch-party", "c-7f3a9e21\n", good_events()))
    assert_rejected(response, names="clientId", detail="clientId")


def test_missing_events_are_rejected(stream, post_events):
    payload = good_batch()
    del payload["events"]
    assert_rejected(post_events(payload), names="events")


def test_empty_events_are_rejected(stream, post_events):
    response = post_events(batch("launch-party", "c-1", []))
    assert_rejected(response, names="events", detail="events")


def test_101_events_are_rejected(stream, post_events):
    response = post_events(batch("launch-party", "c-1", heartbeats(*range(101))))
    assert_rejected(response, names="events", detail="events")


def test_100_events_are_accepted(stream, post_events):
    response = post_events(batch("launch-party", "c-1", heartbeats(*range(100))))
    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": 100}
    assert PlaybackEvent.objects.count() == 100


def test_unknown_event_type_is_rejected_with_its_index(stream, post_events):
    events = good_events()
    events[1]["type"] = "seek"
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[1].type", detail="events[1].type")


def test_negative_video_time_is_rejected_with_its_index(stream, post_events):
    events = good_events()
    events[2]["videoTime"] = -0.5
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[2].videoTime", detail="events[2].videoTime")


def test_video_time_given_as_a_string_is_rejected(stream, post_events):
    events = good_events()
    events[0]["videoTime"] = "12.5"
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[0].videoTime", detail="events[0].videoTime")


def test_video_time_too_large_to_be_finite_is_rejected(stream, post_events):
    body = json.dumps(batch("launch-party", "c-1", good_events())).replace(
        '"videoTime": 15.0', '"videoTime": 1e309'
    )
    response = post_events(body)
    assert_rejected(response, names="events[1].videoTime", detail="events[1].videoTime")


def test_unparseable_ts_is_rejected_with_its_index(stream, post_events):
    events = good_events()
    events[1]["ts"] = "yesterday at ten"
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[1].ts", detail="events[1].ts")


@pytest.mark.parametrize("extra", [["NETWORK"], "NETWORK"], ids=["list", "string"])
def test_extra_that_is_not_an_object_is_rejected(stream, post_events, extra):
    events = good_events()
    events[2]["extra"] = extra
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[2].extra", detail="events[2].extra")


def test_extra_over_2_kib_is_rejected(stream, post_events):
    events = good_events()
    events[2]["extra"] = {"code": "x" * 2100}
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[2].extra", detail="events[2].extra")


def test_extra_of_exactly_2_kib_is_accepted(stream, post_events):
    events = good_events()
    padding = 2048 - len(json.dumps({"code": ""}, separators=(",", ":")))
    events[2]["extra"] = {"code": "x" * padding}
    response = post_events(batch("launch-party", "c-1", events))
    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": 3}
    stored = PlaybackEvent.objects.get(type="error").extra
    assert stored == {"code": "x" * padding}
    assert len(json.dumps(stored, separators=(",", ":"))) == 2048


def test_batch_with_a_good_event_and_a_bad_one_stores_nothing(stream, post_events):
    events = [ev("play", 0), {"type": "rewind", "videoTime": 3, "ts": at(3)}]
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[1].type", detail="events[1].type")


def test_batch_whose_second_event_fails_a_later_check_stores_nothing(stream, post_events):
    events = [ev("play", 0), ev("error", 5, extra={"trace": "x" * 3000})]
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[1].extra", detail="events[1].extra")


def test_ts_older_than_the_retention_is_rejected(stream, post_events):
    events = [ev("play", 0), {"type": "heartbeat", "ts": "2001-01-01T00:00:00Z"}]
    response = post_events(batch("launch-party", "c-1", events))
    assert_rejected(response, names="events[1].ts", detail="events[1].ts")


# --- 202: what is stored ---------------------------------------------------------------


def test_good_batch_is_stored_with_device_and_country(stream, post_events, settings):
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    response = post_events(good_batch(), HTTP_CF_IPCOUNTRY="de")

    assert response.status_code == 202
    assert response.json() == {"ingested": 3}
    rows = list(PlaybackEvent.objects.order_by("occurred_at"))
    assert [r.type for r in rows] == ["play", "heartbeat", "error"]
    assert [r.video_time for r in rows] == [0.0, 15.0, 31.2]
    assert [r.occurred_at for r in rows] == [
        T0,
        T0 + timedelta(seconds=15),
        T0 + timedelta(seconds=31),
    ]
    assert {r.client_id for r in rows} == {"c-7f3a9e21"}
    assert {r.stream_id for r in rows} == {stream.id}
    assert {r.device for r in rows} == {"desktop"}
    assert {r.country for r in rows} == {"DE"}
    assert [r.extra for r in rows] == [None, None, {"code": "NETWORK"}]
    session = ViewerSession.objects.get()
    assert {r.session_id for r in rows} == {session.id}
    assert (session.device, session.country, session.error_count) == ("desktop", "DE", 1)
    assert PlaybackBatch.objects.get().event_count == 3


def test_country_is_empty_without_a_configured_header(stream, post_events, settings):
    settings.GEOIP_COUNTRY_HEADER = ""
    settings.GEOIP_DATABASE_PATH = ""
    post_events(good_batch(), HTTP_CF_IPCOUNTRY="de")
    assert set(PlaybackEvent.objects.values_list("country", flat=True)) == {""}


def test_text_plain_body_is_accepted_as_sendbeacon_sends_it(stream, post_events):
    response = post_events(good_batch(), content_type="text/plain")
    assert response.status_code == 202, response.content
    assert PlaybackEvent.objects.count() == 3


def test_text_plain_with_charset_is_accepted_as_browsers_send_it(stream, post_events):
    # navigator.sendBeacon(url, string) sends exactly "text/plain;charset=UTF-8".
    response = post_events(good_batch(), content_type="text/plain;charset=UTF-8")
    assert response.status_code == 202, response.content
    assert PlaybackEvent.objects.count() == 3


def test_json_with_charset_parameter_is_accepted(stream, post_events):
    response = post_events(good_batch(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202, response.content
    assert PlaybackEvent.objects.count() == 3


def test_other_content_type_is_refused_with_415(stream, post_events):
    response = post_events(
        "streamId=launch-party&clientId=c-1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert "Content-Type" in response.json()["error"]
    assert_nothing_stored()


def test_body_over_256_kib_is_refused_with_413(stream, post_events):
    payload = good_batch(padding="x" * MAX_BODY)
    response = post_events(payload)
    assert response.status_code == 413
    assert str(MAX_BODY) in response.json()["error"]
    assert_nothing_stored()


def test_body_of_exactly_256_kib_is_accepted(stream, post_events):
    payload = good_batch(padding="")
    payload["padding"] = "x" * (MAX_BODY - len(json.dumps(payload)))
    body = json.dumps(payload)
    assert len(body.encode()) == MAX_BODY
    response = post_events(body)
    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": 3}
    assert PlaybackEvent.objects.count() == 3
    assert PlaybackBatch.objects.get().event_count == 3


def test_repeated_batch_id_is_stored_once_and_answered_the_same(stream, post_events):
    batch_id = new_batch_id()
    first = post_events(good_batch(batchId=batch_id))
    retry = post_events(good_batch(batchId=batch_id))

    assert first.status_code == retry.status_code == 202
    assert first.json() == retry.json() == {"ingested": 3}
    assert PlaybackEvent.objects.count() == 3
    assert PlaybackBatch.objects.count() == 1
    assert ViewerSession.objects.get().event_count == 3


def test_repeated_batch_id_with_different_events_is_answered_as_the_first(stream, post_events):
    batch_id = new_batch_id()
    post_events(good_batch(batchId=batch_id))
    retry = post_events(batch("launch-party", "c-7f3a9e21", heartbeats(60, 75), batchId=batch_id))

    assert retry.status_code == 202
    assert retry.json() == {"ingested": 3}
    assert sorted(PlaybackEvent.objects.values_list("video_time", flat=True)) == [0, 15, 31.2]


def test_batches_without_batch_id_are_each_stored(stream, post_events):
    post_events(good_batch())
    post_events(good_batch())
    assert PlaybackEvent.objects.count() == 6
    assert PlaybackBatch.objects.count() == 2


def test_sent_at_corrects_a_client_clock_one_hour_ahead(stream, post_events):
    client_clock = datetime.now(UTC) + timedelta(hours=1)
    sent_at = client_clock
    ts = client_clock - timedelta(seconds=20)
    payload = batch(
        "launch-party",
        "c-1",
        [{"type": "play", "videoTime": 0, "ts": ts.isoformat()}],
        sentAt=sent_at.isoformat(),
    )
    assert post_events(payload).status_code == 202

    event = PlaybackEvent.objects.get()
    # occurred_at = received_at - (sentAt - ts): twenty seconds before the server received it.
    assert event.occurred_at == event.received_at - timedelta(seconds=20)


def test_future_ts_clamps_to_received_time(stream, post_events):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    post_events(batch("launch-party", "c-1", [{"type": "play", "ts": tomorrow}]))
    event = PlaybackEvent.objects.get()
    assert event.occurred_at == event.received_at


def test_omitted_ts_means_receive_time(stream, post_events):
    before = datetime.now(UTC)
    post_events(batch("launch-party", "c-1", [{"type": "play", "videoTime": 0}]))
    event = PlaybackEvent.objects.get()
    assert event.occurred_at == event.received_at
    assert before <= event.received_at <= datetime.now(UTC)


def test_raw_ip_is_stored_nowhere(stream, post_events, settings):
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    ip = "203.0.113.7"
    response = post_events(
        good_batch(batchId=new_batch_id()),
        REMOTE_ADDR=ip,
        HTTP_X_FORWARDED_FOR=ip,
        HTTP_CF_IPCOUNTRY="FR",
    )
    assert response.status_code == 202
    for model in (PlaybackEvent, ViewerSession, PlaybackBatch):
        rows = list(model.objects.values_list())
        assert rows, model
        for row in rows:
            assert not any(ip in str(value) for value in row), (model, row)


def test_anonymous_endpoint_ignores_a_logged_in_session_cookie(stream, staff_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    response = browser.post(
        "/analytics/events",
        data=json.dumps(good_batch()),
        content_type="application/json",
        HTTP_USER_AGENT=DESKTOP_UA,
    )
    assert response.status_code == 202, response.content
    assert PlaybackEvent.objects.count() == 3


def test_cors_preflight_answers_the_configured_origin_only(stream, client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://player.example.com"]

    def preflight(origin: str):
        return client.options(
            "/analytics/events",
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
        )

    allowed = preflight("https://player.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://player.example.com"
    assert "POST" in allowed["Access-Control-Allow-Methods"]
    other = preflight("https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in other


def test_cors_header_on_the_post_itself(stream, post_events, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://player.example.com"]
    response = post_events(good_batch(), HTTP_ORIGIN="https://player.example.com")
    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == "https://player.example.com"
    assert PlaybackEvent.objects.count() == 3


# --- §10: no input makes the service answer 5xx ---------------------------------------


def _with(**event_fields) -> dict:
    return batch("launch-party", "c-1", [{"type": "play", "videoTime": 0, **event_fields}])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


ODD_BODIES = {
    "video_time_1e308": json.dumps(_with(videoTime=1e308)),
    "video_time_1e309": json.dumps(_with()).replace('"videoTime": 0', '"videoTime": 1e309'),
    "video_time_400_digits": json.dumps(_with()).replace(
        '"videoTime": 0', '"videoTime": ' + "9" * 400
    ),
    "video_time_NaN": json.dumps(_with()).replace('"videoTime": 0', '"videoTime": NaN'),
    "extra_nested_40_deep": json.dumps(_with()).replace(
        '"videoTime": 0', '"videoTime": 0, "extra": {"a": ' + _nested(40) + "}"
    ),
    "extra_nested_5000_deep": json.dumps(_with()).replace(
        '"videoTime": 0', '"videoTime": 0, "extra": {"a": ' + _nested(5000) + "}"
    ),
    "unknown_field_nested_5000_deep": json.dumps(_with())[:-1] + ', "x": ' + _nested(5000) + "}",
    "client_id_emoji": json.dumps(batch("launch-party", "🎧-listener", [{"type": "play"}])),
    "client_id_null_byte": json.dumps(batch("launch-party", "c-\u00001", [{"type": "play"}])),
    "client_id_64_chars_and_newline": json.dumps(
        batch("launch-party", "c" * 64 + "\n", [{"type": "play"}])
    ),
    "client_id_rtl_override": json.dumps(batch("launch-party", "c-\u202e1", [{"type": "play"}])),
    "stream_id_null_byte": json.dumps(batch("launch-\u0000party", "c-1", [{"type": "play"}])),
    "stream_id_emoji": json.dumps(batch("🎉", "c-1", [{"type": "play"}])),
    "type_null_byte": json.dumps(batch("launch-party", "c-1", [{"type": "play\u0000"}])),
    "extra_value_null_byte": json.dumps(_with(extra={"code": "NET\u0000WORK"})),
    "extra_key_null_byte": json.dumps(_with(extra={"co\u0000de": "NETWORK"})),
    "extra_emoji": json.dumps(_with(extra={"code": "🎬🔥", "note": "Grüße"})),
    "lone_surrogate": '{"streamId": "launch-party", "clientId": "c-1", '
    '"events": [{"type": "play", "extra": {"a": "\\ud800"}}]}',
    "json_array_body": json.dumps([_with()]),
    "json_string_body": json.dumps("launch-party"),
    "json_null_body": "null",
    "empty_body": "",
    "invalid_utf8": b'{"streamId": "launch-party\xff", "clientId": "c-1", "events": []}',
    "stream_id_number": json.dumps({**_with(), "streamId": 42}),
    "client_id_number": json.dumps({**_with(), "clientId": 42}),
    "events_object": json.dumps({**_with(), "events": {"type": "play"}}),
    "event_number": json.dumps({**_with(), "events": [7]}),
    "type_number": json.dumps(_with(type=3)),
    "ts_number": json.dumps(_with(ts=1763719200)),
    "ts_year_0": json.dumps(_with(ts="0000-01-01T00:00:00Z")),
    "ts_year_9999_sent_at_year_1": json.dumps(
        {**_with(ts="9999-12-31T23:59:59Z"), "sentAt": "0001-01-01T00:00:00Z"}
    ),
    "ts_year_1_sent_at_year_9999": json.dumps(
        {**_with(ts="0001-01-01T00:00:00Z"), "sentAt": "9999-12-31T23:59:59Z"}
    ),
    "sent_at_boolean": json.dumps({**_with(), "sentAt": True}),
    "batch_id_not_uuid": json.dumps({**_with(), "batchId": "not-a-uuid"}),
    "batch_id_number": json.dumps({**_with(), "batchId": 12345}),
    "stream_id_1000_chars": json.dumps(batch("s" * 1000, "c-1", [{"type": "play"}])),
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_input_never_gets_a_5xx(stream, client, body):
    client.raise_request_exception = False
    response = client.post(
        "/analytics/events", data=body, content_type="application/json", HTTP_USER_AGENT="x"
    )
    assert response.status_code < 500, response.content[:300]
    if response.status_code == 202:
        # Accepted: exactly the one event of the batch is stored, in one batch and session.
        assert response.json() == {"ingested": 1}
        assert PlaybackEvent.objects.count() == 1
        assert PlaybackBatch.objects.get().event_count == 1
        assert ViewerSession.objects.get().event_count == 1
    else:
        # Refused: a 400 (415 for the empty body, sent without a Content-Type) that says
        # why, and nothing of the batch is stored.
        assert response.status_code in (400, 415), response.content[:300]
        assert response.json()["error"]
        assert_nothing_stored()


def test_video_time_1e308_is_finite_and_kept(stream, post_events):
    response = post_events(_with(videoTime=1e308))
    assert response.status_code == 202
    assert PlaybackEvent.objects.get().video_time == 1e308


def test_huge_user_agent_is_accepted(stream, post_events):
    response = post_events(good_batch(), ua=DESKTOP_UA + " x" * 50_000)
    assert response.status_code == 202
    assert set(PlaybackEvent.objects.values_list("device", flat=True)) == {"desktop"}


# --- §5.2 GET /api/streams/<key> -------------------------------------------------------


def test_stream_info_has_exactly_the_spec_fields(stream, client):
    response = client.get("/api/streams/launch-party")
    assert response.status_code == 200
    assert response.json() == {
        "streamId": "launch-party",
        "title": "Launch party",
        "status": "scheduled",
        "kind": "video",
        "providers": [
            {"provider": "hls", "externalId": "https://cdn.example/launch.m3u8", "config": {}}
        ],
        "preferredProvider": "hls",
    }


def test_stream_info_prefers_the_primary_provider(organizer, client):
    live = Stream.objects.create(
        key="bunny-live", title="Bunny live", organizer=organizer, status="live", kind="video"
    )
    StreamProvider.objects.create(stream=live, provider="youtube", external_id="dQw4w9WgXcQ")
    StreamProvider.objects.create(
        stream=live,
        provider="bunny_stream",
        external_id="0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b3c",
        config={"library_id": "12345"},
        is_primary=True,
    )
    body = client.get("/api/streams/bunny-live").json()
    assert body["preferredProvider"] == "bunny_stream"
    assert body["status"] == "live"
    assert sorted(body["providers"], key=lambda p: p["provider"]) == [
        {
            "provider": "bunny_stream",
            "externalId": "0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b3c",
            "config": {"library_id": "12345"},
        },
        {"provider": "youtube", "externalId": "dQw4w9WgXcQ", "config": {}},
    ]


def test_stream_info_for_unknown_key_is_404(stream, client):
    response = client.get("/api/streams/no-such-stream")
    assert response.status_code == 404


def test_stream_info_is_readable_anonymously_with_a_session_cookie(stream, staff_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    assert browser.get("/api/streams/launch-party").status_code == 200
