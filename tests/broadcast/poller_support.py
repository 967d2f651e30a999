"""Fixtures of the listener poller tests (imported by the test_poller* modules, kept out
of a conftest so other broadcast tests are not touched): the session's real Icecast,
stations with encoders, a local HTTP stand-in for servers that have no free build
(Shoutcast v2) or that misbehave on purpose, and a clock."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from streams.broadcast.models import Station
from streams.models import Organizer, Stream, StreamProvider

from .icecast_server import ADMIN_PASSWORD, ADMIN_USER, IcecastServer, free_port

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "StandIn",
    "T0",
    "at",
    "closed_port_url",
    "encoder_add",
    "icecast",
    "icecast_server",
    "stand_in",
    "station",
    "station_make",
]

# The poll clock of a test: rounds at T0, T0 + 30 s, … (the poller takes `now`).
T0 = timezone.now().replace(microsecond=0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def icecast_server():
    server = IcecastServer().start()
    yield server
    server.stop()


@pytest.fixture
def icecast(icecast_server):
    """The session's Icecast, with no source and no listener left by the test."""
    yield icecast_server
    icecast_server.listeners_close()
    for mount in list(icecast_server.sources):
        icecast_server.source_stop(mount)


@pytest.fixture
def station_make(db):
    made = iter(range(1, 1000))

    def make(*, plays_from_poller: bool = True, key: str | None = None) -> Station:
        n = next(made)
        organizer, _ = Organizer.objects.get_or_create(slug="radio", defaults={"name": "Radio"})
        stream = Stream.objects.create(
            key=key or f"radio-{n}", title=f"Radio {n}", organizer=organizer, kind="audio"
        )
        return Station.objects.create(stream=stream, plays_from_poller=plays_from_poller)

    return make


@pytest.fixture
def station(station_make) -> Station:
    return station_make()


def encoder_add(
    station: Station, *, provider: str, external_id: str, url: str, admin: bool = False
) -> StreamProvider:
    config = {"url": url}
    if admin:
        config |= {"admin_user": ADMIN_USER, "admin_password": ADMIN_PASSWORD}
    return StreamProvider.objects.create(
        stream=station.stream, provider=provider, external_id=external_id, config=config
    )


def closed_port_url() -> str:
    """A URL nobody listens on: a free port, closed again."""
    return f"http://127.0.0.1:{free_port()}"


class StandIn:
    """A threaded HTTP server on 127.0.0.1 answering what a test sets per path:
    `routes[path] = (status, body, delay_seconds)`; counts the requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes | str | dict, float]] = {}
        self.requests: list[tuple[str, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                stand_in.requests.append((parts.path, parse_qs(parts.query)))
                status, body, delay = stand_in.routes.get(parts.path, (404, "not found", 0))
                if delay:
                    time.sleep(delay)
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the poller gave up waiting: expected for slow routes

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    servers: list[StandIn] = []

    def make() -> StandIn:
        servers.append(StandIn())
        return servers[-1]

    yield make
    for server in servers:
        server.close()
