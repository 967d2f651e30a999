"""Push API refusals (SPEC §9.2, §10): 401 without this station's key; 400 naming the
item index and field; 413 over 1 MiB; 415 for other content types — nothing stored, ever."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from .factories_push import (
    NOTHING_STORED,
    health_item,
    log_item,
    play_item,
    push,
    push_batch,
    request_item,
    station_with_key,
    stored_counts,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(db) -> str:
    return station_with_key()[1]


def good_batch() -> dict:
    return push_batch(
        log=[log_item()], plays=[play_item()], requests=[request_item()], health=[health_item()]
    )


# --- 401: the key of this station, and only it ----------------------------------------------


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    assert "ingest key" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert stored_counts() == NOTHING_STORED


def test_no_authorization_header_is_401(client, key):
    assert_unauthorized(push(client, "nightjar-fm", None, good_batch()))


def test_a_wrong_key_is_401(client, key):
    assert_unauthorized(push(client, "nightjar-fm", key + "x", good_batch()))


def test_the_key_of_another_station_is_401(client, key):
    _, other_key = station_with_key("owl-radio", "Owl Radio")

    assert_unauthorized(push(client, "nightjar-fm", other_key, good_batch()))


def test_an_unknown_station_is_401_like_a_wrong_key(client, key):
    assert_unauthorized(push(client, "no-such-station", key, good_batch()))


def test_a_station_that_has_no_key_yet_is_401(client, key):
    from streams.broadcast.models import Station

    Station.objects.update(ingest_key_hash="")

    assert_unauthorized(push(client, "nightjar-fm", "", good_batch()))


@pytest.mark.parametrize("header", ["Basic {key}", "{key}", "Bearer", "Bearer  "])
def test_an_authorization_that_is_not_bearer_and_the_key_is_401(client, key, header):
    response = client.post(
        "/api/broadcast/nightjar-fm/ingest",
        json.dumps(good_batch()),
        content_type="application/json",
        HTTP_AUTHORIZATION=header.format(key=key),
    )
    assert_unauthorized(response)


def test_the_key_is_checked_before_the_body(client, key):
    assert_unauthorized(push(client, "nightjar-fm", "wrong", b"not json"))


# --- 400: the body ---------------------------------------------------------------------------


def assert_rejected(response, *, names: str, detail: str | None = None) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert names in body["error"], body
    if detail is not None:
        assert detail in body["details"], body
    assert stored_counts() == NOTHING_STORED


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"  ", "empty"),
        (b"not json", "JSON"),
        (b'{"batchId": ', "JSON"),
        (b"[]", "batch"),
        (b'"a string"', "batch"),
        (
            b'{"batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b", "log": [{"message": "\\ud800"}]}',
            "JSON",
        ),  # a lone surrogate
        (b"\xff\xfe", "JSON"),
    ],
    ids=["empty", "not-json", "truncated", "array", "string", "lone-surrogate", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_is_400(client, key, body, names):
    assert_rejected(push(client, "nightjar-fm", key, body), names=names)


def test_a_missing_batch_id_is_400(client, key):
    batch = good_batch()
    del batch["batchId"]
    assert_rejected(push(client, "nightjar-fm", key, batch), names="batchId", detail="batchId")


def test_a_batch_id_that_is_not_a_uuid_is_400(client, key):
    batch = {**good_batch(), "batchId": "batch-1"}
    assert_rejected(push(client, "nightjar-fm", key, batch), names="batchId", detail="batchId")


def test_a_batch_without_items_is_400(client, key):
    response = push(client, "nightjar-fm", key, push_batch(log=[], plays=[]))
    assert_rejected(response, names="no items", detail="items")


def test_more_than_500_items_in_all_is_400(client, key):
    batch = push_batch(log=[log_item()] * 300, health=[health_item()] * 201)
    assert_rejected(push(client, "nightjar-fm", key, batch), names="501", detail="items")


def test_more_than_500_items_in_one_part_is_400(client, key):
    batch = push_batch(log=[log_item()] * 501)
    assert_rejected(push(client, "nightjar-fm", key, batch), names="log", detail="log")


@pytest.mark.parametrize("part", ["log", "plays", "requests", "health"])
def test_a_part_that_is_not_a_list_is_400(client, key, part):
    batch = push_batch(**{part: {"ts": "2026-11-21T10:00:00Z"}})
    assert_rejected(push(client, "nightjar-fm", key, batch), names=part, detail=part)


# --- 400: one bad field, named by part, index and wire name -------------------------------

NUL = "\u0000"
BAD_ITEMS = [
    # log
    ("log", log_item(level="fatal"), "level"),
    ("log", log_item(level="INFO"), "level"),
    ("log", log_item(category="video"), "category"),
    ("log", {k: v for k, v in log_item().items() if k != "event"}, "event"),
    ("log", log_item(event=""), "event"),
    ("log", log_item(event="e" * 101), "event"),
    ("log", log_item(event=7), "event"),
    ("log", {k: v for k, v in log_item().items() if k != "message"}, "message"),
    ("log", log_item(message="m" * 4001), "message"),
    ("log", log_item(message=f"a{NUL}b"), "message"),
    ("log", log_item(metadata=["not", "an", "object"]), "metadata"),
    ("log", log_item(metadata="text"), "metadata"),
    ("log", log_item(metadata={"blob": "x" * 5000}), "metadata"),
    ("log", log_item(metadata={"k": f"nul{NUL}"}), "metadata"),
    ("log", log_item(deck="d" * 17), "deck"),
    ("log", log_item(encoder="e" * 201), "encoder"),
    ("log", log_item(songId=""), "songId"),
    ("log", log_item(ts="yesterday"), "ts"),
    ("log", log_item(ts=1763719200), "ts"),
    ("log", log_item(ts="2026-13-01T00:00:00Z"), "ts"),
    ("log", log_item(ts="0001-01-01T00:00:00+01:00"), "ts"),
    ("log", {k: v for k, v in log_item().items() if k != "ts"}, "ts"),
    # plays
    ("plays", play_item(playedMs=-1), "playedMs"),
    ("plays", play_item(playedMs=1.5), "playedMs"),
    ("plays", play_item(playedMs=2**31), "playedMs"),
    ("plays", play_item(playedMs="251000"), "playedMs"),
    ("plays", {k: v for k, v in play_item().items() if k != "playedMs"}, "playedMs"),
    ("plays", play_item(durationMs=-5), "durationMs"),
    ("plays", play_item(listeners="many"), "listeners"),
    ("plays", play_item(listeners=-1), "listeners"),
    ("plays", play_item(crossfade="yes"), "crossfade"),
    ("plays", play_item(songId=""), "songId"),
    ("plays", play_item(songId=47.11), "songId"),
    ("plays", play_item(songId=-4711), "songId"),
    ("plays", play_item(songId="s" * 101), "songId"),
    ("plays", {k: v for k, v in play_item().items() if k != "songId"}, "songId"),
    ("plays", play_item(title="t" * 501), "title"),
    ("plays", play_item(artist=None), "artist"),
    ("plays", play_item(album="a" * 501), "album"),
    ("plays", play_item(genre="g" * 201), "genre"),
    ("plays", play_item(requestId=["r-1"]), "requestId"),
    ("plays", play_item(ts="10:00"), "ts"),
    # requests
    ("requests", request_item(status="expired"), "status"),
    ("requests", request_item(status="PLAYED"), "status"),
    ("requests", {k: v for k, v in request_item().items() if k != "id"}, "id"),
    ("requests", request_item(id=""), "id"),
    ("requests", request_item(decidedAt="soon"), "decidedAt"),
    ("requests", request_item(playedAt="9999-12-31T23:59:59-01:00"), "playedAt"),
    ("requests", request_item(requester="r" * 501), "requester"),
    ("requests", request_item(requester=12), "requester"),
    ("requests", request_item(title=f"Night{NUL}call"), "title"),
    # health
    ("health", health_item(ringBufferFillDeckA=1.5), "ringBufferFillDeckA"),
    ("health", health_item(ringBufferFillDeckB=-0.1), "ringBufferFillDeckB"),
    ("health", health_item(cpuPct=-1), "cpuPct"),
    ("health", health_item(memoryMb="245"), "memoryMb"),
    ("health", health_item(decoderLatencyMs=-0.5), "decoderLatencyMs"),
    ("health", health_item(diskFreeMb=-1), "diskFreeMb"),
    ("health", health_item(activeEncoders=-1), "activeEncoders"),
    ("health", health_item(activeEncoders=1.5), "activeEncoders"),
    ("health", health_item(streamConnected="yes"), "streamConnected"),
    ("health", health_item(dbConnected=None), "dbConnected"),
    ("health", {k: v for k, v in health_item().items() if k != "memoryMb"}, "memoryMb"),
]


@pytest.mark.parametrize(
    ("part", "item", "field"),
    BAD_ITEMS,
    ids=[f"{part}.{field}-{n}" for n, (part, _, field) in enumerate(BAD_ITEMS)],
)
def test_a_bad_field_is_400_naming_the_item_index_and_field(client, key, part, item, field):
    good = {"log": log_item(), "plays": play_item(), "requests": request_item()}
    good["health"] = health_item()
    batch = push_batch(**{p: [good[p]] for p in good})
    batch[part] = [good[part], good[part], good[part], item]  # the bad one is index 3

    response = push(client, "nightjar-fm", key, batch)

    assert_rejected(response, names=f"{part}[3].{field}", detail=f"{part}[3].{field}")


@pytest.mark.parametrize(
    "number", ["1e999", "-1e999", "NaN", "Infinity"], ids=["huge", "minus-huge", "nan", "inf"]
)
def test_a_number_that_is_not_finite_is_400(client, key, number):
    body = json.dumps(push_batch(health=[health_item()])).replace(
        '"cpuPct": 12.5', f'"cpuPct": {number}'
    )
    assert number in body

    response = push(client, "nightjar-fm", key, body)

    assert response.status_code == 400, response.content
    assert stored_counts() == NOTHING_STORED


def test_every_bad_time_and_metadata_of_the_batch_is_named_at_once(client, key):
    batch = push_batch(
        log=[log_item(metadata={"blob": "x" * 5000}), log_item()],
        requests=[request_item(decidedAt="0001-01-01T00:00:00+05:00")],
    )

    response = push(client, "nightjar-fm", key, batch)

    assert response.status_code == 400
    assert set(response.json()["details"]) == {"log[0].metadata", "requests[0].decidedAt"}
    assert stored_counts() == NOTHING_STORED


def test_unknown_fields_are_ignored(client, key):
    batch = push_batch(plays=[play_item(bpm=120)], extra={"x": 1})

    assert push(client, "nightjar-fm", key, batch).status_code == 202


# --- 413 and 415 -----------------------------------------------------------------------------


def test_a_body_over_1_mib_is_413_and_stores_nothing(client, key):
    limit = settings.BROADCAST_INGEST_MAX_BODY_BYTES
    assert limit == 1024 * 1024
    batch = push_batch(log=[log_item(message="x" * 3900) for _ in range(270)])
    body = json.dumps(batch)
    assert len(body) > limit

    response = push(client, "nightjar-fm", key, body)

    assert response.status_code == 413, response.content
    assert str(limit) in response.json()["error"]
    assert stored_counts() == NOTHING_STORED


def test_a_body_over_1_mib_without_content_length_is_413(rf, key):
    from streams.broadcast.apis import StationPushIngestApi

    request = rf.post(
        "/api/broadcast/nightjar-fm/ingest",
        b"{" + b" " * (1024 * 1024) + b"}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    del request.META["CONTENT_LENGTH"]

    response = StationPushIngestApi.as_view({"post": "create"})(request, station="nightjar-fm")

    assert response.status_code == 413
    assert stored_counts() == NOTHING_STORED


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_another_content_type_is_415(client, key, content_type):
    response = push(client, "nightjar-fm", key, good_batch(), content_type=content_type)

    assert response.status_code == 415, response.content
    assert stored_counts() == NOTHING_STORED


# --- §10: odd input is a 4xx, never a 5xx ---------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b", "plays": [{"ts": "2026-11-21T10:00:00Z", '
        '"songId": 1' + "0" * 200 + ', "title": "", "artist": "", "playedMs": 1}]}',
        '{"batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b", "log": [{"ts": "2026-11-21T10:00:00Z", '
        '"level": "info", "category": "audio", "event": "e", "message": "", "metadata": {"a": '
        + "[" * 20000
        + "]" * 20000
        + "}}]}",
        '{"batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b", "log": [' + "null," * 10 + "null]}",
        '{"batchId": "0f8e7c1a-2b3d-4e5f-8a9b-1c2d3e4f5a6b", "health": [{"ts": "+275760-09-13T00:00:00Z"}]}',
    ],
    ids=["huge-integer-song-id", "deeply-nested-metadata", "null-items", "year-275760"],
)
def test_odd_input_is_400_never_5xx(client, key, body):
    response = push(client, "nightjar-fm", key, body)

    assert response.status_code == 400, response.content
    assert stored_counts() == NOTHING_STORED


def test_an_integer_song_id_must_fit_64_bits(client, key):
    too_big = push(client, "nightjar-fm", key, push_batch(plays=[play_item(songId=2**63)]))
    assert_rejected(too_big, names="plays[0].songId", detail="plays[0].songId")

    largest = push(client, "nightjar-fm", key, push_batch(plays=[play_item(songId=2**63 - 1)]))
    assert largest.status_code == 202, largest.content


def test_a_station_key_that_is_no_slug_is_refused_like_an_unknown_station(client):
    response = client.post(
        "/api/broadcast/%C3%96/ingest",
        data='{"batchId": "e13bdea0-c1c2-229c-8bcf-e83ea4e27efd"}',
        content_type="text/plain",
    )
    assert response.status_code == 401
    assert response.json()["error"]
