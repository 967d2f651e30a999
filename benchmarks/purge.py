"""A month's retention purge of playback events (SPEC §13): the whole month partition
dropped vs the same rows deleted in bounded batches, on PostgreSQL.

One month well past the retention (about five months back) is seeded with N events
(deterministic, COPY) and aggregated by the real aggregator, so every session is final
and every event purgeable. Then, on the same rows:

1. batched delete: the purge's own steps (`playback_purge`, 10,000 rows per statement
   and transaction) until nothing is left, then the VACUUM that the dead rows call for;
2. partition drop: the rows put back, then `playback_partitions_drop`, which checks
   that every event of the month is purgeable and drops the partition (timed once as a
   dry run too, which checks and counts but drops nothing, to show what the check costs).

    make bench-purge              # or: python -m benchmarks.purge --events 1500000
    make bench-purge BENCH_ARGS="--table product"   # product events and their uuid keys
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from .aggregate import STREAMS  # the streams playback_tables_reset makes
from .common import bench_database_url, django_setup, ensure_database, machine

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
    from streams.models import PlaybackEvent

    from .aggregate import playback_tables_reset

    playback_tables_reset()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_purge_month")
    month_partitions_ensure(now=month, months_ahead=0, tables=["streams_playbackevent"])
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


def product_seed(total: int, month: datetime) -> None:
    """`total` product events over the first 28 days of `month`, every day rolled up."""
    from django.db import connection, transaction

    from analytics.models import Event
    from analytics.rollups import daily_rollup_recompute
    from echonest_analytics.bulk import insert_rows
    from echonest_analytics.partitions import month_partitions_ensure

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE analytics_event, analytics_dailyrollup, analytics_dailyactiveuser")
        cursor.execute("DROP TABLE IF EXISTS bench_purge_month")
    month_partitions_ensure(now=month, months_ahead=0, tables=["analytics_event"])
    rng = random.Random(13)
    kinds = ["page_view"] * 6 + ["feature_used"] * 3 + ["signup"]
    columns = (
        "uuid",
        "event_type",
        "user_id",
        "feature",
        "url",
        "metadata",
        "occurred_at",
        "received_at",
    )

    def rows():
        for n in range(total):
            at = month + timedelta(seconds=n * (28 * 86400 / total))
            yield (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                rng.choice(kinds),
                f"user{rng.randrange(20_000):05d}",
                "dashboard",
                "/app",
                {},
                at,
                at,
            )

    with transaction.atomic():
        insert_rows(Event, columns, rows())
    for day in range(28):
        daily_rollup_recompute(day=(month + timedelta(days=day)).date())


def sql(statement: str):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchone() if cursor.description else None


def purge_both_ways(*, model, table: str, month: datetime, now: datetime, batched, drop) -> None:
    """Purge the month's rows by batched delete, put them back, purge them by drop."""
    from echonest_analytics.partitions import month_partition_name, month_partitions
    from echonest_analytics.purge import purge_until_done, table_name

    label = table_name(model)
    partition = month_partition_name(table, month)
    sql(f"VACUUM ANALYZE {table}")
    size = sql(f"SELECT pg_size_pretty(pg_total_relation_size('{partition}'))")[0]
    print(f"{model.objects.count():,} rows in {partition} ({size} with indexes)")
    sql(f"CREATE UNLOGGED TABLE bench_purge_month AS SELECT * FROM {table}")  # noqa: S608

    started = time.perf_counter()
    result = purge_until_done(
        (batched,), name="bench batched purge", now=now, batch_size=BATCH_SIZE
    )
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    sql(f"VACUUM {table}")
    vacuum = time.perf_counter() - started
    deleted = result.deleted.get(label, 0)
    print(
        f"batched delete ({BATCH_SIZE:,} rows a statement): {deleted:,} rows in {seconds:.1f}s "
        f"({deleted / seconds:,.0f} rows/s), then VACUUM {vacuum:.1f}s; "
        f"{model.objects.count():,} rows left"
    )

    sql(f"INSERT INTO {table} SELECT * FROM bench_purge_month")  # noqa: S608
    sql("DROP TABLE bench_purge_month")
    sql(f"VACUUM ANALYZE {table}")
    started = time.perf_counter()
    drop(now=now, dry_run=True)
    check = time.perf_counter() - started
    started = time.perf_counter()
    dropped = drop(now=now).get(label, 0)
    dropping = time.perf_counter() - started
    gone = partition not in {p.name for p in month_partitions(table)}
    print(
        f"partition drop (with its check that every row may go): {dropped:,} rows in "
        f"{dropping:.2f}s; partition {'dropped' if gone else 'NOT dropped'}; "
        f"{model.objects.count():,} rows left (the check and count alone, as a dry run: "
        f"{check:.2f}s)"
    )
    if dropping > 0:
        print(
            f"batched delete / partition drop: {seconds / dropping:,.1f}x "
            f"({(seconds + vacuum) / dropping:,.1f}x counting the VACUUM)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000)
    parser.add_argument(
        "--table",
        choices=["playback", "product"],
        default="playback",
        help="playback events (default) or product events (their uuid keys go too)",
    )
    args = parser.parse_args()
    database_url = bench_database_url("echonest_bench_purge")
    ensure_database(database_url)
    django_setup(database_url)

    from echonest_analytics.partitions import month_start

    print(f"machine: {machine()}")
    now = datetime.now(UTC)
    month = month_start(now - timedelta(days=150))
    started = time.perf_counter()
    if args.table == "playback":
        from streams.aggregation import stream_stats_recompute
        from streams.models import PlaybackEvent, ViewerSession
        from streams.retention import playback_partitions_drop, playback_purge

        seed(args.events, month)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        stream_stats_recompute(full=True)
        print(
            f"playback: seeded in {seeded:.1f}s; {ViewerSession.objects.count():,} sessions "
            f"aggregated in {time.perf_counter() - started:.1f}s"
        )
        purge_both_ways(
            model=PlaybackEvent,
            table="streams_playbackevent",
            month=month,
            now=now,
            batched=playback_purge,
            drop=playback_partitions_drop,
        )
    else:
        from analytics.models import Event
        from analytics.retention import product_partitions_drop, product_purge

        product_seed(args.events, month)
        print(f"product: seeded and rolled up in {time.perf_counter() - started:.1f}s")
        purge_both_ways(
            model=Event,
            table="analytics_event",
            month=month,
            now=now,
            batched=product_purge,
            drop=product_partitions_drop,
        )


if __name__ == "__main__":
    main()
