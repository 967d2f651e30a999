"""Reading product analytics: the usage summary (SPEC §5.4, §6.4) and the staff stats page (§6.3).

Usage figures are assembled from `DailyRollup` for complete days; today and any day
whose rollup is missing or flagged are read from that day's intraday rows when it has
them (`IntradayFill`: kept current by ingestion, see `rollups`) and from raw events
otherwise. Distinct users are the rolled-up days' users (counted once per rollup state
and cached) plus the raw days' users who are not among them, each looked up once in
`UserActivity`. When today is the only raw day (the usual case, at any hour), today's
users are classified once and then only as they are added (cached too), so a request
is two statements and one cache round trip at 23:59 as at 00:20; every cache key is read
from the database on each request, so no write ever leaves a stale answer behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from echonest_analytics.days import day_bounds
from echonest_analytics.redis import redis_breaker

from . import live_counters
from .models import (
    DailyActiveUser,
    DailyRollup,
    Event,
    IntradayActiveUser,
    IntradayEventCount,
    IntradayFill,
    UserActivity,
)

logger = logging.getLogger(__name__)

FUNNEL_STEPS = ("page_view", "action", "conversion")
USAGE_MAX_DAYS = 365
# The distinct users of a window's rolled-up days, cached under a key that names every
# rollup row they come from (see `_rollup_users_cached`), and today's users classified
# against them under that key plus today's fill state (`_today_users_cached`); an entry
# nobody reads any more ages out on its own.
USAGE_CACHE_PREFIX = "analytics:usage:rollup-users:v2:"
USAGE_CACHE_TIMEOUT = 26 * 60 * 60


def iso_monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def day_runs(days: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of sorted days as inclusive (first, last) pairs."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def sql_date(day: dt.date) -> Any:
    # psycopg binds a date as `date`; SQLite stores dates as ISO text.
    return day.isoformat() if connection.vendor == "sqlite" else day


def intraday_filled_days(days: Collection[dt.date]) -> set[dt.date]:
    """Which of `days` have intraday rows (`IntradayFill`)."""
    if not days:
        return set()
    return set(IntradayFill.objects.filter(day__in=days).values_list("day", flat=True))


def raw_users_branches(
    raw_days: Sequence[dt.date], intraday_days: Collection[dt.date]
) -> tuple[list[str], list[Any]]:
    """`SELECT day, user_id` of each raw day's distinct users, one branch per day.

    A day in `intraday_days` (see `intraday_filled_days`) reads its (day, user) rows;
    another day reads its raw events, with the day as a constant (no per-row timezone
    conversion, one index range scan on `occurred_at`).
    """
    ops = connection.ops
    branches: list[str] = []
    params: list[Any] = []
    for day in raw_days:
        if day in intraday_days:
            branches.append(
                f"SELECT %s, user_id FROM {ops.quote_name(IntradayActiveUser._meta.db_table)} "
                "WHERE day = %s"
            )
            params += [sql_date(day), sql_date(day)]
            continue
        start, end = day_bounds(day)
        branches.append(
            f"SELECT %s, user_id FROM (SELECT DISTINCT user_id FROM "
            f"{ops.quote_name(Event._meta.db_table)} WHERE occurred_at >= %s "
            "AND occurred_at < %s AND user_id <> '') raw_users"
        )
        params += [
            sql_date(day),
            ops.adapt_datetimefield_value(start),
            ops.adapt_datetimefield_value(end),
        ]
    return branches, params


def _rolled_up_users(
    *, rollup_days: Sequence[dt.date], week_starts: Sequence[dt.date]
) -> tuple[int, dict[dt.date, int]]:
    """(users of the rolled-up days, users per ISO week), counted in one statement.

    One pass over the days' `DailyActiveUser` rows: group by user, flag each user's weeks,
    then add the flags up. Portable SQL (PostgreSQL and SQLite) and a single hash
    aggregate, instead of one COUNT(DISTINCT) sort per figure.
    """
    table = connection.ops.quote_name(DailyActiveUser._meta.db_table)
    branches: list[str] = []
    params: list[Any] = []
    for first, last in day_runs(rollup_days):
        branches.append(f"SELECT day, user_id FROM {table} WHERE day >= %s AND day <= %s")
        params += [sql_date(first), sql_date(last)]
    flags: list[str] = []
    for i, monday in enumerate(week_starts):
        flags.append(f"MAX(CASE WHEN day >= %s AND day < %s THEN 1 ELSE 0 END) AS w{i}")
        params += [sql_date(monday), sql_date(monday + dt.timedelta(days=7))]
    sums = "".join(f", SUM(w{i})" for i in range(len(week_starts)))
    per_user = f"SELECT user_id{''.join(', ' + f for f in flags)} FROM active GROUP BY user_id"
    sql = (
        f"WITH active (day, user_id) AS ({' UNION ALL '.join(branches)}) "
        f"SELECT COUNT(*){sums} FROM ({per_user}) per_user"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        users, *counts = cursor.fetchone()
    return users, dict(zip(week_starts, [int(n or 0) for n in counts], strict=True))


class _RolledUpDay(NamedTuple):
    """One rolled-up day of the window as read by `_window_read`."""

    total_events: int
    dau: int
    event_counts: str  # JSON text, decoded once per request
    feature_usage: str
    computed_at: str  # as the database returns it: only compared, never read


def _rollup_fingerprint(
    *, first_day: dt.date, today: dt.date, rollups: Mapping[dt.date, _RolledUpDay]
) -> str:
    """A cache key naming the window and the exact state of every rollup row it reads.

    Every write that can change a day's `DailyActiveUser` rows (and so its `UserActivity`
    days) also changes its rollup row: a recompute sets `computed_at` (and the day's
    figures), a closed-day fold-in adds to `total_events` (and to `dau` with a new user),
    a GDPR erase recomputes the day or lowers its `dau`, a late event or an erasure flags
    the day (it then leaves the rolled-up set), and the purge deletes the row. The key is
    read from the database on every request, so a cached entry is never used after such a
    write, in any process, without any invalidation message (the cache may be per-process
    LocMem or shared Redis).
    """
    state = [[day.isoformat(), *rollup] for day, rollup in sorted(rollups.items())]
    blob = json.dumps(
        [connection.settings_dict.get("NAME"), first_day.isoformat(), today.isoformat(), state],
        default=str,
    )
    return USAGE_CACHE_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


def _cache_get_many(keys: Sequence[str]) -> dict[str, Any] | None:
    """The cached entries of `keys` in one round trip; None when the cache is not to be
    used (Redis failed recently or just now): the figures are then counted, not cached."""
    # While Redis recently failed, the cache is not asked (no timeout per request).
    if not redis_breaker.available():
        return None
    try:
        return cache.get_many(keys)
    except Exception:  # noqa: BLE001 — a cache outage costs speed, never the answer
        logger.warning("usage cache unavailable; counting from the database", exc_info=True)
        redis_breaker.failed()
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, USAGE_CACHE_TIMEOUT)
    except Exception:  # noqa: BLE001
        logger.warning("usage cache unavailable; figures not cached", exc_info=True)
        redis_breaker.failed()


def _rollup_users_cached(
    *,
    key: str,
    cached: Mapping[str, Any] | None,
    rollup_days: Sequence[dt.date],
    week_starts: Sequence[dt.date],
) -> tuple[int, dict[dt.date, int]]:
    """(users of the rolled-up days, their users per ISO week), from the cache when it has
    them (`cached`: what `_cache_get_many` found, None without a cache).

    They are the expensive part (every per-day user row of the window) and change only
    when a rollup row does (see `_rollup_fingerprint`).
    """
    if not rollup_days:
        return 0, {}
    hit = None if cached is None else cached.get(key)
    if hit is not None:
        users, per_week = hit
        return users, {dt.date.fromisoformat(week): n for week, n in per_week.items()}
    users, per_week = _rolled_up_users(rollup_days=rollup_days, week_starts=week_starts)
    if cached is not None:
        _cache_set(key, (users, {week.isoformat(): n for week, n in per_week.items()}))
    return users, per_week


def _days_since_sql(day: dt.date, column: str) -> tuple[str, list[Any]]:
    """SQL for `day - column` in whole days (both dates), on either database."""
    if connection.vendor == "sqlite":
        return f"CAST(julianday(%s) - julianday({column}) AS INTEGER)", [sql_date(day)]
    return f"(CAST(%s AS DATE) - {column})", [day]


def _active_in_runs_sql(runs: Sequence[tuple[dt.date, dt.date]]) -> tuple[str, list[Any]]:
    """A condition: the `activity` row (a `UserActivity`, or NULLs) has an active day in
    one of `runs` (inclusive day ranges).

    Decided from `first_day` / `last_day` alone whenever either falls inside a run (the
    row starts and ends on an active day) or the row misses the run; only a row that
    spans a run from both sides reads its `active_days` segment of the run.
    """
    find = "INSTR" if connection.vendor == "sqlite" else "STRPOS"
    checks: list[str] = []
    params: list[Any] = []
    for first, last in runs:
        offset, offset_params = _days_since_sql(first, "activity.first_day")
        checks.append(
            "(CASE WHEN activity.last_day < %s OR activity.first_day > %s THEN 0 "
            "WHEN activity.last_day <= %s OR activity.first_day >= %s THEN 1 "
            f"WHEN {find}(SUBSTR(activity.active_days, {offset} + 1, {(last - first).days + 1}), "
            "'1') > 0 THEN 1 ELSE 0 END) = 1"
        )
        params += [sql_date(first), sql_date(last), sql_date(last), sql_date(first)]
        params += offset_params
    return f"({' OR '.join(checks)})", params


def _raw_day_users(
    *,
    raw_days: Sequence[dt.date],
    intraday_days: Collection[dt.date],
    rollup_days: Sequence[dt.date],
    week_starts: Sequence[dt.date],
) -> tuple[int, dict[dt.date, int], dict[dt.date, int]]:
    """What the raw days add to the rolled-up days' user counts, in one statement.

    Returns (users of the raw days not active on any rolled-up day of the window,
    the same per ISO week, users per raw day). Each raw-day user is looked up once in
    `UserActivity` (one row per user, the same days as `DailyActiveUser`), which answers
    for the window and for every week at once, so the cost grows with the raw days'
    users, not with the window's per-day user rows.
    """
    if not raw_days:
        return 0, {}, {}
    branches, params = raw_users_branches(raw_days, intraday_days)
    raw_weeks = sorted({iso_monday(day) for day in raw_days})
    sums: list[str] = []
    sum_params: list[Any] = []
    joined = ""
    join_params: list[Any] = []
    if len(raw_days) == 1:
        # One day's users are distinct already (its branch reads unique rows), and every
        # one of them is active on that day and in its week.
        per_user = "SELECT user_id, 1 AS r0, 1 AS w0 FROM raw_active"
        flag_params: list[Any] = []
    else:
        flags: list[str] = []
        flag_params = []
        for i, monday in enumerate(raw_weeks):
            flags.append(f"MAX(CASE WHEN day >= %s AND day < %s THEN 1 ELSE 0 END) AS w{i}")
            flag_params += [sql_date(monday), sql_date(monday + dt.timedelta(days=7))]
        for i, day in enumerate(raw_days):
            flags.append(f"MAX(CASE WHEN day = %s THEN 1 ELSE 0 END) AS r{i}")
            flag_params.append(sql_date(day))
        per_user = f"SELECT user_id, {', '.join(flags)} FROM raw_active GROUP BY user_id"

    def not_rolled_up(days: Sequence[dt.date], flag: str | None) -> str:
        # 1 when the user counts (has the flag) and is active on none of `days`.
        has_flag = f"per_user.{flag} = 0" if flag else "1 = 0"
        if not days:
            return f"SUM(CASE WHEN {has_flag} THEN 0 ELSE 1 END)"
        active, active_params = _active_in_runs_sql(day_runs(days))
        sum_params.extend(active_params)
        return f"SUM(CASE WHEN {has_flag} THEN 0 WHEN {active} THEN 0 ELSE 1 END)"

    sums += [f"SUM(per_user.r{i})" for i in range(len(raw_days))]
    sums.append(not_rolled_up(rollup_days, None))
    for i, monday in enumerate(raw_weeks):
        week_days = [d for d in rollup_days if monday <= d < monday + dt.timedelta(days=7)]
        sums.append(not_rolled_up(week_days, f"w{i}"))
    if rollup_days:
        # A row whose last active day is before the window's first rolled-up day answers
        # "not active" for every run: leave it out of the join.
        joined = (
            " LEFT JOIN (SELECT user_id, first_day, last_day, active_days FROM "
            f"{connection.ops.quote_name(UserActivity._meta.db_table)} WHERE last_day >= %s) "
            "activity ON activity.user_id = per_user.user_id"
        )
        join_params.append(sql_date(rollup_days[0]))
    sql = (
        f"WITH raw_active (day, user_id) AS ({' UNION ALL '.join(branches)}) "
        f"SELECT {', '.join(sums)} FROM ({per_user}) per_user{joined}"
    )
    with connection.cursor() as cursor:
        # Placeholders in text order: the raw branches, the sums, the flags, the join.
        cursor.execute(sql, params + sum_params + flag_params + join_params)
        counts = [int(n or 0) for n in cursor.fetchone()]
    per_raw_day = dict(zip(raw_days, counts[: len(raw_days)], strict=True))
    new_in_window = counts[len(raw_days)]
    new_per_week = dict(zip(raw_weeks, counts[len(raw_days) + 1 :], strict=True))
    return new_in_window, new_per_week, per_raw_day


def _as_date(value: Any) -> dt.date:
    # SQLite returns a raw statement's dates as ISO text.
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _window_read(
    *, first_day: dt.date, today: dt.date
) -> tuple[dict[dt.date, _RolledUpDay], dict[dt.date, str], list[tuple[dt.date, str, str, int]]]:
    """(the window's rolled-up days, its days with intraday rows and their `filled_at`,
    their intraday event counts), read in one statement (one snapshot, one round trip).

    A rolled-up day is one with a computed, unflagged rollup (always before today). The
    JSON figures come back as the stored text: they name the row's state in the cache key
    (`_rollup_fingerprint`) as they are, and are decoded once.
    """
    quote = connection.ops.quote_name
    as_text = "" if connection.vendor == "sqlite" else "::text"
    first, last = sql_date(first_day), sql_date(today)
    sql = (
        f"SELECT 0, day, event_counts{as_text}, feature_usage{as_text}, total_events, dau, "
        f"computed_at FROM {quote(DailyRollup._meta.db_table)} "
        "WHERE day >= %s AND day < %s AND needs_recompute = %s "
        f"UNION ALL SELECT 1, day, NULL, NULL, 0, 0, filled_at FROM "
        f"{quote(IntradayFill._meta.db_table)} WHERE day >= %s AND day <= %s "
        # Only a filled day has these rows (they are made after its fill row and dropped
        # with it); the caller keeps those of its raw days.
        f"UNION ALL SELECT 2, day, event_type, feature, events, 0, NULL FROM "
        f"{quote(IntradayEventCount._meta.db_table)} WHERE day >= %s AND day <= %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [first, last, False, first, last, first, last])
        rows = cursor.fetchall()
    rollups: dict[dt.date, _RolledUpDay] = {}
    filled: dict[dt.date, str] = {}
    counts: list[tuple[dt.date, str, str, int]] = []
    for kind, day, text_a, text_b, n, dau, moment in rows:
        if kind == 0:
            rollups[_as_date(day)] = _RolledUpDay(
                int(n), int(dau), text_a, text_b, "" if moment is None else str(moment)
            )
        elif kind == 1:
            filled[_as_date(day)] = str(moment)
        else:
            counts.append((_as_date(day), text_a, text_b, int(n)))
    return rollups, filled, counts


class _TodayUsers(NamedTuple):
    """Today's intraday users classified against the rolled-up days of the window."""

    up_to_id: int  # every `IntradayActiveUser` row of today with an id up to this one…
    users: int  # …and there were this many of them (today's users)
    not_in_window: int  # of them, not active on any rolled-up day of the window
    not_in_week: int  # of them, not active on any rolled-up day of today's ISO week


