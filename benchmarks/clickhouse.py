"""The aggregation on ClickHouse beside PostgreSQL (SPEC §13, docs/scaling.md): sessions
and daily stream stats rebuilt from the same seeded playback events by both engines.

For each size, the events of `benchmarks.aggregate`'s seeded generator are loaded into
chdb (ClickHouse's embedded engine) and aggregated there with the SQL of
`benchmarks.clickhouse_aggregation`; the same events are seeded into PostgreSQL and
aggregated from scratch by `stream_stats_recompute(full=True)`. Both engines' seconds
per step and rows out are printed side by side, then whether they agree: the sessions
(count and sums per stream) and every (stream, day) row of daily figures. An edge-case
set (`edge_events`: every event type and boundary gap, ties, midnights, rows stored out
of order) is checked the same way first. Exits non-zero when the engines disagree.

    make bench-clickhouse      # 1,000,000 and 10,000,000 events on both engines
    python -m benchmarks.clickhouse --events 1000000 10000000 --postgres-max 1000000

chdb is large (about 0.5 GB), so only `make bench-clickhouse` installs it
(requirements/bench-clickhouse.txt), never `make install` or `make test`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from .common import bench_database_url, django_setup, ensure_database, machine

_EPOCH_DATE = date(1970, 1, 1)
_CHUNK = 500_000
EDGE_EVENTS = 20_000
# Sums of floats in another order agree to about 1e-12 relative; more is a real difference.
_REL_TOLERANCE = 1e-9
_ABS_TOLERANCE = 1e-6
_INT_FIGURES = ("sessions", "unique_viewers", "error_sessions", "event_count")
_FLOAT_FIGURES = (
    "tracked_watch_seconds",
    "total_watch_seconds",
    "avg_watch_seconds",
    "buffer_seconds",
    "buffer_ratio",
    "error_rate",
)
_COMPARED = (*_INT_FIGURES, "peak_concurrent_viewers", *_FLOAT_FIGURES)


class Steps:
    """Wall seconds and CPU seconds (from `cpu_clock`, None where it cannot be read) per
    named step, in the order first seen."""

    def __init__(self, cpu_clock: Callable[[], float | None]) -> None:
        self.cpu_clock = cpu_clock
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float | None] = {}

    @contextmanager
    def timed(self, name: str):
        started, cpu_started = time.perf_counter(), self.cpu_clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            cpu_now = self.cpu_clock()
            if cpu_started is None or cpu_now is None:
                self.cpu[name] = None
            elif self.cpu.get(name, 0.0) is not None:
                self.cpu[name] = self.cpu.get(name, 0.0) + cpu_now - cpu_started


def _proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process on this machine, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PostgresCpu:
    """CPU seconds spent for this benchmark by the PostgreSQL server — its backend and
    any parallel workers it starts (sampled every 0.1 s while they live) — plus this
    Python process; None when the server runs on another machine (no /proc to read)."""

    def __init__(self, dsn: str, backend_pid: int) -> None:
        import psycopg

        self.backend_pid = backend_pid
        cmdline = Path(f"/proc/{backend_pid}/cmdline")
        self.local = cmdline.exists() and cmdline.read_bytes().startswith(b"postgres")
        self.workers: dict[int, float] = {}
        self.workers_seen = 0
        self._stop = threading.Event()
        self._thread = None
        if self.local:
            self._conn = psycopg.connect(dsn, autocommit=True)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            pids = self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE leader_pid = %s", [self.backend_pid]
            ).fetchall()
            for (pid,) in pids:
                seconds = _proc_cpu_seconds(pid)
                if seconds is not None:
                    if pid not in self.workers:
                        self.workers_seen += 1
                    self.workers[pid] = max(seconds, self.workers.get(pid, 0.0))

    def __call__(self) -> float | None:
        backend = _proc_cpu_seconds(self.backend_pid) if self.local else None
        if backend is None:
            return None
        return backend + sum(self.workers.values()) + time.process_time()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._conn.close()


# --- the events, written once per size for chdb --------------------------------------


def edge_events(total: int, seed: int = 11):
    """Playback rows (as `generate_events` yields them) that reach every rule the seeded
    benchmark data does not: sessions opening with a heartbeat, an error or a pause;
    `ended`; events at one instant; gaps of just under, at and just over the timeout
    and the gap cap; sessions over midnight; bots; a client's sessions interleaved on
    several streams; and rows stored out of time order (ids not in event order)."""
    from django.conf import settings

    from streams.models import PlaybackEventType
    from streams.session_rules import GAP_CAP_HEARTBEATS

    from .aggregate import COUNTRIES, DEVICES

    rng = random.Random(seed)
    kinds = [kind.value for kind in PlaybackEventType]
    timeout = settings.SESSION_TIMEOUT
    cap = GAP_CAP_HEARTBEATS * settings.HEARTBEAT_INTERVAL
    gaps = [0, 0.001, 1, 15, cap - 0.001, cap, cap + 0.001, 45]
    gaps += [timeout - 0.001, timeout, timeout + 0.001]
    day0 = datetime(2026, 1, 5, tzinfo=UTC)
    rows = []
    while len(rows) < total:
        stream, client = rng.randint(1, 3), f"e{rng.randrange(max(1, total // 60)):05d}"
        device, country = rng.choice(DEVICES), rng.choice(COUNTRIES)
        # Near one of three midnights, so that many sessions cross one.
        t = day0 + timedelta(days=rng.randint(0, 2), seconds=rng.uniform(-3600, 3600))
        for _ in range(min(total - len(rows), rng.randint(1, 25))):
            kind = rng.choice(kinds) if rng.random() < 0.5 else "heartbeat"
            rows.append((stream, client, kind, None, t, t, country, device, None))
            t += timedelta(seconds=rng.choice(gaps))
    rng.shuffle(rows)
    return rows


def events_parquet(events, path: Path) -> int:
    """`events` (rows as `generate_events` yields them) as a Parquet file, with the ids
    PostgreSQL gives them (a fresh identity, rows copied in this order), so that events
    at one instant are ordered alike."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.uint64()),
            ("stream_id", pa.uint64()),
            ("client_id", pa.string()),
            ("type", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("country", pa.string()),
            ("device", pa.string()),
        ]
    )
    columns: list[list] = [[] for _ in schema]
    written = 0
    with pq.ParquetWriter(path, schema) as writer:

        def flush() -> None:
            nonlocal columns
            if columns[0]:
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            columns = [[] for _ in schema]

        for stream, client, kind, _video, occurred, _received, country, device, _extra in events:
            written += 1
            for column, value in zip(
                columns, (written, stream, client, kind, occurred, country, device), strict=True
            ):
                column.append(value)
            if len(columns[0]) == _CHUNK:
                flush()
        flush()
    return written


