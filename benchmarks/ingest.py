"""Playback ingestion over real HTTP (SPEC §11): gunicorn with production settings on
PostgreSQL, a load generator on the same machine, 100-event batches.

Phase 1 drives the server as hard as it goes (closed loop) and reports events/s.
Phase 2 sends at half that rate on a fixed schedule (open loop, latency measured
from each request's planned start, so a stalled server cannot hide its queue) and
reports p50/p95/p99. Afterwards every accepted event is counted in the database.

    make bench-ingest            # or: python -m benchmarks.ingest --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from .common import bench_database_url, django_setup, ensure_database, machine, percentile

HOST, PORT = "127.0.0.1", 8765
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
FLOOR_EVENTS_PER_SECOND = 25_000
FLOOR_P95_MS = 50.0


def bench_ingest_database(name: str) -> str:
    """The benchmark's own PostgreSQL database, migrated, with the playback tables emptied
    and the one stream the batches name; returns its URL."""
    database_url = bench_database_url(name)
    ensure_database(database_url)
    django_setup(database_url)
    from django.db import connection

    from streams.models import Organizer, Stream

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE streams_playbackevent, streams_viewersession, streams_playbackbatch, "
            "streams_viewersessionday, streams_streamstats"
        )
    organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Stream.objects.get_or_create(key="bench", defaults={"title": "Bench", "organizer": organizer})
    connection.close()
    return database_url


def batch_bodies(count: int, seed: int = 11) -> list[bytes]:
    """Distinct 100-event batches: clients each send consecutive batches of heartbeats."""
    rng = random.Random(seed)
    encoder = msgspec.json.Encoder()
    start = datetime.now(UTC) - timedelta(hours=2)
    bodies = []
    clients = max(1, count // 4)
    for i in range(count):
        client, part = i % clients, i // clients
        t0 = start + timedelta(seconds=rng.uniform(0, 600) + part * 1500)
        events = [
            {
                "type": "heartbeat",
                "videoTime": (part * 100 + n) * 15.0,
                "ts": (t0 + timedelta(seconds=15 * n)).isoformat(),
            }
            for n in range(100)
        ]
        events[0]["type"] = "play"
        bodies.append(
            encoder.encode(
                {
                    "streamId": "bench",
                    "clientId": f"bench-{client:05d}",
                    "batchId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "events": events,
                }
            )
        )
    return bodies


def _request(body: bytes, *, keepalive: bool) -> bytes:
    connection = "keep-alive" if keepalive else "close"
    return (
        f"POST /analytics/events HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n"
        f"User-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\n"
        f"X-Forwarded-Proto: https\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode() + body


class HttpClient:
    """A minimal HTTP/1.1 client: a new connection per request, or kept-alive connections
    reused (as a reverse proxy in front of the web processes does)."""

    def __init__(self, *, keepalive: bool):
        self.keepalive = keepalive
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, body: bytes) -> int:
        for attempt in range(2):
            reuse = self.idle and not attempt  # a retry always gets a fresh connection
            conn = self.idle.pop() if reuse else await asyncio.open_connection(HOST, PORT)
            reader, writer = conn
            try:
                writer.write(_request(body, keepalive=self.keepalive))
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed before answering")
                length, close = 0, not self.keepalive
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                await reader.readexactly(length)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                if attempt:  # a kept-alive connection the server had closed: retry once;
                    raise  # the batchId makes a repeated batch count once
                continue
            if close:
                writer.close()
            else:
                self.idle.append(conn)
            return int(status_line.split()[1])
        raise AssertionError("unreachable")


async def closed_loop(client: HttpClient, bodies: list[bytes], seconds: float, concurrency: int):
    deadline = time.perf_counter() + seconds
    next_body = iter(bodies)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker():
        while time.perf_counter() < deadline:
            body = next(next_body, None)
            if body is None:
                return
            t = time.perf_counter()
            status = await client.post(body)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


async def open_loop(client: HttpClient, bodies: list[bytes], seconds: float, rate: float):
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    count = min(len(bodies), int(seconds * rate))
    started = time.perf_counter()

    async def one(i: int, body: bytes):
        planned = started + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        status = await client.post(body)
        latencies.append(time.perf_counter() - planned)
        statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(i, bodies[i]) for i in range(count)))
    return time.perf_counter() - started, latencies, statuses


def start_server(database_url: str, workers: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_WORKER_CLASS": "gthread" if threads > 1 else "sync",
        "GUNICORN_BIND": f"{HOST}:{PORT}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "echonest_analytics.wsgi:application",
            "--config",
            "gunicorn.conf.py",
        ],
        env=env,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            import urllib.request

            with urllib.request.urlopen(f"http://{HOST}:{PORT}/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not come up")


def report(label: str, elapsed: float, latencies: list[float], statuses: dict[int, int]) -> float:
    accepted = statuses.get(202, 0)
    eps = accepted * 100 / elapsed if elapsed else 0.0
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"{label}: {accepted} batches accepted ({accepted * 100} events) in {elapsed:.1f}s "
        f"= {eps:,.0f} events/s ({accepted / elapsed:,.0f} req/s); latency ms "
        f"p50 {percentile(ms, 50):.1f}, p95 {percentile(ms, 95):.1f}, p99 {percentile(ms, 99):.1f}; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    return eps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "4")))
    parser.add_argument(
        "--threads", type=int, default=1, help="gthread workers with N threads (1: sync workers)"
    )
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="reuse connections, as a reverse proxy does (needs --threads > 1: sync workers close)",
    )
    args = parser.parse_args()

    database_url = bench_ingest_database("echonest_bench_ingest")
    from django.db import connection

    expected_requests = int(args.seconds * 600)  # far more than the server can take
    bodies = batch_bodies(expected_requests * 2)
    print(f"machine: {machine()}")
    kind = f"gthread workers x {args.threads} threads" if args.threads > 1 else "sync workers"
    print(
        f"server: gunicorn, {args.workers} {kind}, DEBUG=false; client: asyncio, "
        f"{args.concurrency} connections, {'kept alive' if args.keepalive else 'one per request'}; "
        f"{len(bodies[0])} bytes per 100-event batch"
    )

    def run(phase, *phase_args):
        async def go():
            return await phase(HttpClient(keepalive=args.keepalive), *phase_args)

        return asyncio.run(go())

    server = start_server(database_url, args.workers, args.threads)
    try:
        _, _, warm = run(closed_loop, bodies[:200], 3, args.concurrency)
        elapsed, lat, st = run(
            closed_loop, bodies[200:expected_requests], args.seconds, args.concurrency
        )
        peak = report("max throughput", elapsed, lat, st)
        rate = peak / 2 / 100
        elapsed, lat, st2 = run(open_loop, bodies[expected_requests:], args.seconds, rate)
        report(f"half load ({rate * 100:,.0f} events/s offered)", elapsed, lat, st2)
        p95 = percentile(sorted(x * 1000 for x in lat), 95)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM streams_playbackevent")
        stored = cursor.fetchone()[0]
    accepted = sum(phase.get(202, 0) for phase in (warm, st, st2)) * 100
    verdict = "every accepted event stored once" if stored == accepted else "MISMATCH"
    print(f"stored events: {stored:,}; accepted: {accepted:,} -> {verdict}")
    ok = peak >= FLOOR_EVENTS_PER_SECOND and p95 < FLOOR_P95_MS and stored == accepted
    print(
        f"floor: >= {FLOOR_EVENTS_PER_SECOND:,} events/s and p95 < {FLOOR_P95_MS:.0f} ms at half "
        f"load -> {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
