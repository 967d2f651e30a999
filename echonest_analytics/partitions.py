"""Monthly range partitions of the raw event tables on PostgreSQL (SPEC §13).

`PlaybackEvent`, `Event`, `ListenerSnapshot` and `BroadcastLogEntry` are partitioned by
month on their event time. Each month is a partition named `<table>_yYYYYmMM` holding
[first instant of the month, first instant of the next) in UTC; `<table>_default` takes
any row outside the months that exist. The database primary key is (id, event time), as
PostgreSQL requires of a partitioned table; Django keeps `id` as the model's primary key,
and ids stay unique because one identity sequence numbers every partition.

What this module owns:
- converting a table in place, data and all (`table_partition_by_month`, used by the
  migrations; `table_unpartition` reverses it),
- creating the months ahead (`month_partitions_ensure`), moving rows the default
  partition caught for a month into that month's new partition,
- listing the month partitions and dropping one whole (`month_partition_drop`).
When a whole month may go is each table's retention rule (its app's `retention.py`);
the months straddling the cutoff, and the default partition, keep the batched deletes
of `echonest_analytics.purge`.

`Event.uuid` is unique across all months, which a partitioned table cannot enforce (its
unique indexes must contain the partition key), so on PostgreSQL the uuids are kept in
`analytics_event_key` (uuid primary key), kept in step by triggers: an INSERT into
`analytics_event` claims its uuid there (a duplicate fails as with a unique column), a
DELETE or TRUNCATE forgets it, so a uuid is deduplicated exactly while its event is
stored. Ingestion claims a batch's uuids itself and stores only the events of new claims
(`echonest_analytics.bulk`).

SQLite keeps plain tables: every function here does nothing on another database.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)

# The partitioned tables and their event-time column.
PARTITIONED_TABLES: dict[str, str] = {
    "streams_playbackevent": "occurred_at",
    "analytics_event": "occurred_at",
    "broadcast_listenersnapshot": "taken_at",
    "broadcast_broadcastlogentry": "timestamp",
}

# Unique columns a partitioned table cannot enforce itself: table -> (column, key table).
UNIQUE_KEY_TABLES: dict[str, tuple[str, str]] = {
    "analytics_event": ("uuid", "analytics_event_key"),
}

# Rows dropped with a partition are not deleted row by row, so the DELETE trigger that
# removes their keys does not fire; moving rows out of the default partition must not
# remove them, so the trigger skips while this setting is on in the transaction.
_MOVING_ROWS_SETTING = "echonest.partition_moving_rows"
# Ingestion claims the keys of a batch itself (`echonest_analytics.bulk`), in one
# statement that skips the taken ones, and tells the INSERT trigger so with this setting.
KEYS_CLAIMED_SETTING = "echonest.event_keys_claimed"

# Partition DDL waits at most this long for the parent's lock (ingestion holds it only
# for the length of one COPY); on timeout the upkeep tries again on its next run.
LOCK_TIMEOUT = "5s"

_MONTH_SUFFIX = re.compile(r"_y(?P<year>\d{4})m(?P<month>\d{2})$")


class MonthPartition(NamedTuple):
    """One month partition of `parent`: rows with lower <= event time < upper."""

    parent: str
    name: str
    lower: dt.datetime
    upper: dt.datetime


def month_start(day: dt.date | dt.datetime) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)


def month_add(start: dt.datetime, months: int) -> dt.datetime:
    index = start.year * 12 + start.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def month_partition_name(table: str, start: dt.datetime) -> str:
    return f"{table}_y{start.year:04d}m{start.month:02d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def partitioning_enabled() -> bool:
    return connection.vendor == "postgresql"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table_is_partitioned(table: str, *, cursor=None) -> bool:
    if not partitioning_enabled():
        return False
    with _cursor(cursor) as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cur.fetchone()
    return bool(row) and row[0] == "p"


@contextmanager
def _cursor(cursor) -> Iterator:
    """The given cursor, or a fresh one closed on exit."""
    if cursor is not None:
        yield cursor
        return
    with connection.cursor() as own:
        yield own


def month_partitions(table: str) -> list[MonthPartition]:
    """The month partitions of `table`, oldest first (none unless it is partitioned)."""
    if not table_is_partitioned(table):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = []
    for name in names:
        match = _MONTH_SUFFIX.search(name)
        if match and name == month_partition_name(table, _start_of(match)):
            lower = _start_of(match)
            found.append(MonthPartition(table, name, lower, month_add(lower, 1)))
    return sorted(found, key=lambda p: p.lower)


def _start_of(match: re.Match) -> dt.datetime:
    return dt.datetime(int(match["year"]), int(match["month"]), 1, tzinfo=dt.UTC)


def _months(first: dt.datetime, last: dt.datetime) -> Iterator[dt.datetime]:
    month = month_start(first)
    while month <= last:
        yield month
        month = month_add(month, 1)


def _create_month_partition(cursor, table: str, column: str, start: dt.datetime) -> bool:
    """Create the partition of the month starting at `start` unless it exists; rows the
    default partition holds for that month move into it. True when it was created."""
    name = month_partition_name(table, start)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return False
    upper = month_add(start, 1)
    default = default_partition_name(table)
    bounds = "FOR VALUES FROM (%s) TO (%s)"
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {_quote(default)} "  # noqa: S608 — names from code
        f"WHERE {_quote(column)} >= %s AND {_quote(column)} < %s)",
        [start, upper],
    )
    if not cursor.fetchone()[0]:
        cursor.execute(
            f"CREATE TABLE {_quote(name)} PARTITION OF {_quote(table)} {bounds}", [start, upper]
        )
        return True
    # The default partition caught rows of this month: move them into a table of their
    # own, then attach it (attaching checks that the default holds none of them now).
    cursor.execute(f"SELECT set_config('{_MOVING_ROWS_SETTING}', 'on', true)")
    cursor.execute(
        f"CREATE TABLE {_quote(name)} (LIKE {_quote(table)} INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING STORAGE)"
    )
    cursor.execute(
        f"WITH moved AS (DELETE FROM {_quote(default)} "  # noqa: S608
        f"WHERE {_quote(column)} >= %s AND {_quote(column)} < %s RETURNING *) "
        f"INSERT INTO {_quote(name)} SELECT * FROM moved",
        [start, upper],
    )
    moved = cursor.rowcount
    cursor.execute(
        f"ALTER TABLE {_quote(table)} ATTACH PARTITION {_quote(name)} {bounds}", [start, upper]
    )
    cursor.execute(f"SELECT set_config('{_MOVING_ROWS_SETTING}', 'off', true)")
    logger.info("partition %s created; %d rows moved in from %s", name, moved, default)
    return True


def _lock_partition_ddl(cursor, table: str) -> None:
    """Serialise partition DDL on `table` (upkeep and purge may run at the same time)."""
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])


def month_partitions_ensure(
    *,
    now: dt.datetime | None = None,
    months_ahead: int = 1,
    tables: list[str] | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Create the partitions of the current month and `months_ahead` months after it for
    every partitioned table; returns the names created (with `dry_run`, that would be;
    none on SQLite)."""
    if not partitioning_enabled():
        return []
    current = month_start(now or dt.datetime.now(dt.UTC))
    created = []
    for table in tables or list(PARTITIONED_TABLES):
        if not table_is_partitioned(table):
            continue
        column = PARTITIONED_TABLES[table]
        months = list(_months(current, month_add(current, months_ahead)))
        if dry_run:
            existing = {p.name for p in month_partitions(table)}
            created += [
                n for n in (month_partition_name(table, m) for m in months) if n not in existing
            ]
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _lock_partition_ddl(cursor, table)
                made = [m for m in months if _create_month_partition(cursor, table, column, m)]
        except OperationalError as error:
            if not _lock_timed_out(error):
                raise
            logger.warning("partitions of %s not created: the table stayed locked", table)
            continue
        created += [month_partition_name(table, m) for m in made]
    if created and not dry_run:
        logger.info("partitions created: %s", ", ".join(created))
    return created


