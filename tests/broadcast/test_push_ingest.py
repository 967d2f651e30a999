"""Push API (SPEC §9.2): `POST /api/broadcast/<station>/ingest` with the station's key —
what is stored, once, and all or nothing."""

from __future__ import annotations

import pytest

from streams.broadcast.models import (
    BroadcastBatch,
    BroadcastLogEntry,
    HealthSnapshot,
    Play,
    Song,
    SongRequest,
)
from streams.broadcast.secrets import identity_hash

from .factories_push import (
    NOTHING_STORED,
    T0,
    at,
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
def station_and_key():
    return station_with_key()


@pytest.fixture
def station(station_and_key):
    return station_and_key[0]


@pytest.fixture
def key(station_and_key):
    return station_and_key[1]


def full_batch() -> dict:
    return push_batch(
        log=[log_item(deck="a", songId=4711, metadata={"file": "nightcall.mp3"})],
        plays=[
            play_item(
                album="OutRun",
                genre="Synthwave",
                durationMs=258_000,
                crossfade=True,
                listeners=42,
                requestId="r-93",
            )
        ],
        requests=[
            request_item(
                status="played",
                decidedAt=at(-420),
                playedAt=at(0),
                requester="203.0.113.7",
            )
        ],
        health=[health_item()],
    )


# --- 202: what a batch stores ----------------------------------------------------------


def test_a_batch_of_every_part_is_answered_202_with_the_count_per_part(client, station, key):
    response = push(client, "nightjar-fm", key, full_batch())

    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": {"log": 1, "plays": 1, "requests": 1, "health": 1}}


def test_a_play_stores_its_song_with_metadata_and_links_its_request(client, station, key):
    push(client, "nightjar-fm", key, full_batch())

    song = Song.objects.get()
    assert (song.station, song.external_id, song.title, song.artist) == (
        station,
        "4711",
        "Nightcall",
        "Kavinsky",
    )
    assert (song.album, song.genre, song.duration_ms) == ("OutRun", "Synthwave", 258_000)
    play = Play.objects.get()
    assert (play.song, play.started_at, play.played_ms) == (song, T0, 251_000)
    assert (play.crossfade, play.listeners_at_start, play.source) == (True, 42, "push")
    assert play.request == SongRequest.objects.get(external_id="r-93")


def test_a_request_is_stored_with_its_times_and_a_hashed_requester(client, station, key):
    push(client, "nightjar-fm", key, full_batch())

    request = SongRequest.objects.get()
    assert (request.external_id, request.song.external_id, request.status) == (
        "r-93",
        "4711",
        "played",
    )
    assert request.requested_at.isoformat() == "2026-11-21T09:52:00+00:00"
    assert request.decided_at.isoformat() == "2026-11-21T09:53:00+00:00"
    assert request.played_at == T0
    station.refresh_from_db()
    assert request.requester == identity_hash(station=station, ip="203.0.113.7", user_agent="")
    assert "203.0.113.7" not in request.requester


def test_a_log_entry_and_a_health_snapshot_are_stored_as_sent(client, station, key):
    push(client, "nightjar-fm", key, full_batch())

    entry = BroadcastLogEntry.objects.get()
    assert (entry.timestamp, entry.level, entry.category, entry.event) == (
        T0,
        "info",
        "audio",
        "track_loaded",
    )
    assert (entry.message, entry.metadata, entry.deck, entry.song_external_id) == (
        "Deck A: Nightcall",
        {"file": "nightcall.mp3"},
        "a",
        "4711",
    )
    snapshot = HealthSnapshot.objects.get()
    assert (snapshot.taken_at, snapshot.cpu_pct, snapshot.memory_mb) == (T0, 12.5, 245.0)
    assert (snapshot.ring_buffer_fill_deck_a, snapshot.ring_buffer_fill_deck_b) == (0.87, 0.92)
    assert (snapshot.decoder_latency_ms, snapshot.active_encoders) == (3.1, 3)
    assert (snapshot.stream_connected, snapshot.db_connected, snapshot.disk_free_mb) == (
        True,
        True,
        48_000.0,
    )


def test_any_part_may_be_absent(client, station, key):
    response = push(client, "nightjar-fm", key, push_batch(health=[health_item()]))

    assert response.status_code == 202, response.content
    assert response.json() == {"ingested": {"log": 0, "plays": 0, "requests": 0, "health": 1}}


def test_a_time_without_offset_is_utc_and_one_with_an_offset_is_converted(client, station, key):
    batch = push_batch(
        log=[log_item(ts="2026-11-21T10:00:00"), log_item(ts="2026-11-21T11:00:00+01:00")]
    )

    assert push(client, "nightjar-fm", key, batch).status_code == 202

    assert set(BroadcastLogEntry.objects.values_list("timestamp", flat=True)) == {T0}


def test_500_items_over_all_parts_are_accepted(client, station, key):
    batch = push_batch(
        log=[log_item()] * 200, plays=[play_item()] * 200, health=[health_item()] * 100
    )

    response = push(client, "nightjar-fm", key, batch)

    assert response.status_code == 202, response.content
    assert BroadcastLogEntry.objects.count() == 200
    assert Play.objects.count() == 200
    assert HealthSnapshot.objects.count() == 100


def test_a_body_of_600_kb_is_accepted_the_cap_is_1_mib(client, station, key):
    batch = push_batch(log=[log_item(message="x" * 3000) for _ in range(200)])

    response = push(client, "nightjar-fm", key, batch)

    assert response.status_code == 202, response.content
    assert BroadcastLogEntry.objects.count() == 200


def test_text_plain_is_accepted_like_json(client, station, key):
    response = push(client, "nightjar-fm", key, full_batch(), content_type="text/plain")

    assert response.status_code == 202, response.content


# --- Songs and requests are upserted ---------------------------------------------------


def test_a_request_sent_again_with_the_same_id_updates_its_status(client, station, key):
    push(client, "nightjar-fm", key, push_batch(requests=[request_item(requester="198.51.100.4")]))
    push(
        client,
        "nightjar-fm",
        key,
        push_batch(requests=[request_item(status="approved", decidedAt=at(-420))]),
    )
    push(
        client,
        "nightjar-fm",
        key,
        push_batch(
            plays=[play_item(requestId="r-93")],
            requests=[request_item(status="played", playedAt=at(0))],
        ),
    )

    request = SongRequest.objects.get()
    assert request.status == "played"
    # Each update set only what it sent: decidedAt and the requester stay.
    assert request.decided_at.isoformat() == "2026-11-21T09:53:00+00:00"
    assert request.played_at == T0
    station.refresh_from_db()  # the listener secret the first push made
    assert request.requester == identity_hash(station=station, ip="198.51.100.4")
    assert Play.objects.get().request == request


def test_the_same_request_twice_in_one_batch_keeps_the_later_one(client, station, key):
    batch = push_batch(requests=[request_item(), request_item(status="denied", decidedAt=at(-400))])

    assert push(client, "nightjar-fm", key, batch).status_code == 202

    request = SongRequest.objects.get()
    assert (request.status, request.decided_at.isoformat()) == (
        "denied",
        "2026-11-21T09:53:20+00:00",
    )


def test_a_song_played_again_is_one_song_updated_by_what_the_play_sends(client, station, key):
    push(client, "nightjar-fm", key, push_batch(plays=[play_item(album="OutRun", genre="Synth")]))
    push(
        client,
        "nightjar-fm",
        key,
        push_batch(plays=[play_item(ts=at(600), title="Nightcall (Edit)", genre="Synthwave")]),
    )

    song = Song.objects.get()
    assert (song.title, song.genre) == ("Nightcall (Edit)", "Synthwave")
    assert song.album == "OutRun"  # not sent the second time: kept
    assert Play.objects.filter(song=song).count() == 2


def test_integer_and_string_song_ids_name_the_same_song(client, station, key):
    batch = push_batch(plays=[play_item(songId=4711), play_item(songId="4711", ts=at(300))])

    assert push(client, "nightjar-fm", key, batch).status_code == 202

    assert list(Song.objects.values_list("external_id", flat=True)) == ["4711"]


def test_a_play_naming_an_unknown_request_is_stored_unlinked(client, station, key):
    response = push(client, "nightjar-fm", key, push_batch(plays=[play_item(requestId="r-404")]))

    assert response.status_code == 202
    assert Play.objects.get().request is None


def test_songs_and_requests_of_two_stations_never_mix(client, station, key):
    other, other_key = station_with_key("owl-radio", "Owl Radio")
    push(client, "nightjar-fm", key, push_batch(requests=[request_item(status="approved")]))
    push(client, "owl-radio", other_key, push_batch(requests=[request_item(status="denied")]))

    assert SongRequest.objects.get(station=station).status == "approved"
    assert SongRequest.objects.get(station=other).status == "denied"
    assert Song.objects.filter(external_id="4711").count() == 2


# --- Exactly once and atomic ------------------------------------------------------------


def test_the_same_batch_id_twice_is_stored_once_and_answered_the_same(client, station, key):
    batch = full_batch()
    first = push(client, "nightjar-fm", key, batch)
    stored = stored_counts()

    again = push(client, "nightjar-fm", key, batch)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert stored_counts() == stored
    assert BroadcastBatch.objects.get().item_count == 4


def test_a_retry_is_answered_with_the_first_answer_even_if_its_body_differs(client, station, key):
    batch = push_batch(log=[log_item()] * 3)
    push(client, "nightjar-fm", key, batch)

    again = push(client, "nightjar-fm", key, {**batch, "log": [log_item()]})

    assert again.json() == {"ingested": {"log": 3, "plays": 0, "requests": 0, "health": 0}}
    assert BroadcastLogEntry.objects.count() == 3


def test_the_same_batch_id_from_another_station_is_another_batch(client, station, key):
    _, other_key = station_with_key("owl-radio", "Owl Radio")
    batch = push_batch(log=[log_item()])

    push(client, "nightjar-fm", key, batch)
    push(client, "owl-radio", other_key, batch)

    assert BroadcastLogEntry.objects.count() == 2


def test_one_bad_item_rejects_the_whole_batch_and_stores_nothing(client, station, key):
    batch = full_batch()
    batch["health"].append(health_item(ts=at(5), ringBufferFillDeckB=1.2))

    response = push(client, "nightjar-fm", key, batch)

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["health[1].ringBufferFillDeckB"]
    assert stored_counts() == NOTHING_STORED


def test_a_rejected_batch_can_be_sent_again_fixed_under_the_same_batch_id(client, station, key):
    batch = push_batch(plays=[play_item(playedMs=-1)])
    assert push(client, "nightjar-fm", key, batch).status_code == 400

    fixed = push(client, "nightjar-fm", key, {**batch, "plays": [play_item()]})

    assert fixed.status_code == 202
    assert Play.objects.count() == 1


# --- Cookies and CSRF play no part ---------------------------------------------------------


def test_a_staff_session_cookie_neither_replaces_the_key_nor_trips_csrf(station, key, superuser):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)

    without_key = push(browser, "nightjar-fm", None, full_batch())
    with_key = push(browser, "nightjar-fm", key, full_batch())

    assert without_key.status_code == 401
    assert with_key.status_code == 202, with_key.content


