"""Stream aggregation (SPEC §6.1, §6.2, §7): exact viewer sessions and daily StreamStats.

Set-based SQL from start to end; Python only moves small per-(stream, day) results.
One run, in one transaction (so a run killed halfway leaves nothing behind and the
next run redoes its work), in four steps, each in its own module:

1. `scope`: claim the batches ingested since the last run (`PlaybackBatch.pending`),
   giving the (stream, client) pairs and time ranges that changed — or every pair,
   with `full`;
2. `scope`: widen each range until it holds whole sessions (a session is a run of
   events less than SESSION_TIMEOUT apart, so nothing outside the widened range can
   join it);
3. `sessions`: rebuild those sessions from their events with window functions
   (ordering by occurred_at, whatever order the events arrived in), keeping existing
   session ids where they still fit, credit each gap to its UTC day
   (`ViewerSessionDay`), and finalize the sessions that went stale;
4. `stats`: recompute `StreamStats` for every (stream, day) those sessions touched,
   from the session tables — recomputed from rows, never incremented; the figures
   themselves come from `streams.stream_figures`.

`sql` holds the PostgreSQL/SQLite dialect. A job lock (`cache.add`, an atomic SET NX on
Redis) keeps two runs from overlapping.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction

from echonest_analytics.locks import job_lock, job_lock_key

from ..stream_figures import top_countries
from .scope import _scope_claim, _scope_from_sessions, _scope_widen
from .sessions import _sessions_build, _sessions_finalize, _sessions_write
from .sql import _Sql
from .stats import _dirty_days, _stats_recompute

# The public entry and the names other modules import from here; `top_countries`
# lives in streams.stream_figures and stays importable from here too.
__all__ = [
    "LOCK_KEY",
    "LOCK_NAME",
    "AggregationSummary",
    "stream_stats_recompute",
    "top_countries",
]

logger = logging.getLogger(__name__)

LOCK_NAME = "streams.aggregation"
# The cache key `job_lock` takes for LOCK_NAME (tests and operators look at it).
LOCK_KEY = job_lock_key(LOCK_NAME)
_SCRATCH_TABLES = ("agg_scope", "agg_pieces", "agg_sessions", "agg_old", "agg_days")


@dataclass(frozen=True)
class AggregationSummary:
    ran: bool
    pairs: int = 0
    sessions: int = 0
    stream_days: int = 0
    finalized: int = 0
    seconds: float = 0.0


def stream_stats_recompute(
    *, full: bool = False, now: datetime | None = None
) -> AggregationSummary:
    """Finalize stale sessions and recompute stats for every (stream, day) that changed.

    With `full`, every session and every day with raw events is rebuilt from scratch.
    Returns `ran=False` without doing anything when another run holds the lock.
    """
    with job_lock(LOCK_NAME) as acquired:
        if not acquired:
            logger.info("stream aggregation skipped: another run holds the lock")
            return AggregationSummary(ran=False)
        started = time.monotonic()
        with transaction.atomic():
            summary = _aggregate(full=full, now=now or datetime.now(UTC))
    summary = replace(summary, seconds=time.monotonic() - started)
    logger.info(
        "stream aggregation done: %d client ranges, %d sessions, %d stream-days, "
        "%d finalized, %.2fs",
        summary.pairs,
        summary.sessions,
        summary.stream_days,
        summary.finalized,
        summary.seconds,
    )
    return summary


def _aggregate(*, full: bool, now: datetime) -> AggregationSummary:
    timeout = float(settings.SESSION_TIMEOUT)
    heartbeat = float(settings.HEARTBEAT_INTERVAL)
    now_epoch = now.timestamp()
    with connection.cursor() as cursor:
        sql = _Sql(cursor)
        if sql.pg:
            # Sorts and hashes over a run's events stay in memory instead of spilling.
            sql.execute(
                "SET LOCAL work_mem = %(work_mem)s", {"work_mem": settings.AGGREGATION_WORK_MEM}
            )
            # Each statement runs once per run over up to millions of rows, so its cost
            # estimate crosses jit_above_cost; compiling it (inlining and optimizing the
            # aggregates) took ~2 s of the 1M-event benchmark and bought nothing back.
            sql.execute("SET LOCAL jit = off")
        build = {"full": full, "timeout": timeout, "heartbeat": heartbeat}
        sessions = 0
        if full:
            # Every event is rebuilt: sessionize first and take the scope from the
            # sessions (one row each), instead of grouping every event a second time.
            _scope_claim(sql, full=True)
            _sessions_build(sql, **build)
            pairs = _scope_from_sessions(sql)
        else:
            pairs = _scope_claim(sql, full=False)
        if pairs:
            _scope_widen(sql, timeout=timeout)
            if not full:
                _sessions_build(sql, **build)
            sessions = _sessions_write(sql, stale_before=now_epoch - timeout)
        finalized = _sessions_finalize(sql, now_epoch=now_epoch, timeout=timeout)
        days = _dirty_days(sql, heartbeat=heartbeat) if pairs else []
        if days:
            _stats_recompute(sql, days=days, now=now)
        for name in _SCRATCH_TABLES:
            sql.drop(name)
    return AggregationSummary(
        ran=True, pairs=pairs, sessions=sessions, stream_days=len(days), finalized=finalized
    )