def _today_users_after(
    *, today: dt.date, rollup_days: Sequence[dt.date], after_id: int
) -> tuple[int, int, _TodayUsers]:
    """(today's users now, how many of their rows have an id above `after_id`, those rows
    classified), in one statement (one snapshot).

    Each row's user is looked up once in `UserActivity`, as in `_raw_day_users`.
    """
    quote = connection.ops.quote_name
    users_table = quote(IntradayActiveUser._meta.db_table)
    monday = iso_monday(today)
    sums: list[str] = []
    params: list[Any] = [sql_date(today)]
    for days in (rollup_days, [day for day in rollup_days if day >= monday]):
        if not days:
            sums.append("COUNT(*)")
            continue
        active, active_params = _active_in_runs_sql(day_runs(days))
        sums.append(f"SUM(CASE WHEN {active} THEN 0 ELSE 1 END)")
        params += active_params
    params += [sql_date(today), after_id]
    joined = ""
    if rollup_days:
        joined = (
            " LEFT JOIN (SELECT user_id, first_day, last_day, active_days FROM "
            f"{quote(UserActivity._meta.db_table)} WHERE last_day >= %s) "
            "activity ON activity.user_id = added.user_id"
        )
        params.append(sql_date(rollup_days[0]))
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {users_table} WHERE day = %s), COUNT(*), "  # noqa: S608
        f"MAX(added.id), {', '.join(sums)} FROM (SELECT id, user_id FROM {users_table} "
        f"WHERE day = %s AND id > %s) added{joined}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        users, added, last_id, not_in_window, not_in_week = cursor.fetchone()
    return (
        int(users),
        int(added),
        _TodayUsers(
            int(last_id or after_id), int(added), int(not_in_window or 0), int(not_in_week or 0)
        ),
    )