# --- ClickHouse (chdb) -------------------------------------------------------------------


def _ch_rows(session, query: str) -> list[list]:
    return json.loads(session.query(query, "JSONCompact").bytes())["data"]


def _ch_count(session, table: str) -> int:
    return int(_ch_rows(session, f"SELECT count() FROM {table}")[0][0])


def clickhouse_run(parquet: Path, workdir: Path) -> dict:
    """Load the events into a chdb MergeTree table, then aggregate them, step by step."""
    from chdb import session as chdb_session

    from . import clickhouse_aggregation as ch

    # chdb runs in this process: its CPU time counts every thread of the engine.
    steps = Steps(time.process_time)
    session = chdb_session.Session(str(workdir / "chdb"))
    try:
        with steps.timed("load events"):
            session.query(ch.EVENTS_TABLE)
            session.query(
                "INSERT INTO playback_event SELECT id, stream_id, client_id, type, occurred_at, "
                f"country, device FROM file('{parquet}', Parquet)"
            )
        with steps.timed("sessionize"):
            session.query(ch.events_sessionize_sql())
            session.query(ch.sessions_sum_sql())
        with steps.timed("session days"):
            session.query(ch.session_days_sql())
        with steps.timed("daily stats"):
            rows = clickhouse_day_rows(session)
        fingerprint = _ch_rows(session, ch.sessions_fingerprint_sql())
        rows_out = {
            "events": _ch_count(session, "playback_event"),
            "sessions": _ch_count(session, "agg_sessions"),
            "session days": _ch_count(session, "agg_session_days"),
            "stream days": len(rows),
        }
    finally:
        session.close()
    return {
        "steps": steps.seconds,
        "cpu": steps.cpu,
        "rows": rows,
        "fingerprint": _fingerprint(fingerprint),
        "rows_out": rows_out,
    }