def partition_rows(partition: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {_quote(partition)}")  # noqa: S608
        return cursor.fetchone()[0]


def _lock_timed_out(error: OperationalError) -> bool:
    return getattr(getattr(error, "__cause__", None), "sqlstate", None) == "55P03"


def month_partition_drop(
    partition: MonthPartition,
    *,
    still_droppable: Callable[[MonthPartition], bool] | None = None,
    dry_run: bool = False,
) -> int | None:
    """Drop one whole month partition; returns the rows it held, or None when it was not
    dropped: gone already, `still_droppable(partition)` (asked once writes to it are
    locked out) said no, or the parent's lock was not had within LOCK_TIMEOUT (the next
    run tries again). With `dry_run`, counts what would go and drops nothing."""
    try:
        return _month_partition_drop(partition, still_droppable=still_droppable, dry_run=dry_run)
    except OperationalError as error:
        if not _lock_timed_out(error):
            raise
        logger.warning("partition %s not dropped: its table stayed locked", partition.name)
        return None


def expired_month_partitions_drop(
    table: str,
    *,
    before: dt.datetime,
    still_droppable: Callable[[MonthPartition], bool] | None = None,
    dry_run: bool = False,
) -> int:
    """Drop every month partition of `table` that ends at or before `before` and that
    `still_droppable` accepts; returns the rows they held (0 on SQLite)."""
    dropped = 0
    for partition in month_partitions(table):
        if partition.upper <= before:
            rows = month_partition_drop(partition, still_droppable=still_droppable, dry_run=dry_run)
            dropped += rows or 0
    return dropped


def _month_partition_drop(
    partition: MonthPartition,
    *,
    still_droppable: Callable[[MonthPartition], bool] | None,
    dry_run: bool,
) -> int | None:
    table = partition.parent
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_partition_ddl(cursor, table)
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition.name])
        if not cursor.fetchone()[0]:
            return None
        # SHARE keeps rows from arriving in it between the check and the drop.
        cursor.execute(f"LOCK TABLE {_quote(partition.name)} IN SHARE MODE")
        if still_droppable is not None and not still_droppable(partition):
            return None
        cursor.execute(f"SELECT count(*) FROM {_quote(partition.name)}")  # noqa: S608
        rows = cursor.fetchone()[0]
        if dry_run:
            return rows
        if table in UNIQUE_KEY_TABLES:
            column, key_table = UNIQUE_KEY_TABLES[table]
            cursor.execute(
                f"DELETE FROM {_quote(key_table)} WHERE {_quote(column)} IN "  # noqa: S608
                f"(SELECT {_quote(column)} FROM {_quote(partition.name)})"
            )
        # Deferred foreign-key checks of rows written earlier in the same transaction
        # would block the drop: run them now (Django's keys are all INITIALLY DEFERRED).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DROP TABLE {_quote(partition.name)}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    logger.info("partition %s dropped (%d rows)", partition.name, rows)
    return rows