def _today_users_cached(
    *,
    key: str,
    cached: Mapping[str, Any] | None,
    today: dt.date,
    rollup_days: Sequence[dt.date],
) -> _TodayUsers:
    """Today's users classified, when today is the window's only raw day and has intraday
    rows: only the rows added since the cached entry are looked up.

    `key` names the rollup state (`_rollup_fingerprint`) and today's fill state, so an entry
    is only ever read against the rolled-up days it was classified against. Today's rows are
    only ever added to (a user's first event of the day inserts one, with a new, higher id;
    later events update it) or all replaced at once with new ids (a rebuild: an erasure, a
    refill). So the entry holds exactly the rows with an id up to `up_to_id` as long as
    there are still `users` of them: a rebuild leaves none, and a row that got a lower id
    but committed after the entry was made (concurrent stores) adds one. Either way the
    count differs and every row is classified again.
    """
    entry = None if cached is None else cached.get(key)
    if entry is not None:
        entry = _TodayUsers(*entry)
        users, added, more = _today_users_after(
            today=today, rollup_days=rollup_days, after_id=entry.up_to_id
        )
        if users - added == entry.users:
            if not added:
                return entry
            entry = _TodayUsers(
                more.up_to_id,
                users,
                entry.not_in_window + more.not_in_window,
                entry.not_in_week + more.not_in_week,
            )
            _cache_set(key, tuple(entry))
            return entry
    _, _, entry = _today_users_after(today=today, rollup_days=rollup_days, after_id=0)
    if cached is not None:
        _cache_set(key, tuple(entry))
    return entry