def clickhouse_day_rows(session) -> dict[tuple[int, date], dict]:
    """The (stream, day) rows of daily figures from the chdb tables, derived by the one
    derivation of `streams.stream_figures` (no Bunny streams in the benchmark)."""
    from streams.stream_figures import StreamDayParts, stream_stats_row, top_countries

    from . import clickhouse_aggregation as ch

    parts: dict[tuple[int, int], dict] = {}
    for stream_id, day_no, sessions, unique, errors, watch, buffering, events, peak in _ch_rows(
        session, ch.day_counts_sql()
    ):
        parts[(int(stream_id), int(day_no))] = {
            "sessions": int(sessions),
            "unique_viewers": int(unique),
            "error_sessions": int(errors),
            "tracked_watch_seconds": float(watch),
            "buffer_seconds": float(buffering),
            "event_count": int(events),
            "peak_concurrent_viewers": int(peak),
        }
    countries: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for stream_id, day_no, country, viewers in _ch_rows(
        session, ch.day_viewers_by_sql("start_country")
    ):
        countries.setdefault((int(stream_id), int(day_no)), []).append((country, int(viewers)))
    devices: dict[tuple[int, int], dict[str, int]] = {}
    for stream_id, day_no, device, viewers in _ch_rows(
        session, ch.day_viewers_by_sql("start_device")
    ):
        devices.setdefault((int(stream_id), int(day_no)), {})[device] = int(viewers)
    rows = {}
    for (stream_id, day_no), counted in parts.items():
        day = _EPOCH_DATE + timedelta(days=day_no)
        row = stream_stats_row(
            stream_id=stream_id,
            day=day,
            parts=StreamDayParts(
                **counted,
                top_countries=top_countries(countries.get((stream_id, day_no), [])),
                device_breakdown=devices.get((stream_id, day_no), {}),
            ),
            bunny_watch_seconds=0.0,
            calculated_at=None,
        )
        rows[(stream_id, day)] = _row_figures(row)
    return rows


# --- PostgreSQL (the aggregator) ---------------------------------------------------------

# The aggregator's steps, as `streams.aggregation._aggregate` calls them.
_PG_STEPS = {
    "_sessions_build": "sessionize",
    "_sessions_write": "session days",
    "_dirty_days": "daily stats",
    "_stats_recompute": "daily stats",
}


@contextmanager
def _pg_step_timers(steps: Steps):
    """Time the aggregator's own step functions where `_aggregate` looks them up."""
    import streams.aggregation as aggregation

    originals = {name: getattr(aggregation, name) for name in _PG_STEPS}

    def timed(name, function):
        def run(*args, **kwargs):
            with steps.timed(_PG_STEPS[name]):
                return function(*args, **kwargs)

        return run

    for name, function in originals.items():
        setattr(aggregation, name, timed(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(aggregation, name, function)


def postgres_run(total: int, events, *, database_url: str) -> dict:
    """Seed the events into PostgreSQL and aggregate them from scratch, step by step."""
    from django.db import connection

    from streams.aggregation import stream_stats_recompute
    from streams.models import StreamStats, ViewerSessionDay

    from .aggregate import seed

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    cpu = PostgresCpu(database_url, backend_pid)
    steps = Steps(cpu)
    try:
        with steps.timed("load events"):
            seed(total, events)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE streams_playbackevent")
        with _pg_step_timers(steps):
            with steps.timed("total"):
                summary = stream_stats_recompute(full=True)
    finally:
        cpu.close()
    for measure in (steps.seconds, steps.cpu):
        total_of_run = measure.pop("total")
        named = [v for name, v in measure.items() if name != "load events"]
        if total_of_run is None or None in named:
            measure["scope, finalize, commit"] = None
        else:
            measure["scope, finalize, commit"] = total_of_run - sum(named)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stream_id, COUNT(*), COUNT(DISTINCT client_id), SUM(event_count), "
            "SUM(error_count), SUM(buffer_count), SUM(playing_seconds), SUM(buffer_seconds) "
            "FROM streams_viewersession GROUP BY stream_id ORDER BY stream_id"
        )
        fingerprint = cursor.fetchall()
        cursor.execute("SELECT COUNT(*) FROM streams_playbackevent")
        events = cursor.fetchone()[0]
    rows = {(row.stream_id, row.day): _row_figures(row) for row in StreamStats.objects.all()}
    return {
        "steps": steps.seconds,
        "cpu": steps.cpu,
        "parallel_workers": cpu.workers_seen,
        "rows": rows,
        "fingerprint": _fingerprint(fingerprint),
        "rows_out": {
            "events": events,
            "sessions": summary.sessions,
            "session days": ViewerSessionDay.objects.count(),
            "stream days": len(rows),
        },
    }


# --- comparing ---------------------------------------------------------------------------


def _row_figures(row) -> dict:
    figures = {name: getattr(row, name) for name in _COMPARED}
    figures["top_countries"] = list(row.top_countries)
    figures["device_breakdown"] = dict(sorted(row.device_breakdown.items()))
    return figures


def _fingerprint(rows) -> dict[int, tuple]:
    return {
        int(stream_id): (int(n), int(clients), int(events), int(errors), int(buffers))
        + (float(playing), float(buffering))
        for stream_id, n, clients, events, errors, buffers, playing, buffering in rows
    }


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOLERANCE, abs_tol=_ABS_TOLERANCE)


