"""Partition upkeep (SPEC §7, §13): the daily job that keeps the raw event tables' month
partitions ready ahead and drops the expired ones, on PostgreSQL.

It creates the partitions of the current month and PARTITION_MONTHS_AHEAD months after
it (migrate made the current and the next), and drops each whole month that the
retention of its table lets go: playback events (`streams/retention.py`), product events
(`analytics/retention.py`) and the broadcast log (`streams/broadcast/retention.py`) by
the same rules as the retention purges, which also drop such months before their
batched deletes. `ListenerSnapshot` has no retention: its months are only created.
On SQLite it does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings

from analytics.retention import product_partitions_drop
from echonest_analytics.partitions import month_partitions_ensure, partitioning_enabled

from .broadcast.retention import broadcast_log_partitions_drop
from .retention import playback_partitions_drop

logger = logging.getLogger(__name__)


@dataclass
class PartitionUpkeepResult:
    created: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # rows per table

    def as_dict(self) -> dict:
        return {"created": self.created, "dropped": self.dropped}


def partition_upkeep(
    *, now: dt.datetime | None = None, dry_run: bool = False
) -> PartitionUpkeepResult:
    """Create the coming month partitions and drop the expired ones (with `dry_run`,
    say which and how many rows, changing nothing)."""
    result = PartitionUpkeepResult()
    if not partitioning_enabled():
        return result
    result.created = month_partitions_ensure(
        now=now, months_ahead=settings.PARTITION_MONTHS_AHEAD, dry_run=dry_run
    )
    for drop in (playback_partitions_drop, product_partitions_drop, broadcast_log_partitions_drop):
        result.dropped.update(drop(now=now, dry_run=dry_run))
    logger.info(
        "partition upkeep%s: created %s; dropped %s",
        " (dry run)" if dry_run else "",
        ", ".join(result.created) or "none",
        ", ".join(f"{table} {rows} rows" for table, rows in result.dropped.items()) or "none",
    )
    return result