@contextlib.contextmanager
def no_jit(*, when: bool = True) -> Iterator[None]:
    """Run today's raw statements without PostgreSQL's JIT (`when` they read raw events).

    Their cost estimate (~100k rows of today late in the day) crosses `jit_above_cost`,
    and compiling them took ~9 ms of a ~50 ms statement that runs once. Statements over
    intraday and per-user rows only are estimated far below it, and skip the three round
    trips this takes (BEGIN, SET LOCAL, COMMIT).
    """
    if connection.vendor != "postgresql" or not when:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def _raw_event_counts(days: Sequence[dt.date]) -> list[tuple[dt.date, str, str, int]]:
    """(day, event_type, feature, events) of days read from raw events (no rollup and no
    intraday rows): one index range scan per day, with the day as a constant (no per-row
    timezone conversion)."""
    if not days:
        return []
    ops = connection.ops
    table = ops.quote_name(Event._meta.db_table)
    branches: list[str] = []
    params: list[Any] = []
    for i, day in enumerate(days):
        start, end = day_bounds(day)
        branches.append(
            f"SELECT {i}, event_type, feature, COUNT(*) FROM {table} "  # noqa: S608 — model names
            "WHERE occurred_at >= %s AND occurred_at < %s GROUP BY event_type, feature"
        )
        params += [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(branches), params)
        return [(days[i], t, f, int(n)) for i, t, f, n in cursor.fetchall()]


