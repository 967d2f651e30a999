"""How an ingestion body may arrive (SPEC §5, §10), at both endpoints: chunked (no
Content-Length), gzip-compressed (capped once decompressed too), and never with a key
repeated in one JSON object (a batch naming two streams must not land on the second)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from analytics.models import Event
from streams.models import Organizer, PlaybackBatch, PlaybackEvent, Stream

ROOT = Path(__file__).resolve().parents[2]
CAP = 256 * 1024
ENDPOINTS = {"playback": "/analytics/events", "telemetry": "/api/analytics/event"}
STORED_STATUS = {"playback": 202, "telemetry": 200}


@pytest.fixture
def streams(db):
    organizer = Organizer.objects.create(name="Org", slug="org")
    Stream.objects.create(key="first", title="First", organizer=organizer)
    Stream.objects.create(key="second", title="Second", organizer=organizer)


def body_for(endpoint: str) -> bytes:
    if endpoint == "playback":
        payload = {
            "streamId": "first",
            "clientId": "c-1",
            "events": [{"type": "play", "videoTime": 0}, {"type": "heartbeat", "videoTime": 15}],
        }
    else:
        payload = {
            "events": [
                {"event_type": "page_view", "user_id": "u1", "uuid": str(uuid.uuid4())},
                {"event_type": "action", "user_id": "u1", "uuid": str(uuid.uuid4())},
            ]
        }
    return json.dumps(payload).encode()


def stored(endpoint: str) -> int:
    if endpoint == "playback":
        return PlaybackEvent.objects.count()
    return Event.objects.count()


def post(client, endpoint: str, body: bytes, **headers):
    return client.post(ENDPOINTS[endpoint], body, content_type="application/json", **headers)


# --- gzip ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_gzip_body_is_decompressed_and_stored(client, streams, endpoint):
    response = post(
        client, endpoint, gzip.compress(body_for(endpoint)), HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == STORED_STATUS[endpoint], response.content
    assert stored(endpoint) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_plain_body_labelled_gzip_is_refused_as_not_gzip(client, streams, endpoint):
    response = post(client, endpoint, body_for(endpoint), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "not valid gzip" in response.json()["error"]
    assert stored(endpoint) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_gzip_bomb_is_refused_with_413_without_inflating_it(client, streams, endpoint):
    # 10 MiB of spaces around a valid batch compress to about 10 KiB: under the body cap,
    # forty times over it once decompressed.
    bomb = gzip.compress(body_for(endpoint)[:-1] + b" " * (10 * 1024 * 1024) + b"}")
    assert len(bomb) < CAP
    response = post(client, endpoint, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]
    assert stored(endpoint) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_gzip_body_just_under_the_cap_once_decompressed_is_stored(client, streams, endpoint):
    plain = body_for(endpoint)
    padded = plain[:-1] + b" " * (CAP - len(plain)) + b"}"
    assert len(padded) == CAP
    response = post(client, endpoint, gzip.compress(padded), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == STORED_STATUS[endpoint]
    assert stored(endpoint) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("encoding", ["br", "deflate", "compress"])
def test_other_content_encodings_get_415(client, streams, endpoint, encoding):
    response = post(client, endpoint, body_for(endpoint), HTTP_CONTENT_ENCODING=encoding)
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["error"]
    assert stored(endpoint) == 0


# --- duplicate keys ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_naming_two_streams_is_refused_naming_the_key(client, streams):
    body = (
        b'{"streamId": "first", "clientId": "c-1", "streamId": "second",'
        b' "events": [{"type": "play", "videoTime": 0}]}'
    )
    response = post(client, "playback", body)
    assert response.status_code == 400
    assert "'streamId'" in response.json()["error"]
    assert response.json()["details"] == {"streamId": "duplicate key"}
    assert PlaybackEvent.objects.count() == 0
    assert PlaybackBatch.objects.count() == 0


@pytest.mark.django_db
def test_a_playback_event_with_two_types_is_refused(client, streams):
    body = (
        b'{"streamId": "first", "clientId": "c-1",'
        b' "events": [{"type": "play", "videoTime": 0, "type": "error"}]}'
    )
    response = post(client, "playback", body)
    assert response.status_code == 400
    assert "'type'" in response.json()["error"]
    assert PlaybackEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_telemetry_event_with_two_user_ids_is_refused(client):
    body = b'{"events": [{"event_type": "page_view", "user_id": "alice", "user_id": "bob"}]}'
    response = post(client, "telemetry", body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert "'user_id'" in response.json()["error"]
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_repeated_keys_in_different_objects_are_fine(client, streams):
    # "type" in every event, "a" at two depths of one event's extra: no object repeats a key.
    body = (
        b'{"streamId": "first", "clientId": "c-1", "events": ['
        b'{"type": "play", "videoTime": 0, "extra": {"a": {"a": 1}}},'
        b'{"type": "heartbeat", "videoTime": 15, "extra": {"note": "\\"type\\": \\"x\\""}}]}'
    )
    response = post(client, "playback", body)
    assert response.status_code == 202, response.content
    assert PlaybackEvent.objects.count() == 2


# A repeated key the quote count alone could miss: each \u0022 escape is one quote character
# fewer in the text than in the re-encoded value, so two of them offset one repeated key.
@pytest.mark.parametrize(
    ("events", "key"),
    [
        (b'{"type": "error", "videoTime": 1, "extra": {"code": "A", "code": "B"}}', "code"),
        (b'{"type": "error", "extra": {"a": {"b": 1, "b": 2}}}', "b"),
        (b'{"type": "error", "extra": {"a": 1, "a": 2, "q": "\\u0022\\u0022"}}', "a"),
        (
            b'{"type": "play", "ts": "2026-11-21T10:00:00Z", "t\\u0073": "2026-11-21T10:00:05Z"}',
            "ts",
        ),
        (b'{"type": "play", "note": 1, "note": 2}', "note"),
    ],
)
@pytest.mark.django_db
def test_a_key_repeated_anywhere_in_a_batch_is_refused(client, streams, events, key):
    body = b'{"streamId": "first", "clientId": "c-1", "events": [' + events + b"]}"
    response = post(client, "playback", body)
    assert response.status_code == 400, response.content
    assert response.json()["details"] == {key: "duplicate key"}
    assert PlaybackEvent.objects.count() == 0


@pytest.mark.django_db
def test_keys_the_schema_ignores_and_explicit_nulls_are_fine(client, streams):
    body = (
        b'{"streamId": "first", "clientId": "c-1", "sentAt": null, "sdk": "web-2",'
        b' "events": [{"type": "play", "ts": null, "videoTime": null, "extra": {"q": "\\""}},'
        b' {"type": "heartbeat", "videoTime": 15, "extra": null, "seq": 2}]}'
    )
    response = post(client, "playback", body)
    assert response.status_code == 202, response.content
    assert sorted(PlaybackEvent.objects.values_list("type", flat=True)) == ["heartbeat", "play"]
    assert PlaybackEvent.objects.get(type="play").extra == {"q": '"'}


# --- chunked, through a real gunicorn --------------------------------------------------------


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


@pytest.fixture(scope="module")
def gunicorn_server(django_db_setup, django_db_blocker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=database_url,
        DEBUG="false",
        SECRET_KEY="test-only-secret-key-for-the-chunked-body-test-0123456789",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "echonest_analytics.wsgi:application",
            "-c",
            "gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def chunked_post(port: int, path: str, body: bytes, chunk: int = 100) -> tuple[int, bytes]:
    chunks = b"".join(
        f"{len(body[i : i + chunk]):x}\r\n".encode() + body[i : i + chunk] + b"\r\n"
        for i in range(0, len(body), chunk)
    )
    request = (
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        + chunks
        + b"0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        response = b""
        while data := s.recv(65536):
            response += data
    head, _, content = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_chunked_body_is_read_and_stored(gunicorn_server, streams, endpoint):
    status, content = chunked_post(gunicorn_server, ENDPOINTS[endpoint], body_for(endpoint))
    assert status == STORED_STATUS[endpoint], content
    assert stored(endpoint) == 2


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_cap_gets_413(gunicorn_server, streams):
    plain = body_for("playback")
    big = plain[:-1] + b" " * CAP + b"}"
    status, content = chunked_post(gunicorn_server, ENDPOINTS["playback"], big, chunk=16384)
    assert status == 413
    assert PlaybackEvent.objects.count() == 0
