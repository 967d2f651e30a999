"""Aggregation of 1,000,000 playback events from scratch (SPEC §11): viewer sessions
and daily stream stats rebuilt from raw events alone, on PostgreSQL.

The events are generated deterministically (seeded) and loaded with COPY, with no
sessions, stats or pending batches; the timed part is one `stream_stats_recompute(full=True)`
in a fresh process, whose peak memory (max RSS) is reported.

    make bench-aggregate         # or: python -m benchmarks.aggregate --events 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from .common import bench_database_url, django_setup, ensure_database, machine

FLOOR_SECONDS = 30.0
FLOOR_MEMORY_MB = 500.0
STREAMS = 20
EVENTS_PER_SESSION = 40  # about ten minutes of 15 s heartbeats
DEVICES = ["desktop"] * 5 + ["mobile"] * 4 + ["tablet", "tv", "bot"]
COUNTRIES = ["US", "DE", "GB", "IN", "BR", "NG", "JP", "FR", ""]


def generate_events(total: int, seed: int = 7):
    """Rows for PlaybackEvent, session by session, spread over three UTC days."""
    rng = random.Random(seed)
    # The players' extras (SPEC §6.5) from their own generator, so the events stay the
    # same as without them: each session's play reports a startup time and the video's
    # length, one error in five is fatal.
    extras = random.Random(seed + 1)
    day0 = (datetime.now(UTC) - timedelta(days=3)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    produced = 0
    clients = total // (EVENTS_PER_SESSION * 2)
    while produced < total:
        stream = rng.randrange(STREAMS) + 1
        client = f"c{rng.randrange(clients):07d}"
        device, country = rng.choice(DEVICES), rng.choice(COUNTRIES)
        t = day0 + timedelta(seconds=rng.uniform(0, 3 * 86400))
        n = min(total - produced, rng.randint(EVENTS_PER_SESSION // 2, EVENTS_PER_SESSION * 3 // 2))
        for i in range(n):
            roll = rng.random()
            kind = (
                "play"
                if i == 0
                else (
                    "buffer_start"
                    if roll < 0.03
                    else "buffer_end"
                    if roll < 0.06
                    else "error"
                    if roll < 0.065
                    else "pause"
                    if roll < 0.08
                    else "heartbeat"
                )
            )
            extra = (
                {"startupMs": extras.randint(150, 6000), "duration": 3600.0}
                if kind == "play" and i == 0
                else {"code": "NETWORK", "fatal": extras.random() < 0.2}
                if kind == "error"
                else None
            )
            yield (stream, client, kind, i * 15.0, t, t, country, device, extra)
            t += timedelta(seconds=rng.choice([15, 15, 15, 15, 5, 3]))
        produced += n


def playback_tables_reset() -> None:
    """Empty the playback tables and make the bench organizer's STREAMS streams (ids 1…)."""
    from django.db import connection

    from streams.models import Organizer, Stream

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE streams_playbackevent, streams_viewersession, streams_playbackbatch, "
            "streams_viewersessionday, streams_streamstats RESTART IDENTITY"
        )
    organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    for i in range(1, STREAMS + 1):
        Stream.objects.update_or_create(
            id=i, defaults={"key": f"bench-{i}", "title": f"Bench {i}", "organizer": organizer}
        )
    # The ids above were given, not drawn: move the identity past them, so a stream
    # created later in this database (bench-ingest's, sharing BENCH_DATABASE_URL) gets a
    # free id instead of failing on id 1.
    from django.core.management.color import no_style

    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Stream]):
            cursor.execute(statement)


def seed(total: int, events: Iterable[tuple] | None = None) -> None:
    """Empty the playback tables and COPY in `events` (rows as `generate_events` yields
    them; by default its `total` events), ids numbered from 1 in their order."""
    from django.db import connection

    from echonest_analytics.bulk import insert_rows
    from streams.models import PlaybackEvent

    playback_tables_reset()
    columns = (
        "stream_id",
        "client_id",
        "type",
        "video_time",
        "occurred_at",
        "received_at",
        "country",
        "device",
        "extra",
    )
    from django.db import transaction

    with transaction.atomic():
        insert_rows(PlaybackEvent, columns, generate_events(total) if events is None else events)
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE streams_playbackevent"
        ) if connection.connection.autocommit else None


def run_once() -> None:
    """The timed part, in its own process so its peak memory is its own."""
    from streams.aggregation import stream_stats_recompute
    from streams.models import StreamStats

    started = time.perf_counter()
    summary = stream_stats_recompute(full=True)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "sessions": summary.sessions,
                "stream_days": summary.stream_days,
                "stats_rows": StreamStats.objects.count(),
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--run-once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url = bench_database_url("echonest_bench_aggregate")
    if args.run_once:
        django_setup(database_url)
        run_once()
        return
    ensure_database(database_url)
    django_setup(database_url)
    from django.db import connection

    print(f"machine: {machine()}")
    t = time.perf_counter()
    seed(args.events)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM streams_playbackevent")
        count = cursor.fetchone()[0]
    print(f"seeded {count:,} events (seeded generator, COPY) in {time.perf_counter() - t:.1f}s")
    connection.close()
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.aggregate", "--run-once", "--events", str(args.events)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"aggregate from scratch: {count:,} events -> {result['sessions']:,} sessions, "
        f"{result['stats_rows']:,} stream-day rows in {result['seconds']:.2f}s "
        f"({count / result['seconds']:,.0f} events/s); peak memory {result['max_rss_mb']:.0f} MB"
    )
    ok = result["seconds"] < FLOOR_SECONDS and result["max_rss_mb"] < FLOOR_MEMORY_MB
    print(
        f"floor: < {FLOOR_SECONDS:.0f} s and < {FLOOR_MEMORY_MB:.0f} MB -> {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
