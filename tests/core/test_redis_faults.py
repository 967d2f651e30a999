"""Redis is best effort on the ingestion path (SPEC §10): with Redis refused or hung,
both ingestion endpoints still store and answer success, the rate limit fails open,
and after one failure the request path stops asking Redis for a few seconds.

The faults are real: a closed port, and a private `redis-server` frozen with SIGSTOP
(never the shared server)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest
from rest_framework.throttling import ScopedRateThrottle

from analytics import live_counters
from analytics.models import Event
from echonest_analytics.redis import get_redis, redis_breaker
from streams.models import Organizer, PlaybackEvent, Stream

pytestmark = pytest.mark.django_db

TIMEOUT = 0.5  # seconds, the production REDIS_SOCKET_TIMEOUT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def point_redis_at(settings, port: int) -> None:
    """Live counters, cache and throttle all on 127.0.0.1:port, as production sets them."""
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.REDIS_SOCKET_TIMEOUT = TIMEOUT
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "echonest",
            "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT},
        }
    }
    get_redis.cache_clear()
    redis_breaker.reset()


@pytest.fixture
def throttled(monkeypatch):
    """INGEST_THROTTLE_RATE=1000/min (the throttle reads its rates at import)."""
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"ingest": "1000/min"})


@pytest.fixture
def stream(db) -> Stream:
    organizer = Organizer.objects.create(name="Org", slug="org")
    return Stream.objects.create(key="faults", title="Faults", organizer=organizer)


def playback_body(n: int = 0) -> str:
    return json.dumps(
        {
            "streamId": "faults",
            "clientId": f"c-{n}",
            "events": [{"type": "play", "videoTime": 0}, {"type": "heartbeat", "videoTime": 15}],
        }
    )


def telemetry_body(n: int = 0) -> str:
    return json.dumps(
        {"events": [{"event_type": "page_view", "user_id": f"u{n}", "uuid": str(uuid.uuid4())}]}
    )


def test_redis_down_with_a_rate_limit_both_endpoints_still_store(
    client, settings, throttled, stream, django_capture_on_commit_callbacks, caplog
):
    point_redis_at(settings, free_port())  # nothing listens there
    playback = client.post("/analytics/events", playback_body(), content_type="application/json")
    assert playback.status_code == 202
    assert playback.json() == {"ingested": 2}
    with django_capture_on_commit_callbacks(execute=True):
        telemetry = client.post("/api/analytics/event", telemetry_body(), content_type="text/plain")
    assert telemetry.status_code == 200
    assert telemetry.json() == {"ok": True, "logged": 1}
    assert PlaybackEvent.objects.count() == 2
    assert Event.objects.count() == 1
    assert "ingest throttle: cache unavailable" in caplog.text


@pytest.fixture
def private_redis():
    """A redis-server of our own on a free port; always resumed and killed by PID."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_hung_redis_costs_a_few_timeouts_not_one_per_request(
    client, settings, throttled, private_redis
):
    proc, port = private_redis
    point_redis_at(settings, port)
    settings.REDIS_BREAKER_SECONDS = 60  # the whole batch falls in one cooldown
    assert get_redis().ping()
    proc.send_signal(signal.SIGSTOP)
    posts = 20
    started = time.monotonic()
    statuses = [
        client.post(
            "/api/analytics/event", telemetry_body(n), content_type="text/plain"
        ).status_code
        for n in range(posts)
    ]
    elapsed = time.monotonic() - started
    assert statuses == [200] * posts
    assert Event.objects.count() == posts
    # Without a breaker every post waits out the throttle's and the counters' timeouts
    # (2 × 20 = 40 timeouts, 20 s); with it, the first failure opens it for all the rest.
    assert elapsed < 6 * TIMEOUT, f"{posts} posts took {elapsed:.1f} s"


@pytest.mark.django_db(transaction=True)
def test_after_the_cooldown_the_live_counters_count_again(
    client, settings, throttled, private_redis
):
    proc, port = private_redis
    point_redis_at(settings, port)
    settings.REDIS_BREAKER_SECONDS = 0.5
    proc.send_signal(signal.SIGSTOP)
    assert (
        client.post(
            "/api/analytics/event", telemetry_body(1), content_type="text/plain"
        ).status_code
        == 200
    )
    assert not redis_breaker.available()
    proc.send_signal(signal.SIGCONT)
    time.sleep(0.6)
    assert (
        client.post(
            "/api/analytics/event", telemetry_body(2), content_type="text/plain"
        ).status_code
        == 200
    )
    assert live_counters.get_daily_stats(get_redis()) == {"page_view": 1}
    assert Event.objects.count() == 2
