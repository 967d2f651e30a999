"""Fast bulk writes for the ingestion hot path.

On PostgreSQL rows go in with one binary `COPY ... FROM STDIN` (SPEC §11); on
the embedded SQLite default, with the ORM's bulk insert. Either way the write
joins the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.db import connection, models

from .partitions import KEYS_CLAIMED_SETTING, UNIQUE_KEY_TABLES

_PG_COPY_TYPES = {
    "AutoField": "int4",
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "IntegerField": "int4",
    "PositiveIntegerField": "int4",
    "PositiveSmallIntegerField": "int2",
    "SmallIntegerField": "int2",
    "FloatField": "float8",
    "CharField": "text",
    "SlugField": "text",
    "TextField": "text",
    "DateTimeField": "timestamptz",
    "DateField": "date",
    "JSONField": "jsonb",
    "UUIDField": "uuid",
    "BooleanField": "bool",
}


def _copy_type(field: models.Field) -> str:
    if field.is_relation:
        return _copy_type(field.target_field)
    return _PG_COPY_TYPES[field.get_internal_type()]


@functools.cache
def _copy_plan(model: type[models.Model], columns: tuple[str, ...]) -> tuple[str, list[str]]:
    fields = {f.column: f for f in model._meta.concrete_fields}
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)"
    return sql, [_copy_type(fields[c]) for c in columns]


def copy_rows(
    cursor, model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """Binary COPY of `rows` on a psycopg `cursor` (PostgreSQL only), in its transaction."""
    sql, types = _copy_plan(model, tuple(columns))
    with cursor.copy(sql) as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """Insert `rows` (tuples in the order of `columns`, column names as in the table)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_rows(cursor.cursor, model, columns, rows)
        return
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    names = [attnames[c] for c in columns]
    model.objects.bulk_create(
        [model(**dict(zip(names, row, strict=True))) for row in rows], batch_size=500
    )


def _stage_table(model: type[models.Model]) -> str:
    return f"_stage_{model._meta.db_table}"


def _insert_new_sql(model, table: str, stage: str, cols: str, unique_column: str) -> str:
    """INSERT of the staged rows whose `unique_column` is new, RETURNING that column.

    A partitioned table keeps its unique values in a key table (`partitions`): the
    values are claimed there first and only the rows of new claims are stored, the first
    staged row of a value repeated within the batch, as ON CONFLICT would keep it.
    """
    quote = connection.ops.quote_name
    key = quote(unique_column)
    column_and_key = UNIQUE_KEY_TABLES.get(model._meta.db_table)
    if column_and_key is None or column_and_key[0] != unique_column:
        return (
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
            f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
        )
    key_table = quote(column_and_key[1])
    return (
        f"WITH claimed AS (INSERT INTO {key_table} ({key}) SELECT {key} FROM {stage} "  # noqa: S608
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}), "
        f"first_rows AS (SELECT DISTINCT ON ({key}) {cols} FROM {stage} "
        f"WHERE {key} IN (SELECT {key} FROM claimed) ORDER BY {key}, ctid) "
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM first_rows RETURNING {key}"
    )


def insert_rows_skipping_conflicts(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    *,
    unique_column: str,
) -> set:
    """Insert the rows whose `unique_column` value is not stored yet; return the values inserted.

    For idempotent ingestion (a retried batch stores nothing twice). On PostgreSQL
    the rows go by binary COPY into a per-connection temporary staging table and
    then `INSERT … SELECT … ON CONFLICT (unique_column) DO NOTHING RETURNING`, so
    concurrent writers of the same value cannot both insert it. Elsewhere (SQLite,
    whose writers are serialised) the stored values are looked up first. Must run
    inside the caller's transaction (`transaction.atomic`).
    """
    if not rows:
        return set()
    key_index = list(columns).index(unique_column)
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        table, stage = quote(model._meta.db_table), quote(_stage_table(model))
        cols = ", ".join(quote(c) for c in columns)
        _, types = _copy_plan(model, tuple(columns))
        with connection.cursor() as cursor:
            # Created once per connection; emptied at every commit.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
                f"AS SELECT {cols} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            claims_keys = UNIQUE_KEY_TABLES.get(model._meta.db_table, ("",))[0] == unique_column
            if claims_keys:  # the INSERT trigger must not claim them a second time
                cursor.execute("SELECT set_config(%s, 'on', true)", [KEYS_CLAIMED_SETTING])
            cursor.execute(_insert_new_sql(model, table, stage, cols, unique_column))
            inserted = {value for (value,) in cursor.fetchall()}
            if claims_keys:
                cursor.execute("SELECT set_config(%s, 'off', true)", [KEYS_CLAIMED_SETTING])
            cursor.execute(f"DELETE FROM {stage}")  # noqa: S608 — names come from model metadata
        return inserted
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    key_attname = attnames[unique_column]
    stored = set(
        model.objects.filter(
            **{f"{key_attname}__in": [row[key_index] for row in rows]}
        ).values_list(key_attname, flat=True)
    )
    fresh: dict = {}
    for row in rows:
        value = row[key_index]
        if value not in stored and value not in fresh:
            fresh[value] = row
    insert_rows(model, columns, fresh.values())
    return set(fresh)
