"""The SQL dialect of the aggregation: where PostgreSQL and SQLite spell things differently.

Every statement of a run goes through `_Sql.execute` with its values as parameters
(`%(name)s`); only identifiers (table names) and SQL fragments from the helpers below
are formatted into the text. Because every statement carries parameters, a literal
percent sign is always written `%%` (SQLite's `strftime('%%s', …)`).
"""

from __future__ import annotations

from typing import Any

from django.db import connection

DAY = 86400
# Fragments below refer to these by name; `_Sql.execute` binds them to every statement.
_DIALECT_PARAMS = {"day_seconds": DAY}


def _t(model) -> str:
    """The quoted table name of `model`."""
    return connection.ops.quote_name(model._meta.db_table)


class _Sql:
    """One run's cursor, and the few places where PostgreSQL and SQLite differ."""

    def __init__(self, cursor) -> None:
        self.cursor = cursor
        self.pg = connection.vendor == "postgresql"

    @property
    def inlined(self) -> str:
        """Marks a CTE that is read twice to be inlined: on PostgreSQL, scanning its
        source again is cheaper than writing the CTE's rows aside and reading them back."""
        return "NOT MATERIALIZED" if self.pg else ""

    def execute(self, query: str, params: dict[str, Any] | None = None):
        self.cursor.execute(query, {**_DIALECT_PARAMS, **(params or {})})
        return self.cursor

    def fetchall(self, query: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return self.execute(query, params).fetchall()

    def count(self, table: str) -> int:
        return self.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def epoch(self, col: str) -> str:
        if self.pg:
            return f"date_part('epoch', {col})"
        # strftime('%s') is whole seconds; '%f' - '%S' adds the milliseconds.
        return (
            f"(CAST(strftime('%%s', {col}) AS REAL) + CAST(strftime('%%f', {col}) AS REAL)"
            f" - CAST(strftime('%%S', {col}) AS INTEGER))"
        )

    def before(self, col: str, epoch_expr: str, op: str) -> str:
        """`col <op> <instant given in epoch seconds>`, index-friendly on PostgreSQL."""
        if self.pg:
            return f"{col} {op} to_timestamp({epoch_expr})"
        return f"{self.epoch(col)} {op} ({epoch_expr})"

    def day_no(self, epoch_expr: str) -> str:
        """The UTC day number (days since 1970-01-01) of an instant in epoch seconds."""
        if self.pg:
            return f"CAST(FLOOR(({epoch_expr}) / %(day_seconds)s) AS integer)"
        return f"CAST(({epoch_expr}) / %(day_seconds)s AS integer)"

    def day_from_no(self, expr: str) -> str:
        """The date of a UTC day number."""
        if self.pg:
            return f"(DATE '1970-01-01' + CAST({expr} AS integer))"
        return f"date(({expr}) * %(day_seconds)s, 'unixepoch')"

    def json_number(self, col: str, key: str) -> str:
        """`col`'s JSON member `key` when it is a number, else NULL (a string or an object
        there reads as missing, never as an error that would stop the run)."""
        if self.pg:
            return (
                f"CASE WHEN jsonb_typeof({col} -> '{key}') = 'number' "
                f"THEN CAST({col} ->> '{key}' AS float8) END"
            )
        return (
            f"CASE WHEN json_type({col}, '$.{key}') IN ('integer', 'real') "
            f"THEN CAST(json_extract({col}, '$.{key}') AS REAL) END"
        )

    def json_true(self, col: str, key: str) -> str:
        """Whether `col`'s JSON member `key` is the JSON value true (NULL or false otherwise)."""
        if self.pg:
            return f"(jsonb_typeof({col} -> '{key}') = 'boolean' AND ({col} ->> '{key}') = 'true')"
        return f"(json_type({col}, '$.{key}') = 'true')"

    def floor(self, expr: str) -> str:
        """The whole part of a non-negative number (SQLite's CAST truncates; PostgreSQL's
        would round)."""
        return f"FLOOR({expr})" if self.pg else f"CAST({expr} AS INTEGER)"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"MIN({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"MAX({a}, {b})"

    def drop(self, name: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {'pg_temp' if self.pg else 'temp'}.{name}")

    def create_temp(self, name: str, columns: str) -> None:
        """An empty scratch table for this run (also dropped at commit on PostgreSQL)."""
        self.drop(name)
        self.execute(f"CREATE TEMP TABLE {name} {columns}{' ON COMMIT DROP' if self.pg else ''}")

    def temp_table(
        self,
        name: str,
        select_sql: str,
        params: dict[str, Any] | None = None,
        *,
        analyze: tuple[str, ...] = (),
    ) -> None:
        """A scratch table holding the rows of `select_sql`, analyzed for the planner —
        only its `analyze` columns when given (the ones later statements join, group or
        filter on: statistics of every column of a wide table cost more than they save)."""
        self.drop(name)
        on_commit = " ON COMMIT DROP" if self.pg else ""
        self.execute(f"CREATE TEMP TABLE {name}{on_commit} AS {select_sql}", params)
        columns = f" ({', '.join(analyze)})" if analyze and self.pg else ""
        self.execute(f"ANALYZE {name}{columns}")