# --- Converting a table (the migrations) ------------------------------------------------


def _table_ddl(cursor, table: str) -> dict:
    """What must be recreated on a new copy of `table`: its primary key's name, foreign
    keys, unique constraints and other indexes, and its identity sequence's position."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'f', 'u') ORDER BY conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid) ORDER BY c.relname",
        [table],
    )
    indexes = [definition for (definition,) in cursor.fetchall()]
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
    last_value, is_called = cursor.fetchone()
    return {
        "pk": next(name for name, kind, _ in constraints if kind == "p"),
        "foreign_keys": [(name, sql) for name, kind, sql in constraints if kind == "f"],
        "uniques": [(name, sql) for name, kind, sql in constraints if kind == "u"],
        "indexes": indexes,
        "sequence": sequence,
        "sequence_position": (last_value, is_called),
    }


def _copy_table(cursor, *, table: str, partition_column: str | None) -> dict:
    """Rename `table` aside, create its replacement (partitioned by month on
    `partition_column`, or plain when None), and return what the replacement needs."""
    ddl = _table_ddl(cursor, table)
    old = f"{table}__old"
    cursor.execute(f"ALTER TABLE {_quote(table)} RENAME TO {_quote(old)}")
    cursor.execute(f"ALTER SEQUENCE {ddl['sequence']} RENAME TO {_quote(old + '_id_seq')}")
    partition_by = f" PARTITION BY RANGE ({_quote(partition_column)})" if partition_column else ""
    cursor.execute(
        f"CREATE TABLE {_quote(table)} (LIKE {_quote(old)} INCLUDING DEFAULTS "
        f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS){partition_by}"
    )
    cursor.execute(
        f"ALTER TABLE {_quote(table)} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY"
    )
    ddl["old"] = old
    return ddl


def _fill_and_finish(cursor, *, table: str, ddl: dict, primary_key: str) -> None:
    """Copy the rows over, keep the sequence where it was, drop the old table, then
    recreate the primary key, foreign keys and indexes (after the copy: faster)."""
    old = ddl["old"]
    cursor.execute(f"INSERT INTO {_quote(table)} SELECT * FROM {_quote(old)}")  # noqa: S608
    last_value, is_called = ddl["sequence_position"]
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", [table, last_value, is_called]
    )
    cursor.execute(f"DROP TABLE {_quote(old)}")
    cursor.execute(
        f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(ddl['pk'])} PRIMARY KEY ({primary_key})"
    )
    for name, definition in ddl["foreign_keys"]:
        cursor.execute(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} {definition}")
    for definition in ddl["indexes"]:
        cursor.execute(definition)


def table_partition_by_month(schema_editor, *, table: str, now: dt.datetime | None = None) -> None:
    """Convert `table` (a model's plain table, possibly full) into a table partitioned by
    month on its event time: months from its oldest row (at most 10 years back, at least
    the previous month) to the next month, a default partition for the rest; ids, the sequence, foreign keys and
    indexes kept. A unique column becomes a key table (see the module docstring)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    column = PARTITIONED_TABLES[table]
    cursor = schema_editor.connection.cursor()
    if table_is_partitioned(table, cursor=cursor):
        return
    ddl = _copy_table(cursor, table=table, partition_column=column)
    if table in UNIQUE_KEY_TABLES:
        ddl = _unique_to_key_table(cursor, table=table, ddl=ddl)
    elif ddl["uniques"]:
        raise RuntimeError(f"{table} has unique constraints without {column}: {ddl['uniques']}")
    cursor.execute(f"SELECT min({_quote(column)}) FROM {_quote(ddl['old'])}")  # noqa: S608
    oldest = cursor.fetchone()[0]
    current = month_start(now or dt.datetime.now(dt.UTC))
    # The previous month too: late events of its last days arrive after it ends.
    first = month_add(current, -1)
    if oldest:
        first = min(first, max(month_start(oldest), month_add(current, -120)))
    cursor.execute(
        f"CREATE TABLE {_quote(default_partition_name(table))} PARTITION OF {_quote(table)} DEFAULT"
    )
    for start in _months(first, month_add(current, 1)):
        _create_month_partition(cursor, table, column, start)
    _fill_and_finish(cursor, table=table, ddl=ddl, primary_key=f"id, {_quote(column)}")
    if table in UNIQUE_KEY_TABLES:
        key_column, key_table = UNIQUE_KEY_TABLES[table]
        cursor.execute(
            f"INSERT INTO {_quote(key_table)} SELECT {_quote(key_column)} FROM {_quote(table)}"  # noqa: S608
        )
        # Added after the fill, which claimed the keys of the copied rows at once.
        function = f"{key_table}_sync"
        cursor.execute(
            f"CREATE TRIGGER {_quote(function + '_insert')} AFTER INSERT ON {_quote(table)} "
            f"FOR EACH ROW EXECUTE FUNCTION {_quote(function)}()"
        )


def _unique_to_key_table(cursor, *, table: str, ddl: dict) -> dict:
    column, key_table = UNIQUE_KEY_TABLES[table]
    ddl["uniques"] = [(n, sql) for n, sql in ddl["uniques"] if sql != f"UNIQUE ({column})"]
    if ddl["uniques"]:
        raise RuntimeError(f"{table}: unique constraints left {ddl['uniques']}")
    # Lookups by the column (the admin's search, `track`) keep an index.
    ddl["indexes"].append(
        f"CREATE INDEX {_quote(f'{table}_{column}_idx')} ON {_quote(table)} ({_quote(column)})"
    )
    cursor.execute(f"CREATE TABLE {_quote(key_table)} ({_quote(column)} uuid PRIMARY KEY)")
    function = f"{key_table}_sync"
    # INSERT claims the key (a duplicate fails like a unique column) unless the writer
    # claimed it already; DELETE and TRUNCATE forget it, except rows moving partitions.
    cursor.execute(
        f"CREATE FUNCTION {_quote(function)}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'TRUNCATE' THEN TRUNCATE {_quote(key_table)}; "
        "ELSIF TG_OP = 'INSERT' THEN "
        f"IF coalesce(current_setting('{KEYS_CLAIMED_SETTING}', true), 'off') <> 'on' THEN "
        f"INSERT INTO {_quote(key_table)} VALUES (NEW.{_quote(column)}); END IF; "
        f"ELSIF coalesce(current_setting('{_MOVING_ROWS_SETTING}', true), 'off') <> 'on' THEN "
        f"DELETE FROM {_quote(key_table)} WHERE {_quote(column)} = OLD.{_quote(column)}; "
        "END IF; RETURN NULL; END $$"
    )
    cursor.execute(
        f"CREATE TRIGGER {_quote(function + '_delete')} AFTER DELETE ON {_quote(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {_quote(function)}()"
    )
    cursor.execute(
        f"CREATE TRIGGER {_quote(function + '_truncate')} AFTER TRUNCATE ON {_quote(table)} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_quote(function)}()"
    )
    return ddl


def table_unpartition(schema_editor, *, table: str) -> None:
    """Reverse `table_partition_by_month`: one plain table again with every row, the
    primary key on id alone, and the unique column back in place of its key table."""
    if schema_editor.connection.vendor != "postgresql":
        return
    cursor = schema_editor.connection.cursor()
    if not table_is_partitioned(table, cursor=cursor):
        return
    ddl = _copy_table(cursor, table=table, partition_column=None)
    # Indexes of a partitioned table are recreated on the plain one (same names).
    ddl["indexes"] = [sql.replace(" ON ONLY ", " ON ") for sql in ddl["indexes"]]
    if table in UNIQUE_KEY_TABLES:
        column, key_table = UNIQUE_KEY_TABLES[table]
        cursor.execute(f"DROP TABLE {_quote(key_table)}")
        cursor.execute(f"DROP FUNCTION {_quote(key_table + '_sync')}() CASCADE")
        ddl["indexes"] = [sql for sql in ddl["indexes"] if f"{table}_{column}_idx" not in sql]
        # Added after the copy with the other constraints, under Django's own name.
        ddl["foreign_keys"].append((f"{table}_{column}_key", f"UNIQUE ({_quote(column)})"))
    _fill_and_finish(cursor, table=table, ddl=ddl, primary_key="id")
