"""Per-user step times: the ordered funnel's rollup (PostgreSQL only; SPEC §6.5, §11).

An ordered funnel follows each user from step to step: their first step-1 event in the
window, then their first step-2 event after it, and so on. Read from raw events, that is
one index probe per user and step (about a second at 10M events); read from
`UserStepTimes` it is one row per user and step, and the "first event after" is a binary
search (`width_bucket`) inside a sorted array.

One row per (user, event type, feature or any feature) holds the moments of that user's
events of that kind on rolled-up days, sorted. A moment is one bigint that orders the
user's events exactly as the funnel does, by time and then by storage order::

    microseconds since 1970-01-01 UTC × 1024 + the event's rank among the user's events
    at that same microsecond (by id; capped at 1023)

so `moment // 1024` is the time in microseconds. The rows are written by the rollup of
each day, in the transaction that recomputes the day (the day's slice of each row is
replaced, so a recompute is idempotent and a late event's day comes out exact), deleted
by an erasure, and trimmed by the purge. The funnel reads them only for days whose
rollup is computed and not flagged; the other days (today, a day flagged by a late
event, a day not rolled up yet) come from raw events, so a stale slice is never read.

SQLite (the embedded default) keeps no such rows: its funnel reads raw events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.db import connection

from echonest_analytics.days import day_bounds

from .models import Event, IntradayStepTimes, UserStepTimes

MOMENT_RANK_SLOTS = 1024
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Trim a row's elements older than the raw retention once they are this many days old.
TRIM_SLACK_DAYS = 7


def moment_floor(at: dt.datetime) -> int:
    """The smallest moment at `at`: every event at or after `at` has a moment >= it."""
    return ((at - _EPOCH) // dt.timedelta(microseconds=1)) * MOMENT_RANK_SLOTS


def moment_sql(alias: str = "e") -> str:
    """SQL for an event's moment (see the module docstring); a window function, so it is
    ranked among the rows the statement reads: all of a day's events with a user."""
    return (
        f"(FLOOR(EXTRACT(EPOCH FROM {alias}.occurred_at) * 1000000)::bigint * "
        f"{MOMENT_RANK_SLOTS} + LEAST(ROW_NUMBER() OVER (PARTITION BY {alias}.user_id "
        f'COLLATE "C", '
        f"{alias}.occurred_at ORDER BY {alias}.id) - 1, {MOMENT_RANK_SLOTS - 1}))"
    )


def enabled() -> bool:
    return connection.vendor == "postgresql"


def _lock() -> None:
    """Serialize writers of `UserStepTimes` (each write replaces a slice of a row) for the
    rest of the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('analytics.UserStepTimes'))")


def _day_rows_sql(events_where: str) -> str:
    """`SELECT user_id, event_type, any_feature, feature, times` of the events matching
    `events_where`: each event counts for its type with any feature and for its type
    with its own feature."""
    events = connection.ops.quote_name(Event._meta.db_table)
    return (
        "SELECT e.user_id, e.event_type, k.any_feature, k.feature, "
        "array_agg(e.moment ORDER BY e.moment) AS times FROM ("
        f"SELECT e.user_id, e.event_type, e.feature, {moment_sql('e')} AS moment "
        f"FROM {events} e WHERE {events_where} AND e.user_id <> '') e "
        "CROSS JOIN LATERAL (VALUES (TRUE, ''), (FALSE, e.feature)) k(any_feature, feature) "
        "GROUP BY e.user_id, e.event_type, k.any_feature, k.feature"
    )


def day_replace(
    *, day: dt.date, users_before: Collection[str], only_users: Collection[str] | None = None
) -> None:
    """Replace `day`'s slice of every row with the day's raw events, in the transaction
    that recomputes the day's rollup. `users_before` are the users the day's previous
    `DailyActiveUser` rows named: the only ones whose rows can hold the day already.
    `only_users`, when given, are the only users whose events of the day changed since
    its slices were written (an erasure): the others' rows are not read.

    Only rows whose slice changes are written (a re-run of an unchanged day writes
    nothing); each is spliced (before the day ‖ the day ‖ after it), never re-sorted.
    """
    if not enabled():
        return
    _lock()
    events_where = "e.occurred_at >= %(start)s AND e.occurred_at < %(end)s"
    if only_users is not None:
        events_where += " AND e.user_id = ANY(%(only)s)"
        users_before = set(users_before) & set(only_users)
    start, end = day_bounds(day)
    lo, hi = moment_floor(start), moment_floor(end)
    table = connection.ops.quote_name(UserStepTimes._meta.db_table)
    key = "user_id, event_type, any_feature, feature"
    slice_of = "times[width_bucket(%(lo)s - 1, times) + 1 : width_bucket(%(hi)s - 1, times)]"
    sql = (
        f"WITH fresh AS ({_day_rows_sql(events_where)}), "
        f"old AS (SELECT {key}, {slice_of} AS times FROM {table} "
        "WHERE user_id = ANY(%(users)s)), "
        f"changed AS (SELECT {', '.join(f'COALESCE(f.{c}, o.{c}) AS {c}' for c in key.split(', '))}, "
        "COALESCE(f.times, '{}') AS times FROM fresh f "
        f"FULL JOIN old o USING ({key}) "
        "WHERE f.times IS DISTINCT FROM NULLIF(o.times, '{}')) "
        f"INSERT INTO {table} ({key}, times) SELECT {key}, times FROM changed "
        f"ORDER BY event_type, any_feature, feature, user_id "
        f"ON CONFLICT ({key}) DO UPDATE SET times = "
        f"{table}.times[1 : width_bucket(%(lo)s - 1, {table}.times)] || EXCLUDED.times || "
        f"{table}.times[width_bucket(%(hi)s - 1, {table}.times) + 1 :]"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "start": start,
                "end": end,
                "lo": lo,
                "hi": hi,
                "users": sorted(users_before),
                "only": sorted(only_users or ()),
            },
        )
        cursor.execute(
            f"DELETE FROM {table} WHERE user_id = ANY(%s) AND cardinality(times) = 0",  # noqa: S608
            [sorted(users_before)],
        )


def rebuild(*, days: Collection[dt.date]) -> None:
    """Rebuild every row from the raw events of `days` (the rolled-up days): the migration's
    backfill, and a repair after the table was emptied."""
    if not enabled():
        return
    _lock()
    table = connection.ops.quote_name(UserStepTimes._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        if not days:
            return
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            f"INSERT INTO {table} (user_id, event_type, any_feature, feature, times) "  # noqa: S608
            f"SELECT user_id, event_type, any_feature, feature, times FROM ("
            f"{_day_rows_sql('(e.occurred_at AT TIME ZONE %s)::date = ANY(%s)')}) rows "
            "ORDER BY event_type, any_feature, feature, user_id",
            ["UTC", sorted(days)],
        )


def user_delete(*, user_id: str) -> None:
    """Forget one user's rows (GDPR erasure, with their events)."""
    if enabled():
        UserStepTimes.objects.filter(user_id=user_id).delete()


