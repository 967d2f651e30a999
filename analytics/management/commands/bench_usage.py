"""`manage.py bench_usage` (make bench-usage): latency of the usage API over 10M product events,
at 00:20 and 23:59 UTC, and of the product insight APIs (funnel, retention, stickiness).

SPEC §11: GET /api/analytics/usage?days=30 over 10,000,000 product events,
floor p95 < 250 ms, goal p95 < 25 ms. The data generator is seeded, so every
run builds the same events: `--users` users over `--days` days ending now, a
different ~20 % of them active each day, 10 % anonymous events. Rows are
generated one day at a time and written with binary COPY into the events table
with its secondary indexes dropped (rebuilt afterwards, as a bulk load should),
then every complete day is rolled up by the real rollup service (its DailyActiveUser,
UserActivity and UserStepTimes rows included) and the API is timed through the full Django stack (test
client: middleware, auth, view). `--reuse` keeps a loaded database; one loaded before
the UserActivity table existed gets it from its migration.

`--at HH:MM` (repeatable; default 00:20 and 23:59) times the API, and then the insight
APIs, as if it were that time of the UTC day: today's events are replaced by today's share up to that time (a full
day's share × the elapsed fraction), today's intraday rows are built as ingestion keeps
them (`intraday_usage_rebuild`, the rows the store path maintains), and the API runs
with a frozen "now". `--raw-today` times the old path instead (today from raw events),
alternating with the new one in the same run when both are asked for.

PostgreSQL only: it refuses the embedded SQLite database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import statistics
import time
import uuid
from unittest import mock

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from analytics.models import (
    DailyActiveUser,
    DailyRollup,
    Event,
    IntradayActiveUser,
    IntradayEventCount,
    IntradayFill,
    IntradayStepTimes,
    UserActivity,
    UserStepTimes,
)
from analytics.rollups import daily_rollup_recompute, intraday_usage_rebuild
from echonest_analytics.days import day_start
from echonest_analytics.partitions import month_partitions_ensure, month_start

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
            "--at",
            action="append",
            metavar="HH:MM",
            help="time the API as if it were HH:MM UTC today (repeatable; default 00:20 and 23:59)",
        )
        parser.add_argument(
            "--compare",
            action="store_true",
            help="also time today read from raw events (the old path), alternating with the new",
        )
        parser.add_argument("--rounds", type=int, default=3, help="alternations with --compare")
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
        self.today = timezone.now().astimezone(dt.UTC).date()
        self.per_day = opts["events"] // opts["days"]
        past = self.per_day * (opts["days"] - 1)
        loaded = (
            Event.objects.filter(occurred_at__lt=day_start(self.today)).count()
            if opts["reuse"]
            else -1
        )
        if loaded == past:
            self.stdout.write(f"reusing the {loaded:,} events already loaded before today")
        else:
            self._seed(opts)
            self._roll_up(opts)
        for at in opts["at"] or ["00:20", "23:59"]:
            hour, minute = (int(part) for part in at.split(":"))
            now = day_start(self.today) + dt.timedelta(hours=hour, minutes=minute)
            self._seed_today(opts, now=now)
            paths = ["intraday", "raw"] if opts["compare"] else ["intraday"]
            results: dict[str, list[dict]] = {path: [] for path in paths}
            for _ in range(opts["rounds"] if opts["compare"] else 1):
                for path in paths:
                    results[path].append(self._measure(opts, now=now, path=path))
            if opts["compare"] and results["raw"][0]["body"] != results["intraday"][0]["body"]:
                raise CommandError(f"at {at}: today's intraday rows and raw events disagree")
            for path, runs in results.items():
                p95s = [run["p95"] for run in runs]
                self.stdout.write(
                    f"  at {at} UTC, today {path}: p95 per run "
                    f"{', '.join(f'{p:.1f}' for p in p95s)} ms -> median {statistics.median(p95s):.1f} ms"
                )
            if opts["insight_requests"] > 0:
                self._measure_insights(opts, now=now)
        self._machine()

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
                f"TRUNCATE {table}, {DailyRollup._meta.db_table}, {DailyActiveUser._meta.db_table}, "
                f"{IntradayFill._meta.db_table}, {IntradayEventCount._meta.db_table}, "
                f"{IntradayActiveUser._meta.db_table}, {UserActivity._meta.db_table}, "
                f"{UserStepTimes._meta.db_table}, {IntradayStepTimes._meta.db_table}"
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
        # The table is partitioned by month: give every seeded month its partition.
        first_month = month_start(self.today - dt.timedelta(days=opts["days"] - 1))
        months = (self.today.year - first_month.year) * 12 + self.today.month - first_month.month
        month_partitions_ensure(now=first_month, months_ahead=months, tables=[table])

        started = time.perf_counter()
        written = 0
        for rows in self._generate(opts):
            self._copy(rows)
            written += len(rows)
        copied = time.perf_counter() - started
        self.stdout.write(f"copied {written:,} events in {copied:.1f} s")

        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for name, definition in constraints:
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                # A partitioned table's index, recreated on every partition again.
                cursor.execute(definition.replace(" ON ONLY ", " ON "))
            cursor.execute(f"VACUUM ANALYZE {table}")
        self.stdout.write(f"rebuilt indexes and analyzed in {time.perf_counter() - started:.1f} s")

    def _generate(self, opts, *, now: dt.datetime | None = None, days: range | None = None):
        """Yield one day of rows at a time (memory stays at one day's events): every full
        day before today, or (with `now`) today's share up to `now`."""
        first_day = self.today - dt.timedelta(days=opts["days"] - 1)
        users = [f"user{n:06d}" for n in range(opts["users"])]
        kinds = [kind for kind, _ in EVENT_MIX]
        cum_weights = []
        total = 0
        for _, weight in EVENT_MIX:
            total += weight
            cum_weights.append(total)
        offsets = range(opts["days"] - 1) if now is None else [opts["days"] - 1]
        for offset in offsets:
            rng = random.Random(opts["seed"] * 1000 + offset)
            midnight = day_start(first_day + dt.timedelta(days=offset))
            seconds = 86400.0 if now is None else (now - midnight).total_seconds()
            count = round(self.per_day * seconds / 86400.0)
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

    def _copy(self, rows) -> None:
        with connection.cursor() as cursor:
            with cursor.cursor.copy(
                f"COPY {Event._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(
                    ["uuid", "text", "text", "text", "text", "jsonb", "timestamptz", "timestamptz"]
                )
                for row in rows:
                    copy.write_row(row)

    def _seed_today(self, opts, *, now: dt.datetime) -> None:
        """Today's events up to `now`, and today's intraday rows as ingestion keeps them."""
        started = time.perf_counter()
        Event.objects.filter(occurred_at__gte=day_start(self.today)).delete()
        count = 0
        for rows in self._generate(opts, now=now):
            self._copy(rows)
            count += len(rows)
        intraday_usage_rebuild(day=self.today)
        with connection.cursor() as cursor:
            for model in (
                Event,
                IntradayEventCount,
                IntradayActiveUser,
                IntradayFill,
                IntradayStepTimes,
            ):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        self.stdout.write(
            f"\nat {now:%H:%M} UTC: {count:,} events of today, intraday rows built, "
            f"{time.perf_counter() - started:.1f} s"
        )

    def _roll_up(self, opts) -> None:
        started = time.perf_counter()
        for offset in range(opts["days"] - 1, 0, -1):
            daily_rollup_recompute(day=self.today - dt.timedelta(days=offset))
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {DailyActiveUser._meta.db_table}")
            cursor.execute(f"VACUUM ANALYZE {DailyRollup._meta.db_table}")
            cursor.execute(f"VACUUM ANALYZE {UserActivity._meta.db_table}")
            cursor.execute(f"VACUUM ANALYZE {UserStepTimes._meta.db_table}")
        self.stdout.write(
            f"rolled up {opts['days'] - 1} days in {time.perf_counter() - started:.1f} s"
        )

    # --- measurement ---------------------------------------------------------------------

    def _measure(self, opts, *, now: dt.datetime, path: str) -> dict:
        url = f"/api/analytics/usage?days={opts['window']}"
        fills = list(IntradayFill.objects.filter(day=self.today))
        if path == "raw":  # the old path: no intraday rows, today read from raw events
            IntradayFill.objects.filter(day=self.today).delete()
        try:
            body, timings = self._time_get(url, requests=opts["requests"], now=now)
        finally:
            if path == "raw":
                IntradayFill.objects.bulk_create(fills, ignore_conflicts=True)
        p50, p95, p99 = (percentile(timings, p) for p in (50, 95, 99))
        self.stdout.write(
            f"GET {url} at {now:%H:%M} UTC, today {path}: p50 {p50:.1f} ms  p95 {p95:.1f} ms  "
            f"p99 {p99:.1f} ms  max {max(timings):.1f} ms  ({opts['requests']} requests; "
            f"floor p95 < 250, goal < 25 -> {self._verdict(p95)}); answer: dau {body['dau']}, "
            f"wau {body['wau']}, mau {body['mau']}, total_events {body['total_events']:,}, "
            f"rolled_up_days {body['rolled_up_days']}"
        )
        return {"p95": p95, "body": {k: v for k, v in body.items() if k != "ts"}}

    def _time_get(
        self, url: str, *, requests: int, now: dt.datetime | None = None
    ) -> tuple[dict, list[float]]:
        """(the first answer's JSON, the milliseconds of `requests` timed GETs after a
        warm-up), through the full Django stack; with `now`, Django's clock reads it."""
        client = Client()
        timings: list[float] = []
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                override_settings(
                    ANALYTICS_DASH_KEY=BENCH_KEY, ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False
                )
            )
            if now is not None:
                stack.enter_context(mock.patch("django.utils.timezone.now", lambda: now))
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

    def _measure_insights(self, opts, *, now: dt.datetime) -> None:
        """Time each §6.5 endpoint like the usage API, at the same moment of the day; the
        same §11 goal applies to each."""
        requests = opts["insight_requests"]
        self.stdout.write(
            f"Product insights at {now:%H:%M} UTC ({requests} requests each, Django test client)"
        )
        for url in INSIGHT_URLS:
            body, timings = self._time_get(url, requests=requests, now=now)
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

    def _machine(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
            cursor.execute("SELECT COUNT(*) FROM analytics_event")
            events = cursor.fetchone()[0]
        self.stdout.write(
            f"  data: {events:,} events now loaded; machine: {os.cpu_count()} CPUs, "
            f"{platform.machine()}, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, PostgreSQL {pg_version}, load average "
            f"{os.getloadavg()[0]:.2f} (other processes on the machine skew the figures)"
        )
