"""Retention mechanics every purge shares (SPEC §7 retention purge).

Deletes run in bounded batches (Saleor's `delete_expired_checkouts`): one call deletes at
most `batch_size` rows per table, each batch a `DELETE … WHERE id IN (SELECT id … LIMIT n)`
in its own short transaction, and says whether rows remain. `purge_until_done` repeats
such steps until nothing old is left or a time budget runs out (the task then
re-enqueues itself).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from django.db import transaction
from django.db.models import Model, QuerySet

from .days import utc_today
from .locks import job_lock

logger = logging.getLogger(__name__)

BATCH_SIZE = 10_000


class PurgeResult(NamedTuple):
    """Rows deleted (or, in a dry run, that would be) per table, and whether any remain."""

    deleted: dict[str, int]
    has_more: bool


def table_name(model: type[Model]) -> str:
    return model._meta.label  # e.g. "analytics.Event"


def retention_cutoff_day(*, days: int, now: dt.datetime | None = None) -> dt.date:
    """The first UTC day that is kept: rows of days before it are older than `days` days."""
    return utc_today(now) - dt.timedelta(days=days)


def rows_purge_batch(queryset: QuerySet, *, batch_size: int) -> tuple[int, bool]:
    """Delete at most `batch_size` rows of `queryset` in one short transaction.

    Returns (deleted, has_more). The ids are chosen by a subquery, so the database
    deletes by primary key without the rows ever coming to Python.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model = queryset.model
    with transaction.atomic():
        batch_ids = queryset.order_by("pk").values("pk")[:batch_size]
        # The purged tables have no dependants and no delete signals, so Django deletes
        # with one statement instead of loading the rows. The DELETE keeps the
        # queryset's own conditions: on a partitioned table its time bound confines the
        # statement to the partitions it names, instead of every month's.
        _, per_model = queryset.filter(pk__in=batch_ids).delete()
    deleted = per_model.get(table_name(model), 0)
    has_more = deleted == batch_size and queryset.exists()
    return deleted, has_more


def purge_step(
    purgeable: list[tuple[type[Model], QuerySet]], *, batch_size: int, dry_run: bool
) -> PurgeResult:
    """One bounded batch per table (or, with `dry_run`, the full count of each)."""
    deleted: dict[str, int] = {}
    has_more = False
    for model, queryset in purgeable:
        if dry_run:
            deleted[table_name(model)] = queryset.count()
            continue
        count, more = rows_purge_batch(queryset, batch_size=batch_size)
        deleted[table_name(model)] = count
        has_more = has_more or more
    return PurgeResult(deleted=deleted, has_more=has_more)


PurgeStepFunction = Callable[..., PurgeResult]  # (*, now, batch_size, dry_run) -> PurgeResult
# (*, now) -> {table: rows}: drops the whole partitions that may go, before the batches.
PartitionDropFunction = Callable[..., dict[str, int]]


def purge_until_done(
    steps: Sequence[PurgeStepFunction],
    *,
    name: str,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    max_seconds: float | None = None,
    partition_drops: Sequence[PartitionDropFunction] = (),
) -> PurgeResult:
    """Run every step (one bounded batch per table each) again and again until none has
    rows left. With `max_seconds`, stops after the round that crosses it and says
    `has_more` when rows remain. With `dry_run`, one round counts what would go.

    On PostgreSQL, `partition_drops` first drop each whole month partition that may go
    (`echonest_analytics.partitions`): the batches then only meet the rows of the months
    at the edges of the retention and of the default partition. A dry run drops nothing;
    its counts already include those rows."""
    started = time.monotonic()
    totals: Counter[str] = Counter()
    if not dry_run:
        for drop in partition_drops:
            totals.update(drop(now=now))
    rounds = 0
    while True:
        rounds += 1
        has_more = False
        for step in steps:
            deleted, more = step(now=now, batch_size=batch_size, dry_run=dry_run)
            totals.update(deleted)
            has_more = has_more or more
        if not has_more or (max_seconds is not None and time.monotonic() - started >= max_seconds):
            break
    result = PurgeResult(deleted=dict(totals), has_more=has_more)
    logger.info(
        "%s%s: %s in %d step(s), %.2fs%s",
        name,
        " (dry run, nothing deleted)" if dry_run else "",
        ", ".join(f"{table} {count}" for table, count in result.deleted.items()),
        rounds,
        time.monotonic() - started,
        "; more rows remain" if result.has_more else "",
    )
    return result


# A purge task deletes for about this long, then hands the rest to a fresh run of itself
# (Saleor style), so a large backlog neither holds a worker for hours nor leaves rows.
PURGE_RUN_SECONDS = 60
PURGE_FOLLOW_UP_EXPIRES = 6 * 60 * 60


def purge_task_run(
    task,
    *,
    lock: str,
    purge: Callable[..., PurgeResult],
    batch_size: int,
    max_seconds: float,
    skipped: str,
) -> dict:
    """One run of a self-re-enqueuing purge task (a bound Celery task): under the job
    lock, purge for `max_seconds`, and enqueue a follow-up while rows remain."""
    with job_lock(lock) as acquired:
        if not acquired:
            return {"skipped": skipped}
        result = purge(batch_size=batch_size, max_seconds=max_seconds)
    if result.has_more:
        task.apply_async(
            kwargs={"batch_size": batch_size, "max_seconds": max_seconds},
            expires=PURGE_FOLLOW_UP_EXPIRES,
        )
    return {"deleted": result.deleted, "has_more": result.has_more}
