"""`manage.py bench_usage` (make bench-usage): latency of the usage API, and of the product
insight APIs (funnel, retention, stickiness), over 10M product events.

SPEC §11: GET /api/analytics/usage?days=30 over 10,000,000 product events,
floor p95 < 250 ms, goal p95 < 25 ms; the same goal holds for each insight endpoint
(§6.5), timed after it with `--insight-requests` requests each. The data generator is seeded, so every
run builds the same events: `--users` users over `--days` days ending now, a
different ~20 % of them active each day, 10 % anonymous events. Rows are
generated one day at a time and written with binary COPY into the events table
with its secondary indexes dropped (rebuilt afterwards, as a bulk load should),
then every complete day is rolled up by the real rollup service and the API is
timed through the full Django stack (test client: middleware, auth, view).

PostgreSQL only: it refuses the embedded SQLite database.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import statistics
import time
import uuid

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from analytics.models import DailyActiveUser, DailyRollup, Event
from analytics.rollups import daily_rollup_recompute
from echonest_analytics.days import day_start

EVENT_MIX = [("page_view", 50), ("action", 30), ("conversion", 4), ("song_add", 8), ("vote", 8)]
FEATURES = [
    "dashboard",
    "workflow_builder",
    "boss_mode",
    "search",
    "queue",
    "player",
    "settings",
    "billing",
]
COLUMNS = (
    "uuid",
    "event_type",
    "user_id",
    "feature",
    "url",
    "metadata",
    "occurred_at",
    "received_at",
)
BENCH_KEY = "bench-usage-dash-key"
# The §6.5 endpoints, timed after the usage API on the same data.
INSIGHT_URLS = (
    "/api/analytics/funnel?steps=page_view:dashboard,action,conversion&window_days=14&days=30",
    "/api/analytics/retention?period=week&cohorts=8",
    "/api/analytics/stickiness?days=30",
)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class Command(BaseCommand):
    help = "Seed 10M product events into PostgreSQL, roll them up, time /api/analytics/usage."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=10_000_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--users", type=int, default=20_000)
        parser.add_argument("--requests", type=int, default=300)
        parser.add_argument("--window", type=int, default=30, help="the ?days= of the timed call")
        parser.add_argument(
            "--insight-requests",
            type=int,
            default=100,
            help="requests per insight endpoint (funnel, retention, stickiness); 0 skips them",
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="allow a database whose name lacks 'bench' (its product analytics are wiped)",
        )
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="keep the events already loaded when their count matches --events",
        )

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError(
                "bench_usage needs PostgreSQL (SPEC §11 measures it there); this is "
                f"{connection.vendor}. Set DATABASE_URL=postgres://…, e.g. "
                "postgres://postgres@127.0.0.1:5432/echonest_bench_usage (make bench-usage does)."
            )
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not opts["any_database"]:
            raise CommandError(
                f"bench_usage empties the product analytics tables of {name!r}; point "
                "DATABASE_URL at a benchmark database (a name containing 'bench') or pass "
                "--any-database."
            )
        self._ensure_database()
        call_command("migrate", verbosity=0, interactive=False)
        loaded = Event.objects.count() if opts["reuse"] else -1
        if loaded == opts["events"]:
            self.stdout.write(f"reusing the {loaded:,} events already loaded")
        else:
            self._seed(opts)
            self._roll_up(opts)
        self._measure(opts)
        if opts["insight_requests"] > 0:
            self._measure_insights(opts)

    # --- setup ---------------------------------------------------------------------------

    def _ensure_database(self) -> None:
        name = connection.settings_dict["NAME"]
        try:
            connection.ensure_connection()
        except Exception:  # noqa: BLE001 — most likely the database does not exist yet
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
            self.stdout.write(f"created database {name}")

    def _seed(self, opts) -> None:
        table = Event._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"TRUNCATE {table}, {DailyRollup._meta.db_table}, {DailyActiveUser._meta.db_table}"
            )
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'u'",
                [table],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint "
                "WHERE conrelid = %s::regclass)",
                [table, table],
            )
            indexes = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')

        started = time.perf_counter()
        written = 0
        for rows in self._generate(opts):
            with connection.cursor() as cursor:
                with cursor.cursor.copy(
                    f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(
                        [
                            "uuid",
                            "text",
                            "text",
                            "text",
                            "text",
                            "jsonb",
                            "timestamptz",
                            "timestamptz",
                        ]
                    )
                    for row in rows:
                        copy.write_row(row)
            written += len(rows)
        copied = time.perf_counter() - started
        self.stdout.write(f"copied {written:,} events in {copied:.1f} s")

        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for name, definition in constraints:
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                cursor.execute(definition)
            cursor.execute(f"VACUUM ANALYZE {table}")
        self.stdout.write(f"rebuilt indexes and analyzed in {time.perf_counter() - started:.1f} s")

    def _generate(self, opts):
        """Yield one day of rows at a time (memory stays at one day's events)."""
        rng = random.Random(opts["seed"])
        now = timezone.now().astimezone(dt.UTC)
        first_day = now.date() - dt.timedelta(days=opts["days"] - 1)
        start = day_start(first_day)
        span = (now - start).total_seconds()
        users = [f"user{n:06d}" for n in range(opts["users"])]
        kinds = [kind for kind, _ in EVENT_MIX]
        cum_weights = []
        total = 0
        for _, weight in EVENT_MIX:
            total += weight
            cum_weights.append(total)
        remaining = opts["events"]
        for offset in range(opts["days"]):
            midnight = start + dt.timedelta(days=offset)
            seconds = min(86400.0, (now - midnight).total_seconds())
            count = (
                remaining if offset == opts["days"] - 1 else round(opts["events"] * seconds / span)
            )
            remaining -= count
            active = rng.sample(users, k=int(len(users) * rng.uniform(0.15, 0.25)))
            event_types = rng.choices(kinds, cum_weights=cum_weights, k=count)
            who = rng.choices(active, k=count)
            features = rng.choices(FEATURES, k=count)
            # Time-ordered within the day, as ingestion appends them: the heap order then
            # follows occurred_at the way it does in production.
            moments = sorted(rng.random() * seconds for _ in range(count))
            rows = []
            for i in range(count):
                at = midnight + dt.timedelta(seconds=moments[i])
                feature = features[i]
                rows.append(
                    (
                        uuid.UUID(int=rng.getrandbits(128), version=4),
                        event_types[i],
                        "" if rng.random() < 0.1 else who[i],
                        feature,
                        f"/{feature}",
                        {},
                        at,
                        at,
                    )
                )
            yield rows

    def _roll_up(self, opts) -> None:
        started = time.perf_counter()
        today = timezone.now().astimezone(dt.UTC).date()
        for offset in range(opts["days"] - 1, 0, -1):
            daily_rollup_recompute(day=today - dt.timedelta(days=offset))
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {DailyActiveUser._meta.db_table}")
            cursor.execute(f"VACUUM ANALYZE {DailyRollup._meta.db_table}")
        self.stdout.write(
            f"rolled up {opts['days'] - 1} days in {time.perf_counter() - started:.1f} s"
        )

    # --- measurement ---------------------------------------------------------------------

    def _time_get(self, url: str, *, requests: int) -> tuple[dict, list[float]]:
        """(the first answer's JSON, the milliseconds of `requests` timed GETs after a warm-up)."""
        client = Client()
        timings: list[float] = []
        with override_settings(
            ANALYTICS_DASH_KEY=BENCH_KEY, ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False
        ):
            first = client.get(url, HTTP_X_DASH_KEY=BENCH_KEY)
            if first.status_code != 200:
                raise CommandError(f"{url} answered {first.status_code}: {first.content[:200]!r}")
            for _ in range(min(10, requests)):  # warm-up: connection, plans, caches
                client.get(url, HTTP_X_DASH_KEY=BENCH_KEY)
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(url, HTTP_X_DASH_KEY=BENCH_KEY)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
        return first.json(), timings

    @staticmethod
    def _verdict(p95: float) -> str:
        return "goal met" if p95 < 25 else ("floor met" if p95 < 250 else "FLOOR MISSED")

    def _measure(self, opts) -> None:
        url = f"/api/analytics/usage?days={opts['window']}"
        body, timings = self._time_get(url, requests=opts["requests"])
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
            cursor.execute("SELECT COUNT(*) FROM analytics_event")
            events = cursor.fetchone()[0]
        p50, p95, p99 = (percentile(timings, p) for p in (50, 95, 99))
        self.stdout.write("")
        self.stdout.write(f"GET {url}  ({opts['requests']} requests, Django test client)")
        self.stdout.write(
            f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   p99 {p99:.1f} ms   "
            f"mean {statistics.fmean(timings):.1f} ms   max {max(timings):.1f} ms"
        )
        self.stdout.write(
            f"  SPEC §11: floor p95 < 250 ms, goal p95 < 25 ms -> {self._verdict(p95)}"
        )
        self.stdout.write(
            f"  data: {events:,} events over {opts['days']} days, {opts['users']:,} users; "
            f"answer: dau {body['dau']}, wau {body['wau']}, mau {body['mau']}, "
            f"total_events {body['total_events']:,}, rolled_up_days {body['rolled_up_days']}"
        )
        self.stdout.write(
            f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"PostgreSQL {pg_version}, load average {os.getloadavg()[0]:.2f} "
            "(other processes on the machine skew the figures)"
        )

    def _measure_insights(self, opts) -> None:
        """Time each §6.5 endpoint like the usage API; the same §11 goal applies to each."""
        requests = opts["insight_requests"]
        self.stdout.write("")
        self.stdout.write(f"Product insights ({requests} requests each, Django test client)")
        for url in INSIGHT_URLS:
            body, timings = self._time_get(url, requests=requests)
            p50, p95 = percentile(timings, 50), percentile(timings, 95)
            self.stdout.write(f"GET {url}")
            self.stdout.write(
                f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(timings):.1f} ms   "
                f"-> {self._verdict(p95)}   answer: {self._insight_answer(body)}"
            )

    @staticmethod
    def _insight_answer(body: dict) -> str:
        if "steps" in body:
            return ", ".join(f"{s['step']} {s['users']:,}" for s in body["steps"])
        if "cohorts" in body:
            newest = body["cohorts"][-2] if len(body["cohorts"]) > 1 else body["cohorts"][-1]
            return f"{len(body['cohorts'])} cohorts, {newest['start']}: {newest['returning']}"
        return f"dau_mau {body['dau_mau']}, users {sum(body['users_by_active_days'].values()):,}"
