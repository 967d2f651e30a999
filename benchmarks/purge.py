"""A month's retention purge of playback events (SPEC §13): the whole month partition
dropped vs the same rows deleted in bounded batches, on PostgreSQL.

One month well past the retention (about five months back) is seeded with N events
(deterministic, COPY) and aggregated by the real aggregator, so every session is final
and every event purgeable. Then, on the same rows:

1. batched delete: the purge's own steps (`playback_purge`, 10,000 rows per statement
   and transaction) until nothing is left, then the VACUUM that the dead rows call for;
2. partition drop: the rows put back, then `playback_partitions_drop`, which checks
   that every event of the month is purgeable and drops the partition.

    make bench-purge              # or: python -m benchmarks.purge --events 1500000
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from .common import bench_database_url, django_setup, ensure_database, machine

STREAMS = 20
EVENTS_PER_SESSION = 40
DEVICES = ["desktop"] * 5 + ["mobile"] * 4 + ["tablet", "tv"]
COUNTRIES = ["US", "DE", "GB", "IN", "BR", "NG", "JP", "FR", ""]
BATCH_SIZE = 10_000


def generate_events(total: int, *, month: datetime, days: int, seed: int = 11):
    """PlaybackEvent rows, session by session, spread over the first `days` of `month`."""
    rng = random.Random(seed)
    clients = max(total // (EVENTS_PER_SESSION * 4), 1)
    produced = 0
    while produced < total:
        stream = rng.randrange(STREAMS) + 1
        client = f"c{rng.randrange(clients):07d}"
        device, country = rng.choice(DEVICES), rng.choice(COUNTRIES)
        t = month + timedelta(seconds=rng.uniform(0, (days - 1) * 86400))
        n = min(total - produced, rng.randint(EVENTS_PER_SESSION // 2, EVENTS_PER_SESSION * 3 // 2))
        for i in range(n):
            yield (
                stream,
                client,
                "play" if i == 0 else "heartbeat",
                i * 15.0,
                t,
                t,
                country,
                device,
            )
            t += timedelta(seconds=15)
        produced += n


def seed(total: int, month: datetime) -> None:
    from django.db import connection, transaction

    from echonest_analytics.bulk import insert_rows
    from echonest_analytics.partitions import month_partitions_ensure
    from streams.models import Organizer, PlaybackEvent, Stream

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE streams_playbackevent, streams_viewersession, streams_playbackbatch, "
            "streams_viewersessionday, streams_streamstats RESTART IDENTITY"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_purge_month")
    month_partitions_ensure(now=month, months_ahead=0, tables=["streams_playbackevent"])
    organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    for i in range(1, STREAMS + 1):
        Stream.objects.update_or_create(
            id=i, defaults={"key": f"bench-{i}", "title": f"Bench {i}", "organizer": organizer}
        )
    columns = (
        "stream_id",
        "client_id",
        "type",
        "video_time",
        "occurred_at",
        "received_at",
        "country",
        "device",
    )
    with transaction.atomic():
        insert_rows(PlaybackEvent, columns, generate_events(total, month=month, days=28))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000)
    args = parser.parse_args()
    database_url = bench_database_url("echonest_bench_purge")
    ensure_database(database_url)
    django_setup(database_url)
    from django.db import connection

    from echonest_analytics.partitions import month_partition_name, month_partitions, month_start
    from echonest_analytics.purge import purge_until_done
    from streams.aggregation import stream_stats_recompute
    from streams.models import PlaybackEvent, ViewerSession
    from streams.retention import playback_partitions_drop, playback_purge

    def sql(statement: str):
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone() if cursor.description else None

    print(f"machine: {machine()}")
    now = datetime.now(UTC)
    month = month_start(now - timedelta(days=150))
    partition = month_partition_name("streams_playbackevent", month)
    started = time.perf_counter()
    seed(args.events, month)
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    stream_stats_recompute(full=True)
    aggregated = time.perf_counter() - started
    sql("VACUUM ANALYZE streams_playbackevent")
    rows = PlaybackEvent.objects.count()
    size = sql(f"SELECT pg_size_pretty(pg_total_relation_size('{partition}'))")[0]
    print(
        f"seeded {rows:,} events in {partition} ({size} with indexes) in {seeded:.1f}s; "
        f"{ViewerSession.objects.count():,} sessions aggregated in {aggregated:.1f}s"
    )
    sql("CREATE UNLOGGED TABLE bench_purge_month AS SELECT * FROM streams_playbackevent")

    started = time.perf_counter()
    result = purge_until_done(
        (playback_purge,), name="bench batched purge", now=now, batch_size=BATCH_SIZE
    )
    batched = time.perf_counter() - started
    started = time.perf_counter()
    sql("VACUUM streams_playbackevent")
    vacuum = time.perf_counter() - started
    deleted = result.deleted.get("streams.PlaybackEvent", 0)
    left = PlaybackEvent.objects.count()
    print(
        f"batched delete ({BATCH_SIZE:,} rows a statement): {deleted:,} rows in {batched:.1f}s "
        f"({deleted / batched:,.0f} rows/s), then VACUUM {vacuum:.1f}s; {left:,} rows left"
    )

    sql("INSERT INTO streams_playbackevent SELECT * FROM bench_purge_month")
    sql("DROP TABLE bench_purge_month")
    sql("VACUUM ANALYZE streams_playbackevent")
    started = time.perf_counter()
    dropped = playback_partitions_drop(now=now).get("streams.PlaybackEvent", 0)
    drop = time.perf_counter() - started
    gone = partition not in {p.name for p in month_partitions("streams_playbackevent")}
    print(
        f"partition drop (with its check that every event is purgeable): {dropped:,} rows in "
        f"{drop:.2f}s; partition {'dropped' if gone else 'NOT dropped'}; "
        f"{PlaybackEvent.objects.count():,} rows left"
    )
    if drop > 0:
        print(
            f"drop vs batched delete: {batched / drop:,.0f}x faster "
            f"({(batched + vacuum) / drop:,.0f}x counting the VACUUM)"
        )


if __name__ == "__main__":
    main()
