"""Sustained playback ingestion (SPEC §11, sustained row): gunicorn with production
settings on PostgreSQL at half its measured capacity for N minutes, 100-event batches.

It first measures capacity with a short closed loop (or takes `--rate`), then offers half
of it on a fixed schedule minute after minute and prints, per minute, the answers, errors
and p50/p95 latency, and the web processes' resident memory at the start and the end.
The floor: no errors and RSS growth under 10 %. Every accepted event is counted after.

    make bench-soak                       # 10 minutes
    make bench-soak BENCH_ARGS="--minutes 2"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from .common import machine, percentile
from .ingest import (
    HttpClient,
    batch_bodies,
    bench_ingest_database,
    closed_loop,
    open_loop,
    start_server,
)

FLOOR_RSS_GROWTH = 0.10


def server_rss_mib(pgid: int) -> float:
    """Resident memory of every process in the server's process group (master + workers)."""
    total_kib = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            status = (proc / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, help="batches/s to offer (default: half capacity)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "4")))
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")

    database_url = bench_ingest_database("echonest_bench_soak")
    from django.db import connection

    print(f"machine: {machine()}")
    print(f"server: gunicorn, {args.workers} sync workers, DEBUG=false; {args.minutes} minutes")

    server = start_server(database_url, args.workers, 1)
    accepted = 0
    errors = 0
    try:
        client = HttpClient(keepalive=False)
        warm = batch_bodies(2400, seed=1)
        elapsed, _, statuses = asyncio.run(
            closed_loop(client, warm[:200] if args.rate else warm, 3 if args.rate else 8, 8)
        )
        warm_accepted = statuses.get(202, 0)
        rate = args.rate or warm_accepted / elapsed / 2
        if not args.rate:
            print(f"capacity: {rate * 2:,.0f} batches/s; offering half: {rate:,.0f} batches/s")
        rss_start = server_rss_mib(server.pid)
        print(f"web processes RSS at start: {rss_start:,.1f} MiB")
        for minute in range(1, args.minutes + 1):
            bodies = batch_bodies(int(rate * 60) + 1, seed=1000 + minute)
            elapsed, latencies, statuses = asyncio.run(open_loop(client, bodies, 60, rate))
            ok = statuses.get(202, 0)
            bad = sum(n for status, n in statuses.items() if status != 202)
            accepted += ok
            errors += bad
            ms = sorted(x * 1000 for x in latencies)
            print(
                f"minute {minute:2d}: {ok} accepted, {bad} errors, "
                f"p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, "
                f"RSS {server_rss_mib(server.pid):,.1f} MiB",
                flush=True,
            )
        rss_end = server_rss_mib(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    growth = (rss_end - rss_start) / rss_start if rss_start else 0.0
    print(f"web processes RSS: start {rss_start:,.1f} MiB, end {rss_end:,.1f} MiB ({growth:+.1%})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM streams_playbackevent")
        stored = cursor.fetchone()[0]
    expected = (warm_accepted + accepted) * 100
    verdict = "every accepted event stored once" if stored == expected else "MISMATCH"
    print(f"errors: {errors}; stored events {stored:,}, accepted {expected:,} -> {verdict}")
    met = errors == 0 and growth < FLOOR_RSS_GROWTH and stored == expected
    print(f"floor: 0 errors and RSS growth < 10 % -> {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
