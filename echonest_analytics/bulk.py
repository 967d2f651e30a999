"""Fast bulk writes for the ingestion hot path.

On PostgreSQL rows go in with one binary `COPY ... FROM STDIN` (SPEC §11); on
the embedded SQLite default, with the ORM's bulk insert. Either way the write
joins the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.db import connection, models

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


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """Insert `rows` (tuples in the order of `columns`, column names as in the table)."""
    if connection.vendor == "postgresql":
        sql, types = _copy_plan(model, tuple(columns))
        with connection.cursor() as cursor:
            with cursor.cursor.copy(sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        return
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    names = [attnames[c] for c in columns]
    model.objects.bulk_create(
        [model(**dict(zip(names, row, strict=True))) for row in rows], batch_size=500
    )