# --- The OpenAPI schema --------------------------------------------------------------------


def test_the_schema_documents_the_push_body_and_its_answers(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/broadcast/{station}/ingest"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert "examples" in body
    assert {"202", "400", "401", "413", "415", "503"} <= set(operation["responses"])
    batch = schema["components"]["schemas"]["BroadcastPushBatch"]
    assert set(batch["properties"]) == {"batchId", "log", "plays", "requests", "health"}
    health = schema["components"]["schemas"]["BroadcastPushHealth"]
    assert health["properties"]["ringBufferFillDeckA"]["maximum"] == 1


def test_a_play_without_a_listener_count_takes_the_latest_fresh_poll_round(client, station, key):
    from datetime import timedelta

    from streams.broadcast.models import ListenerSnapshot
    from streams.models import StreamProvider

    encoders = [
        StreamProvider.objects.create(
            stream=station.stream, provider="icecast", external_id=mount, config={}
        )
        for mount in ("/live.mp3", "/live.aac")
    ]
    round_at = T0 - timedelta(seconds=20)  # 20 s before the play: fresh
    for encoder, listeners in zip(encoders, (7, 5), strict=True):
        ListenerSnapshot.objects.create(
            encoder=encoder, taken_at=round_at, round_at=round_at, listeners=listeners
        )

    plays = [play_item(), play_item(ts=at(90), songId=2), play_item(ts=at(5), listeners=3)]
    response = push(client, station.key, key, push_batch(plays=plays))

    assert response.status_code == 202, response.content
    by_start = {p.started_at: p.listeners_at_start for p in Play.objects.all()}
    assert by_start[T0] == 12  # 7 + 5: the two encoders' counts of the same round
    assert by_start[T0 + timedelta(seconds=90)] is None  # that round is 110 s old: stale
    assert by_start[T0 + timedelta(seconds=5)] == 3  # a count the playout sent is kept
