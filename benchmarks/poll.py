"""One listener poll round over 200 encoders (SPEC §11): a local stand-in HTTP server
(threaded, 127.0.0.1, a free port) answers every encoder's status — Icecast
`status-json.xsl` per server (half of them with admin credentials, so also
`listclients`), Shoutcast v2 `stats?json=1` per sid — and 10 % of the encoders are
slow (the stand-in sleeps 5 s) or unreachable (a closed port). The baseline is the same
round with every server healthy, measured in the same run; the timed part is one
`listeners_poll` with the faults on, writes to PostgreSQL included.

    make bench-poll              # or: python -m benchmarks.poll --encoders 200
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .common import bench_database_url, django_setup, ensure_database, machine

FLOOR_SECONDS = 30.0
GOAL_SECONDS = 5.0
SLOW_SECONDS = 5.0
LISTENERS_PER_CLIENT_LIST = 20


class StandIn:
    """Answers /s<N>/status-json.xsl, /s<N>/admin/listclients and /s<N>/stats; the
    servers in `slow` sleep first."""

    def __init__(self, listeners: dict[int, int]) -> None:
        self.listeners = listeners
        self.slow: set[int] = set()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                _, server, *rest = parts.path.split("/", 2)
                n = int(server[1:])
                if n in stand_in.slow:
                    time.sleep(SLOW_SECONDS)
                body = stand_in.answer(n, "/" + "/".join(rest), parse_qs(parts.query))
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the poller gave up on a slow answer, as it should

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, n: int, path: str, query: dict) -> bytes:
        count = self.listeners[n]
        if path == "/status-json.xsl":
            source = {
                "listenurl": f"http://127.0.0.1:8000/live{n}.mp3",
                "listeners": count,
                "listener_peak": count + 3,
                "bitrate": 128,
                "title": f"Artist {n} - Song {int(time.time()) // 600}",
            }
            return json.dumps(
                {"icestats": {"server_id": "Icecast 2.4.4", "source": source}}
            ).encode()
        if path == "/admin/listclients":
            mount = query["mount"][0]
            listeners = "".join(
                f"<listener><IP>10.0.{n}.{i}</IP><UserAgent>VLC/3.0.{i}</UserAgent>"
                f"<Connected>{60 * i}</Connected><ID>{i}</ID></listener>"
                for i in range(min(count, LISTENERS_PER_CLIENT_LIST))
            )
            return (
                f'<?xml version="1.0"?><icestats><source mount="{mount}">'
                f"<Listeners>{count}</Listeners>{listeners}</source></icestats>"
            ).encode()
        return json.dumps(
            {
                "currentlisteners": count,
                "peaklisteners": count + 3,
                "songtitle": f"Artist {n} - Song",
                "streamstatus": 1,
                "streamuptime": 3600,
                "bitrate": "128",
            }
        ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def seed(encoders: int, stand_in: StandIn, rng: random.Random):
    """Ten stations of `encoders / 10` encoders each; returns the encoders."""
    from streams.broadcast.models import Station
    from streams.models import Organizer, Stream, StreamProvider

    Stream.objects.filter(organizer__slug="bench-poll").delete()
    organizer, _ = Organizer.objects.get_or_create(
        slug="bench-poll", defaults={"name": "Bench poll"}
    )
    rows = []
    for n in range(encoders):
        if n % (encoders // 10 or 1) == 0:
            stream = Stream.objects.create(
                key=f"bench-poll-{n}", title=f"Bench radio {n}", organizer=organizer, kind="audio"
            )
            station = Station.objects.create(stream=stream)
        icecast = n % 2 == 0
        config = {"url": f"{stand_in.url}/s{n}"}
        if icecast and n % 4 == 0:
            config |= {"admin_user": "admin", "admin_password": f"bench-{rng.randrange(10**6)}"}
        rows.append(
            StreamProvider(
                stream=station.stream,
                provider="icecast" if icecast else "shoutcast",
                external_id=f"/live{n}.mp3" if icecast else "1",
                config=config,
            )
        )
    return StreamProvider.objects.bulk_create(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", type=int, default=200)
    parser.add_argument("--faulty-share", type=float, default=0.10)
    args = parser.parse_args()
    database_url = bench_database_url("echonest_bench_poll")
    ensure_database(database_url)
    django_setup(database_url)
    from django.conf import settings
    from django.utils import timezone

    from streams.broadcast.poller import listeners_poll

    print(f"machine: {machine()}")
    rng = random.Random(11)
    listeners = {n: rng.randint(0, 400) for n in range(args.encoders)}
    stand_in = StandIn(listeners)
    try:
        encoders = seed(args.encoders, stand_in, rng)
        faulty = rng.sample(range(args.encoders), round(args.encoders * args.faulty_share))
        slow, dead = faulty[: len(faulty) // 2], faulty[len(faulty) // 2 :]
        print(
            f"{args.encoders} encoders ({sum(e.provider == 'icecast' for e in encoders)} Icecast, "
            f"{sum('admin_user' in e.config for e in encoders)} of them with client lists; "
            f"the rest Shoutcast) on one local stand-in; per-server timeout "
            f"{settings.BROADCAST_POLL_TIMEOUT:g} s"
        )
        now = timezone.now()
        baseline = listeners_poll(now=now)
        print(
            f"baseline, every server healthy: {baseline.seconds:.2f} s "
            f"({baseline.sources_up} up, {baseline.failures} failing, "
            f"{baseline.sessions_started} listener sessions started)"
        )

        stand_in.slow = set(slow)
        for n in dead:
            encoders[n].config["url"] = closed_port_url()
            encoders[n].save(update_fields=["config"])
        started = time.perf_counter()
        summary = listeners_poll(now=now + timedelta(seconds=30))
        seconds = time.perf_counter() - started
        print(
            f"round with {len(slow)} slow ({SLOW_SECONDS:g} s) and {len(dead)} unreachable: "
            f"{seconds:.2f} s ({summary.sources_up} up, {summary.failures} failing, "
            f"{summary.listeners:,} listeners, {summary.plays_started} plays started) — "
            f"{seconds / max(baseline.seconds, 1e-6):.1f}x the healthy baseline"
        )
        verdict = (
            "GOAL MET"
            if seconds < GOAL_SECONDS
            else "MET"
            if seconds < FLOOR_SECONDS
            else "NOT MET"
        )
        print(f"floor: one round < {FLOOR_SECONDS:.0f} s, goal < {GOAL_SECONDS:.0f} s -> {verdict}")
    finally:
        stand_in.close()


if __name__ == "__main__":
    main()