def _same_tuple(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        x == y if isinstance(x, int) else _close(x, y) for x, y in zip(a, b, strict=True)
    )


def compare(postgres: dict, clickhouse: dict) -> list[str]:
    """What differs between the two engines' sessions and daily rows (empty: they agree)."""
    problems = []
    pg_fp, ch_fp = postgres["fingerprint"], clickhouse["fingerprint"]
    if set(pg_fp) != set(ch_fp):
        problems.append(f"sessions on streams {sorted(pg_fp)} vs {sorted(ch_fp)}")
    for stream_id in sorted(set(pg_fp) & set(ch_fp)):
        if not _same_tuple(pg_fp[stream_id], ch_fp[stream_id]):
            problems.append(
                f"sessions of stream {stream_id}: PostgreSQL {pg_fp[stream_id]} "
                f"vs ClickHouse {ch_fp[stream_id]}"
            )
    pg_rows, ch_rows = postgres["rows"], clickhouse["rows"]
    for key in sorted(set(pg_rows) ^ set(ch_rows)):
        problems.append(
            f"stream {key[0]} day {key[1]}: only on {'PostgreSQL' if key in pg_rows else 'ClickHouse'}"
        )
    for key in sorted(set(pg_rows) & set(ch_rows)):
        pg, ch = pg_rows[key], ch_rows[key]
        for name, value in pg.items():
            other = ch[name]
            same = _close(value, other) if name in _FLOAT_FIGURES else value == other
            if not same:
                problems.append(f"stream {key[0]} day {key[1]} {name}: {value!r} vs {other!r}")
    return problems


def figure_totals(rows: dict) -> dict[str, float]:
    """Sums over all (stream, day) rows of the compared figures, for the printout."""
    totals = {name: 0.0 for name in ("sessions", "unique_viewers", "tracked_watch_seconds")}
    for figures in rows.values():
        for name in totals:
            totals[name] += figures[name]
    totals["peak_concurrent_viewers"] = max(
        (figures["peak_concurrent_viewers"] for figures in rows.values()), default=0
    )
    buffer = sum(figures["buffer_seconds"] for figures in rows.values())
    totals["buffer_ratio"] = buffer / totals["tracked_watch_seconds"] if rows else 0.0
    errors = sum(figures["error_sessions"] for figures in rows.values())
    totals["error_rate"] = errors / totals["sessions"] if totals["sessions"] else 0.0
    return totals


# --- the printout ------------------------------------------------------------------------

_STEP_ORDER = ("sessionize", "session days", "daily stats", "scope, finalize, commit")


def _total(measure: dict[str, float | None]) -> float | None:
    """The aggregation's total of a measure: every step but loading the events."""
    values = [v for name, v in measure.items() if name != "load events"]
    return None if None in values else sum(values)


def print_size(postgres: dict | None, clickhouse: dict) -> None:
    def cells(run: dict | None, name: str | None) -> str:
        if run is None:
            return f"{'not run':>22}"
        if name is None:
            wall, cpu = _total(run["steps"]), _total(run["cpu"])
        else:
            wall, cpu = run["steps"].get(name), run["cpu"].get(name)
        if wall is None:
            return f"{'—':>22}"
        cpu_text = "?" if cpu is None else f"{cpu:.2f}"
        return f"{wall:10.2f} s {cpu_text:>8} s"

    print(f"  {'':<26}{'PostgreSQL':>22}{'ClickHouse (chdb)':>22}")
    print(f"  {'step':<26}{'wall':>12}{'CPU':>10}{'wall':>12}{'CPU':>10}")
    print(
        f"  {'load events (not in total)':<26}{cells(postgres, 'load events')}"
        f"{cells(clickhouse, 'load events')}"
    )
    for name in _STEP_ORDER:
        print(f"  {name:<26}{cells(postgres, name)}{cells(clickhouse, name)}")
    print(f"  {'total (aggregation)':<26}{cells(postgres, None)}{cells(clickhouse, None)}")
    if postgres:
        pg_wall, ch_wall = _total(postgres["steps"]), _total(clickhouse["steps"])
        pg_cpu, ch_cpu = _total(postgres["cpu"]), _total(clickhouse["cpu"])
        ratio = f"  ClickHouse / PostgreSQL: wall {ch_wall / pg_wall:.2f}×"
        if pg_cpu and ch_cpu:
            ratio += f", CPU {ch_cpu / pg_cpu:.2f}×"
        workers = postgres["parallel_workers"]
        print(f"{ratio} (PostgreSQL parallel workers seen: {workers})")
    for name in ("events", "sessions", "session days", "stream days"):
        pg = f"{postgres['rows_out'][name]:,}" if postgres else "not run"
        print(f"  rows out: {name:<16}{pg:>14}{clickhouse['rows_out'][name]:>14,}")
    for label, run in (("PostgreSQL", postgres), ("ClickHouse", clickhouse)):
        if run is None:
            continue
        t = figure_totals(run["rows"])
        print(
            f"  {label:<11} over all stream-days: sessions {t['sessions']:,.0f}, "
            f"unique viewers (summed per day) {t['unique_viewers']:,.0f}, "
            f"watch {t['tracked_watch_seconds']:,.1f} s, max peak {t['peak_concurrent_viewers']}, "
            f"buffer ratio {t['buffer_ratio']:.6f}, error rate {t['error_rate']:.6f}"
        )


