"""What the fault tests run inside a Django process of their own (production settings,
the environment's DATABASE_URL): seeding and the retried aggregation run.

    python -m tests.faults.jobs seed-playback 200000
    python -m tests.faults.jobs seed-stream faults [bunny_stream]
    python -m tests.faults.jobs seed-bunny
    python -m tests.faults.jobs aggregate-when-free 120
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta


def seed_playback(total: int) -> None:
    """`total` raw playback events over 20 streams and three days (the aggregation
    benchmark's deterministic generator), no sessions or stats yet.

    The generator's last sessions end up to a quarter of an hour after midnight; moved an
    hour back, every session is stale (older than SESSION_TIMEOUT) at any time of day, so
    two runs a minute apart finalize the same sessions and can be compared.
    """
    from django.db import connection

    from benchmarks.aggregate import seed

    seed(total)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE streams_playbackevent SET occurred_at = occurred_at - interval '1 hour', "
            "received_at = received_at - interval '1 hour'"
        )


def seed_stream(key: str, provider: str = "") -> None:
    """The stream `key`, live; with `provider` (e.g. bunny_stream) one provider to play."""
    from streams.models import Organizer, Stream, StreamProvider

    organizer, _ = Organizer.objects.get_or_create(slug="faults", defaults={"name": "Faults"})
    stream, _ = Stream.objects.get_or_create(
        key=key, defaults={"title": key, "organizer": organizer, "status": "live"}
    )
    if provider:
        StreamProvider.objects.create(
            stream=stream,
            provider=provider,
            external_id=BUNNY_VIDEOS[0],
            config={"library_id": "4242"},
            is_primary=True,
        )


BUNNY_VIDEOS = [f"0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b{n:02d}" for n in range(4)]


def seed_bunny() -> None:
    """Four Bunny streams, each with a day of our own tracked viewing over the last three
    days, aggregated: the import then raises some days' watch time to Bunny's."""
    from echonest_analytics.bulk import insert_rows
    from streams.aggregation import stream_stats_recompute
    from streams.models import Organizer, PlaybackEvent, Stream, StreamProvider

    organizer, _ = Organizer.objects.get_or_create(slug="faults", defaults={"name": "Faults"})
    rows = []
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    for n, guid in enumerate(BUNNY_VIDEOS):
        stream = Stream.objects.create(key=f"bunny-{n}", title=f"Bunny {n}", organizer=organizer)
        StreamProvider.objects.create(
            stream=stream,
            provider=StreamProvider.Provider.BUNNY_STREAM,
            external_id=guid,
            config={"library_id": "4242"},
            is_primary=True,
        )
        for back in range(3):
            t0 = today - timedelta(days=back)
            for i in range(20 + 10 * n):
                at = t0 + timedelta(seconds=15 * i)
                kind = "play" if i == 0 else "heartbeat"
                rows.append((stream.id, f"c-{n}", kind, 15.0 * i, at, at, "US", "desktop"))
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
    insert_rows(PlaybackEvent, columns, rows)
    stream_stats_recompute(full=True)


def aggregate_when_free(timeout: float) -> None:
    """Try `stream_stats_recompute(full=True)` once a second until a run gets the lock
    (the next scheduled run, sooner); print how long that took."""
    from streams.aggregation import stream_stats_recompute

    started = time.monotonic()
    attempts = 0
    while time.monotonic() - started < timeout:
        attempts += 1
        summary = stream_stats_recompute(full=True)
        if summary.ran:
            print(
                json.dumps(
                    {"waited": time.monotonic() - started, "attempts": attempts, "ran": True}
                )
            )
            return
        time.sleep(1)
    print(json.dumps({"waited": time.monotonic() - started, "attempts": attempts, "ran": False}))


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, *args = argv
    if command == "seed-playback":
        seed_playback(int(args[0]))
    elif command == "seed-stream":
        seed_stream(*args)
    elif command == "seed-bunny":
        seed_bunny()
    elif command == "aggregate-when-free":
        aggregate_when_free(float(args[0]))
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