def usage_summary(*, days: int = 30, now: dt.datetime | None = None) -> dict[str, Any]:
    """The §5.4 usage summary over the last `days` UTC days including today (§6.4)."""
    if not 1 <= days <= USAGE_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {USAGE_MAX_DAYS}")
    now = (now or timezone.now()).astimezone(dt.UTC)
    today = now.date()
    first_day = today - dt.timedelta(days=days - 1)
    window = [first_day + dt.timedelta(days=n) for n in range(days)]

    rollups, fill_states, intraday_counts = _window_read(first_day=first_day, today=today)
    rollup_days = sorted(rollups)
    raw_days = [day for day in window if day not in rollups]
    intraday_days = fill_states.keys() & set(raw_days)
    raw_event_days = [day for day in raw_days if day not in intraday_days]

    events_per_day: dict[dt.date, int] = {}
    event_counts: dict[str, int] = {}
    feature_usage: dict[str, int] = {}
    users_per_day: dict[dt.date, int] = {}
    for day, rollup in rollups.items():
        events_per_day[day] = rollup.total_events
        users_per_day[day] = rollup.dau
        for event_type, n in json.loads(rollup.event_counts).items():
            event_counts[event_type] = event_counts.get(event_type, 0) + n
        for feature, n in json.loads(rollup.feature_usage).items():
            feature_usage[feature] = feature_usage.get(feature, 0) + n

    week_starts = sorted({iso_monday(day) for day in window})
    key = _rollup_fingerprint(first_day=first_day, today=today, rollups=rollups)
    # Today alone not rolled up, from its intraday rows: the usual case, at any hour.
    today_key = None
    if raw_days == [today] and intraday_days:
        fill_state = hashlib.sha256(fill_states[today].encode()).hexdigest()[:32]
        today_key = f"{key}:today:{fill_state}"
    cached = _cache_get_many([key] if today_key is None else [key, today_key])
    raw_counts = [row for row in intraday_counts if row[0] in intraday_days]
    if today_key is not None:
        classified = _today_users_cached(
            key=today_key, cached=cached, today=today, rollup_days=rollup_days
        )
        new_users = classified.not_in_window
        new_per_week = {iso_monday(today): classified.not_in_week}
        users_per_raw_day = {today: classified.users}
    else:
        with no_jit(when=bool(raw_event_days)):
            raw_counts += _raw_event_counts(raw_event_days)
            new_users, new_per_week, users_per_raw_day = _raw_day_users(
                raw_days=raw_days,
                intraday_days=intraday_days,
                rollup_days=rollup_days,
                week_starts=week_starts,
            )
    for day, event_type, feature, n in raw_counts:
        events_per_day[day] = events_per_day.get(day, 0) + n
        event_counts[event_type] = event_counts.get(event_type, 0) + n
        if feature:
            feature_usage[feature] = feature_usage.get(feature, 0) + n

    # Distinct users = users of the rolled-up days (cached) + raw-day users not among them.
    rolled_users, users_per_week = _rollup_users_cached(
        key=key, cached=cached, rollup_days=rollup_days, week_starts=week_starts
    )
    users_in_window = rolled_users + new_users
    for week, n in new_per_week.items():
        users_per_week[week] = users_per_week.get(week, 0) + n
    users_per_day.update(users_per_raw_day)

    days_with_data = sorted(day for day, n in events_per_day.items() if n > 0)
    weeks_with_data = sorted({iso_monday(day) for day in days_with_data})
    dau = (
        sum(users_per_day.get(day, 0) for day in days_with_data) / len(days_with_data)
        if days_with_data
        else 0.0
    )
    wau = (
        sum(users_per_week.get(week, 0) for week in weeks_with_data) / len(weeks_with_data)
        if weeks_with_data
        else 0.0
    )
    return {
        "ok": True,
        "ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period_days": days,
        "dau": round(dau, 1),
        "wau": round(wau, 1),
        "mau": users_in_window,
        "feature_usage": dict(sorted(feature_usage.items(), key=lambda kv: (-kv[1], kv[0]))),
        "funnel_steps": {step: event_counts.get(step, 0) for step in FUNNEL_STEPS},
        "total_events": sum(events_per_day.values()),
        "unique_days": len(days_with_data),
        "unique_weeks": len(weeks_with_data),
        # Extras (SPEC §5.4 welcomes them):
        "from": first_day.isoformat(),
        "to": today.isoformat(),
        "event_counts": dict(sorted(event_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "rolled_up_days": len(rollup_days),
    }


# --- staff stats page (§6.3) -----------------------------------------------------------------

GLANCE_EVENT_TYPES = (("song_add", "Songs queued"), ("vote", "Votes"), ("airhorn", "Airhorns"))
TOP_USER_EVENT_TYPES = (("song_add", "Song adds"), ("vote", "Votes"), ("jam", "Jams"))


def stats_page_context(*, redis_client, today: dt.date | None = None) -> dict[str, Any]:
    """What the EchoNest staff page shows, read from the live counters."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    todays_counts = live_counters.get_daily_stats(redis_client, today)
    todays_active = len(live_counters.get_daily_active_users(redis_client, today))
    glance = [{"label": "Daily active users", "value": todays_active, "event_type": "dau"}]
    glance += [
        {"label": label, "value": todays_counts.get(event_type, 0), "event_type": event_type}
        for event_type, label in (*GLANCE_EVENT_TYPES, ("signup", "Signups"))
    ]
    shown = {event_type for event_type, _ in GLANCE_EVENT_TYPES} | {"signup"}
    other_events = sorted(
        ((t, n) for t, n in todays_counts.items() if t not in shown), key=lambda kv: (-kv[1], kv[0])
    )

    trend = live_counters.get_dau_trend(redis_client, days=7, today=today)
    peak = max((n for _, n in trend), default=0)
    dau_bars = [
        {
            "day": dt.date.fromisoformat(day),
            "users": n,
            "percent": round(100 * n / peak) if peak else 0,
        }
        for day, n in trend
    ]

    per_user = live_counters.get_user_stats(redis_client, days=7, today=today)
    top_users = []
    for email, counts in per_user.items():
        figures = [counts.get(event_type, 0) for event_type, _ in TOP_USER_EVENT_TYPES]
        if any(figures):
            top_users.append({"email": email, "figures": figures, "total": sum(figures)})
    top_users.sort(key=lambda row: (-row["total"], row["email"]))

    return {
        "today": today,
        "glance": glance,
        "other_events": other_events,
        "dau_bars": dau_bars,
        "top_user_columns": [label for _, label in TOP_USER_EVENT_TYPES],
        "top_users": top_users[:10],
        "recent_signups": [
            {"email": email, "day": dt.date.fromisoformat(day)}
            for email, day in live_counters.get_recent_signups(redis_client, days=30, today=today)
        ],
        "known_users": live_counters.get_known_users_count(redis_client),
    }


def user_events_export(*, user_id: str) -> dict[str, Any]:
    """Every stored event of one user (GDPR right of access), oldest first."""
    events = Event.objects.filter(user_id=user_id).order_by("occurred_at", "id")
    rows = [
        {
            "uuid": str(event.uuid),
            "event_type": event.event_type,
            "user_id": event.user_id,
            "feature": event.feature,
            "url": event.url,
            "metadata": event.metadata,
            "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "received_at": event.received_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        for event in events.iterator(chunk_size=2000)
    ]
    return {"user_id": user_id, "count": len(rows), "events": rows}