def run_case(label: str, total: int, events, *, with_postgres: bool, database_url: str) -> bool:
    """Aggregate one set of events on both engines (ClickHouse only, without
    `with_postgres`), print the figures; False when the engines disagree. `events`
    makes the rows anew for each engine."""
    workdir = Path(tempfile.mkdtemp(prefix="echonest-bench-clickhouse-"))
    try:
        day = datetime.now(UTC).date()
        parquet = workdir / "events.parquet"
        started = time.perf_counter()
        events_parquet(events(), parquet)
        print(f"\n{label}: {total:,} events, generated in {time.perf_counter() - started:.1f}s")
        clickhouse = clickhouse_run(parquet, workdir)
        postgres = (
            postgres_run(total, events(), database_url=database_url) if with_postgres else None
        )
        if datetime.now(UTC).date() != day:
            sys.exit("The run crossed a UTC midnight (the generator's days moved): run it again.")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_size(postgres, clickhouse)
    if postgres is None:
        print("  same sessions and daily stats: not checked (PostgreSQL not run at this size)")
        return True
    problems = compare(postgres, clickhouse)
    if problems:
        print(f"  same sessions and daily stats: MISMATCH ({len(problems)} differences)")
        for problem in problems[:20]:
            print(f"    {problem}")
        return False
    print(
        f"  same sessions and daily stats: MATCH ({clickhouse['rows_out']['sessions']:,} "
        f"sessions; {len(clickhouse['rows'])} stream-days × sessions, unique viewers, watch "
        "time, peak concurrent, buffer ratio, error rate, top countries, devices)"
    )
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events",
        type=int,
        nargs="*",
        default=[1_000_000, 10_000_000],
        help="sizes of seeded benchmark events to run, each on both engines",
    )
    parser.add_argument(
        "--postgres-max",
        type=int,
        default=None,
        help="run PostgreSQL only for sizes up to this many events (ClickHouse runs them all)",
    )
    parser.add_argument(
        "--edge-events",
        type=int,
        default=EDGE_EVENTS,
        help="events of the edge-case set checked on both engines first (0: none)",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    database_url = bench_database_url("echonest_bench_clickhouse")
    ensure_database(database_url)
    django_setup(database_url)
    from chdb import session as chdb_session

    from .aggregate import generate_events

    print(f"machine: {machine()}")
    with chdb_session.Session() as probe:
        version = _ch_rows(probe, "SELECT version()")[0][0]
    print(f"ClickHouse: chdb {_chdb_version()} (ClickHouse {version}, embedded, one node)")
    agree = True
    if args.edge_events:
        agree &= run_case(
            "edge cases (every event type and boundary gap, ties, midnights, rows out of order)",
            args.edge_events,
            lambda: edge_events(args.edge_events),
            with_postgres=True,
            database_url=database_url,
        )
    for total in args.events:
        agree &= run_case(
            "seeded benchmark events (benchmarks.aggregate's generator)",
            total,
            lambda total=total: generate_events(total),
            with_postgres=args.postgres_max is None or total <= args.postgres_max,
            database_url=database_url,
        )
    if not agree:
        sys.exit(1)


def _chdb_version() -> str:
    import chdb

    return chdb.__version__


if __name__ == "__main__":
    main()
