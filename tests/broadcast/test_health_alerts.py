"""Health alerts (SPEC §9.3): `database_lost` (dbConnected false), `disk_low` (diskFreeMb
< 1024), `buffer_underrun` (a ring buffer fill < 0.10) — opened once while the condition
holds, resolved by the first snapshot where it no longer does, in snapshot time order;
each change a log entry and, with ALERT_WEBHOOK_URL set, a JSON POST that never holds up
the push."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streams.broadcast.models import Alert, BroadcastLogEntry, HealthSnapshot

from .factories_push import T0, at, health_item, push, push_batch, station_with_key


@pytest.fixture
def key(db) -> str:
    return station_with_key()[1]


def push_health(client, key: str, *readings: dict):
    response = push(client, "nightjar-fm", key, push_batch(health=list(readings)))
    assert response.status_code == 202, response.content
    return response


def alerts(kind: str) -> list[tuple]:
    return list(
        Alert.objects.filter(kind=kind)
        .order_by("opened_at")
        .values_list("subject", "opened_at", "resolved_at")
    )


def alert_log(kind: str) -> list[tuple]:
    return list(
        BroadcastLogEntry.objects.filter(event__startswith=f"alert_{kind}")
        .order_by("timestamp", "id")
        .values_list("event", "timestamp", "level")
    )


# --- database_lost -----------------------------------------------------------------------


@pytest.mark.django_db
def test_database_lost_opens_once_while_db_is_disconnected_and_resolves_when_back(client, key):
    push_health(
        client,
        key,
        health_item(ts=at(0), dbConnected=False),
        health_item(ts=at(5), dbConnected=False),
    )
    push_health(client, key, health_item(ts=at(10), dbConnected=False))
    assert alerts("database_lost") == [("database", T0, None)]

    push_health(client, key, health_item(ts=at(15)), health_item(ts=at(20), dbConnected=False))

    assert alerts("database_lost") == [
        ("database", T0, T0 + timedelta(seconds=15)),
        ("database", T0 + timedelta(seconds=20), None),
    ]
    assert alert_log("database_lost") == [
        ("alert_database_lost", T0, "error"),
        ("alert_database_lost_resolved", T0 + timedelta(seconds=15), "info"),
        ("alert_database_lost", T0 + timedelta(seconds=20), "error"),
    ]
    assert Alert.objects.get(resolved_at__isnull=True).message == "SAM database connection lost"


# --- disk_low ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_disk_low_opens_under_1024_mb_free_and_not_at_1024(client, key):
    push_health(client, key, health_item(ts=at(0), diskFreeMb=1024))
    assert alerts("disk_low") == []

    push_health(client, key, health_item(ts=at(5), diskFreeMb=1023.9))
    push_health(client, key, health_item(ts=at(10), diskFreeMb=800))
    assert alerts("disk_low") == [("disk", T0 + timedelta(seconds=5), None)]

    push_health(client, key, health_item(ts=at(15), diskFreeMb=1024))
    assert alerts("disk_low") == [("disk", T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))]
    assert [event for event, _, _ in alert_log("disk_low")] == [
        "alert_disk_low",
        "alert_disk_low_resolved",
    ]
    assert Alert.objects.get().message == "Recording disk space low: 1024 MB free"


# --- buffer_underrun -------------------------------------------------------------------------


@pytest.mark.django_db
def test_buffer_underrun_is_per_deck_under_a_fill_of_0_10(client, key):
    push_health(
        client,
        key,
        health_item(ts=at(0), ringBufferFillDeckA=0.10, ringBufferFillDeckB=0.099),
        health_item(ts=at(5), ringBufferFillDeckA=0.05, ringBufferFillDeckB=0.02),
        health_item(ts=at(10), ringBufferFillDeckA=0.50, ringBufferFillDeckB=0.03),
    )

    assert alerts("buffer_underrun") == [
        ("deck_b", T0, None),
        ("deck_a", T0 + timedelta(seconds=5), T0 + timedelta(seconds=10)),
    ]
    assert Alert.objects.get(subject="deck_a").message == (
        "Buffer underrun risk on Deck A (ring buffer 5% full)"
    )
    assert len(alert_log("buffer_underrun")) == 3  # deck_b opened, deck_a opened and resolved
    assert set(
        BroadcastLogEntry.objects.filter(event__startswith="alert_").values_list(
            "category", flat=True
        )
    ) == {"buffer"}


# --- Time order --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_snapshots_of_a_batch_are_evaluated_in_time_order_not_sent_order(client, key):
    push_health(
        client,
        key,
        health_item(ts=at(10)),
        health_item(ts=at(0), dbConnected=False),
    )

    assert alerts("database_lost") == [("database", T0, T0 + timedelta(seconds=10))]


@pytest.mark.django_db
def test_a_late_batch_of_older_snapshots_is_stored_but_reopens_nothing(client, key):
    push_health(client, key, health_item(ts=at(0), dbConnected=False))
    push_health(client, key, health_item(ts=at(20)))

    push_health(client, key, health_item(ts=at(10), dbConnected=False))

    assert alerts("database_lost") == [("database", T0, T0 + timedelta(seconds=20))]
    assert HealthSnapshot.objects.count() == 3


@pytest.mark.django_db
def test_healthy_snapshots_open_nothing(client, key):
    push_health(client, key, *(health_item(ts=at(5 * n)) for n in range(10)))

    assert Alert.objects.count() == 0
    assert BroadcastLogEntry.objects.count() == 0


@pytest.mark.django_db
def test_one_snapshot_can_open_every_health_alert_at_once(client, key):
    push_health(
        client,
        key,
        health_item(dbConnected=False, diskFreeMb=10, ringBufferFillDeckA=0, ringBufferFillDeckB=0),
    )

    assert sorted(Alert.objects.values_list("kind", "subject")) == [
        ("buffer_underrun", "deck_a"),
        ("buffer_underrun", "deck_b"),
        ("database_lost", "database"),
        ("disk_low", "disk"),
    ]


# --- The webhook ---------------------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.received: list[dict] = []
        self.arrived = threading.Event()
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/alerts"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.received.append(
            {"path": self.path, "type": self.headers.get("Content-Type"), "json": json.loads(body)}
        )
        self.server.arrived.set()
        time.sleep(self.server.delay)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver_factory():
    servers: list[_Receiver] = []

    def start(delay: float = 0.0) -> _Receiver:
        server = _Receiver(delay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_in_process(settings):
    # Delivery in a background thread of this process, as with tasks run eagerly: the
    # case where a slow receiver could hold up the request if the code let it.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


def wait_for(condition, *, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_an_opened_and_a_resolved_alert_are_each_posted_as_json(
    client, webhook_in_process, receiver_factory
):
    _, key = station_with_key()
    receiver = receiver_factory()
    webhook_in_process.ALERT_WEBHOOK_URL = receiver.url

    push_health(client, key, health_item(ts=at(0), dbConnected=False))
    wait_for(lambda: len(receiver.received) == 1)
    push_health(client, key, health_item(ts=at(5)))
    wait_for(lambda: len(receiver.received) == 2)

    opened, resolved = receiver.received
    assert (opened["path"], opened["type"]) == ("/hooks/alerts", "application/json")
    assert opened["json"] == {
        "state": "open",
        "station": "nightjar-fm",
        "kind": "database_lost",
        "subject": "database",
        "message": "SAM database connection lost",
        "opened_at": "2026-11-21T10:00:00+00:00",
        "resolved_at": None,
    }
    assert resolved["json"]["state"] == "resolved"
    assert resolved["json"]["resolved_at"] == "2026-11-21T10:00:05+00:00"


@pytest.mark.django_db(transaction=True)
def test_a_slow_webhook_never_holds_up_the_push(client, webhook_in_process, receiver_factory):
    _, key = station_with_key()
    receiver = receiver_factory(delay=8.0)
    webhook_in_process.ALERT_WEBHOOK_URL = receiver.url

    started = time.monotonic()
    push_health(client, key, health_item(dbConnected=False))
    elapsed = time.monotonic() - started

    assert elapsed < 4.0  # far less than the receiver's 8 s: the push did not wait for it
    assert receiver.arrived.wait(20)  # delivered all the same, while the receiver dawdles
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_is_down_never_holds_up_the_push(client, webhook_in_process):
    _, key = station_with_key()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook_in_process.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks/alerts"

    started = time.monotonic()
    push_health(client, key, health_item(dbConnected=False))
    push_health(client, key, health_item(ts=at(5)))
    elapsed = time.monotonic() - started

    # Delivered in line, the retries' backoff alone (1 + 2 + 4 s a push) would take 14 s.
    assert elapsed < 5.0
    assert list(Alert.objects.values_list("resolved_at", flat=True)) == [T0 + timedelta(seconds=5)]


@pytest.mark.django_db(transaction=True)
def test_a_rejected_push_posts_nothing(client, webhook_in_process, receiver_factory):
    _, key = station_with_key()
    receiver = receiver_factory()
    webhook_in_process.ALERT_WEBHOOK_URL = receiver.url
    batch = push_batch(health=[health_item(dbConnected=False), health_item(cpuPct=-1)])

    assert push(client, "nightjar-fm", key, batch).status_code == 400

    assert not receiver.arrived.wait(0.5)
    assert Alert.objects.count() == 0
