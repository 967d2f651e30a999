"""Broadcast staff reads over a busy station's year (SPEC §11), on PostgreSQL.

The station: 5 encoders polled every 30 s for a year (5.3M listener snapshots), 150,000
plays of 3,000 songs and 50,000 requests, generated deterministically with set-based SQL
(`generate_series`, no Python loop per row). Then the play caches are refreshed once
(timed; a first run also rolls up the year of listener hours into `ListenerHour`) and
the four staff reads are measured through Django's test Client as a superuser: top
songs, heatmap, listeners daily and requests, each with its defaults. A baseline read
through the same stack (the station's open alerts: sign-in, station lookup, DRF, one
tiny query) is measured in the same run, and each p95 is also given as a ratio to it,
since the machine is shared and noisy (SPEC §11).

    make bench-broadcast          # or: python -m benchmarks.broadcast [--runs 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

from .common import bench_database_url, django_setup, ensure_database, machine, percentile

FLOOR_P95_MS = 250.0
GOAL_P95_MS = 25.0
KEY = "bench-fm"
ENCODERS = 5
PLAYS = 150_000
REQUESTS = 50_000
SONGS = 3_000
BASELINE = "alerts?open=1"
READS = {
    "top songs": "top-songs?period=30d",
    "heatmap": "heatmap",
    "listeners daily": "listeners/daily",
    "requests": "requests?period=30d",
}


def generate(*, now) -> dict:
    """The station and its year of data (kept between runs: regenerated only when missing)."""
    from django.db import connection

    from streams.broadcast.models import ListenerSnapshot, Play, Song, SongRequest, Station
    from streams.models import Organizer, Stream, StreamProvider

    station = Station.objects.filter(stream__key=KEY).first()
    if station is not None and Play.objects.filter(station=station).count() == PLAYS:
        return {"generated": False, "station": station}
    Stream.objects.filter(key=KEY).delete()
    organizer, _ = Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    stream = Stream.objects.create(key=KEY, title="Bench FM", organizer=organizer, kind="audio")
    station = Station.objects.create(
        stream=stream, timezone="Europe/Berlin", plays_from_poller=False
    )
    encoder_ids = [
        StreamProvider.objects.create(
            stream=stream,
            provider="icecast",
            external_id=f"/live{i}.mp3",
            config={"url": "http://x"},
        ).pk
        for i in range(ENCODERS)
    ]
    year_ago = now.replace(microsecond=0) - dt.timedelta(days=365)
    started = time.perf_counter()
    with connection.cursor() as cursor:

        def execute(sql: str, params: list) -> None:
            # `%` is the modulo operator here; only `%s` are placeholders.
            cursor.execute(sql.replace("%", "%%").replace("%%s", "%s"), params)

        execute(
            f"""
            INSERT INTO {ListenerSnapshot._meta.db_table}
                (encoder_id, taken_at, round_at, listeners, server_peak, source_up, bitrate, title)
            SELECT e.id, r.t + interval '120 milliseconds', r.t,
                   GREATEST(0, (40 + 30 * sin(extract(epoch FROM r.t) / 13751.0)
                               + ((extract(epoch FROM r.t)::bigint * 7 + e.id * 13) % 17))::int),
                   NULL, (extract(epoch FROM r.t)::bigint + e.id) % 2879 <> 0, 128, ''
            FROM generate_series(%s::timestamptz, %s::timestamptz, interval '30 seconds') AS r(t)
            CROSS JOIN unnest(%s::bigint[]) AS e(id)
            """,
            [year_ago, now, encoder_ids],
        )
        execute(
            f"""
            INSERT INTO {Song._meta.db_table}
                (station_id, external_id, title, artist, album, genre, duration_ms, song_type)
            SELECT %s, i::text, 'Song ' || i, 'Artist ' || (i % 400), '',
                   (ARRAY['Pop','Rock','Jazz','','Synthwave','Soul'])[1 + i % 6],
                   150000 + (i * 7919) % 150000, 'S'
            FROM generate_series(1, %s::bigint) AS i
            """,
            [station.pk, SONGS],
        )
        execute(
            f"""
            INSERT INTO {Play._meta.db_table}
                (station_id, song_id, started_at, played_ms, crossfade, listeners_at_start,
                 request_id, source, encoder_id, external_ref)
            SELECT %s, s.id, %s::timestamptz + (i * interval '210 seconds'),
                   (i * 104729) % 300000, i % 3 = 0, 100 + i % 97, NULL, 'push', NULL, ''
            FROM generate_series(1, %s::bigint) AS i
            JOIN {Song._meta.db_table} s
              ON s.station_id = %s AND s.external_id = (1 + (i * 7919 + i / 97) % %s)::text
            """,
            [station.pk, year_ago, PLAYS, station.pk, SONGS],
        )
        execute(
            f"""
            INSERT INTO {SongRequest._meta.db_table}
                (station_id, external_id, song_id, requested_at, requester, status,
                 decided_at, played_at)
            SELECT %s, 'r' || i, s.id, %s::timestamptz + (i * interval '630 seconds'),
                   md5('requester' || (i % 2000)),
                   (ARRAY['played','played','played','approved','denied','pending'])[1 + i % 6],
                   NULL,
                   CASE WHEN i % 6 < 3 THEN %s::timestamptz + (i * interval '630 seconds')
                        + ((i % 3600) * interval '1 second') END
            FROM generate_series(1, %s::bigint) AS i
            JOIN {Song._meta.db_table} s
              ON s.station_id = %s AND s.external_id = (1 + (i * 31) % %s)::text
            """,
            [station.pk, year_ago, year_ago, REQUESTS, station.pk, SONGS],
        )
        cursor.execute("ANALYZE")
    return {
        "generated": True,
        "station": station,
        "generate_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    database_url = bench_database_url("echonest_bench_broadcast")
    ensure_database(database_url)
    django_setup(database_url)

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from streams.broadcast.models import ListenerHour, ListenerSnapshot
    from streams.broadcast.play_stats import broadcast_stats_refresh

    now = timezone.now()
    data = generate(now=now)
    station = data["station"]
    started = time.perf_counter()
    broadcast_stats_refresh(station=station)
    refresh_seconds = time.perf_counter() - started

    user, _ = get_user_model().objects.get_or_create(
        username="bench-broadcast", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)

    def measure(path: str) -> dict:
        url = f"/admin/broadcast/{KEY}/{path}"
        for _ in range(3):  # warm-up
            assert client.get(url, HTTP_ACCEPT="application/json").status_code == 200
        timings = []
        for _ in range(args.runs):
            t = time.perf_counter()
            response = client.get(url, HTTP_ACCEPT="application/json")
            timings.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, response.content[:500]
        return {
            "p50_ms": round(percentile(timings, 50), 1),
            "p95_ms": round(percentile(timings, 95), 1),
        }

    baseline = measure(BASELINE)
    results = {}
    for name, path in READS.items():
        results[name] = measure(path)
        results[name]["p95_vs_baseline"] = round(results[name]["p95_ms"] / baseline["p95_ms"], 2)
    worst = max(r["p95_ms"] for r in results.values())
    report = {
        "machine": machine(),
        "snapshots": ListenerSnapshot.objects.filter(encoder__stream__key=KEY).count(),
        "plays": 150_000,
        "requests": 50_000,
        "generated_now": data["generated"],
        "generate_seconds": round(data.get("generate_seconds", 0.0), 1),
        "stats_refresh_seconds": round(refresh_seconds, 2),
        "listener_hours": ListenerHour.objects.filter(station=station).count(),
        "baseline": {"read": BASELINE, **baseline},
        "reads": results,
        "floor_p95_ms": FLOOR_P95_MS,
        "goal_p95_ms": GOAL_P95_MS,
        "floor_met": worst < FLOOR_P95_MS,
        "goal_met": worst < GOAL_P95_MS,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