def trim(*, kept_since: dt.date) -> int:
    """Drop the elements before `kept_since` (the raw retention: the funnel reads nothing
    older) from rows holding some at least TRIM_SLACK_DAYS older, so a row is rewritten
    about once a week, not every night; rows left empty go. Returns the rows rewritten."""
    if not enabled():
        return 0
    _lock()
    table = connection.ops.quote_name(UserStepTimes._meta.db_table)
    cut = moment_floor(dt.datetime.combine(kept_since, dt.time(), tzinfo=dt.UTC))
    slack = moment_floor(
        dt.datetime.combine(
            kept_since - dt.timedelta(days=TRIM_SLACK_DAYS), dt.time(), tzinfo=dt.UTC
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET times = times[width_bucket(%s - 1, times) + 1 :] "  # noqa: S608
            "WHERE times[1] < %s",
            [cut, slack],
        )
        rewritten = cursor.rowcount
        cursor.execute(f"DELETE FROM {table} WHERE cardinality(times) = 0")  # noqa: S608
    return rewritten


# --- a day in IntradayFill (today, a day not rolled up yet) ----------------------------------


def user_locks_take(*, user_ids: Collection[str]) -> None:
    """Serialize stores of the same users' events, before their rows are inserted: a store
    then ranks its events among every earlier-stored one at the same microsecond (a
    concurrent store of the same user waits, then sees it). Sorted, so two stores never
    wait for each other in a cycle."""
    users = sorted({user for user in user_ids if user})
    if not enabled() or not users:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('analytics.step:' || u)) "
            "FROM unnest(%s::text[]) u ORDER BY u",
            [users],
        )


def intraday_rebuild(*, day: dt.date) -> None:
    """Build one filled day's rows from its raw events (under the day's fill lock)."""
    if not enabled():
        return
    start, end = day_bounds(day)
    table = connection.ops.quote_name(IntradayStepTimes._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE day = %s", [day])  # noqa: S608
        cursor.execute(
            f"INSERT INTO {table} (day, user_id, event_type, any_feature, feature, times) "  # noqa: S608
            f"SELECT %s, user_id, event_type, any_feature, feature, times FROM ("
            f"{_day_rows_sql('e.occurred_at >= %s AND e.occurred_at < %s')}) rows",
            [day, start, end],
        )


def intraday_add(*, day: dt.date, uuids: Collection) -> None:
    """Add the just-stored events `uuids` of a filled day to its rows, in the storing
    transaction (each uuid is stored once, so each moment is added once). An event's rank
    counts the user's earlier-stored events at its microsecond (see `user_locks_take`)."""
    if not enabled() or not uuids:
        return
    events = connection.ops.quote_name(Event._meta.db_table)
    table = connection.ops.quote_name(IntradayStepTimes._meta.db_table)
    moment = (
        f"FLOOR(EXTRACT(EPOCH FROM e.occurred_at) * 1000000)::bigint * {MOMENT_RANK_SLOTS} + "
        f"LEAST((SELECT COUNT(*) FROM {events} o WHERE o.user_id = e.user_id "
        f"AND o.occurred_at = e.occurred_at AND o.id < e.id), {MOMENT_RANK_SLOTS - 1})"
    )
    key = "day, event_type, any_feature, feature, user_id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key}, times) "  # noqa: S608 — names from model metadata
            "SELECT %s, e.event_type, k.any_feature, k.feature, e.user_id, "
            "array_agg(e.moment ORDER BY e.moment) FROM ("
            f"SELECT e.user_id, e.event_type, e.feature, {moment} AS moment FROM {events} e "
            "WHERE e.uuid = ANY(%s) AND e.user_id <> '') e "
            "CROSS JOIN LATERAL (VALUES (TRUE, ''), (FALSE, e.feature)) k(any_feature, feature) "
            "GROUP BY e.event_type, k.any_feature, k.feature, e.user_id "
            "ORDER BY e.event_type, k.any_feature, k.feature, e.user_id "
            f"ON CONFLICT ({key}) DO UPDATE SET times = "
            f"ARRAY(SELECT m FROM unnest({table}.times || EXCLUDED.times) m ORDER BY m)",
            [day, list(uuids)],
        )


def intraday_drop(*, day: dt.date) -> None:
    """Forget one day's rows (its rollup serves it now)."""
    if enabled():
        IntradayStepTimes.objects.filter(day=day).delete()
