"""Reading product insights: ordered funnels, retention cohorts, stickiness and the daily
active users series of the product page (SPEC §6.5, beyond the usage summary of §6.4).

Users are distinct non-empty user_id, days are UTC days. Retention and stickiness only
need "who was active on which day". Rolled-up days come from `UserActivity`, one row per
user holding their active days (the `DailyActiveUser` rows pivoted, kept by the rollup),
so a window costs one row per user, not one per user and day; the other days (today, a
day without a rollup or one flagged for recompute) come from their intraday rows or raw
events, the way the usage summary reads them (`analytics.selectors`). A funnel needs each
event's time and order: it follows each user of the window from step to step with one
probe of the `analytics_event_user` index per step (the user's next event of that step),
so it reads each user's events from their first step on, not the window's events. Every figure is one SQL
statement on PostgreSQL and SQLite; Python only shapes the few result rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from django.db import connection
from django.utils import timezone

from echonest_analytics.days import day_start, days_bounds

from . import step_times
from .models import (
    FEATURE_MAX_LENGTH,
    DailyRollup,
    Event,
    IntradayStepTimes,
    UserActivity,
    UserStepTimes,
)
from .rollups import raw_events_kept_since
from .selectors import (
    day_runs,
    intraday_filled_days,
    iso_monday,
    no_jit,
    raw_users_branches,
    sql_date,
)

FUNNEL_MIN_STEPS, FUNNEL_MAX_STEPS = 2, 10
FUNNEL_MAX_WINDOW_DAYS = 90
INSIGHT_MAX_DAYS = 365
RETENTION_MAX_COHORTS = 52

RetentionPeriod = Literal["day", "week"]


@dataclass(frozen=True)
class FunnelStep:
    """One step: an event type, optionally narrowed to one feature (`page_view:pricing`)."""

    event_type: str
    feature: str | None = None

    @property
    def label(self) -> str:
        return self.event_type if self.feature is None else f"{self.event_type}:{self.feature}"


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or timezone.now()).astimezone(dt.UTC)


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def _quote(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _seconds_between(earlier: str, later: str) -> str:
    """SQL for `later - earlier` in seconds (a number) on either database."""
    if connection.vendor == "sqlite":
        # Django stores datetimes as ISO text there; julianday() reads it (UTC).
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


# --- who was active on which day -------------------------------------------------------------


@dataclass(frozen=True)
class _WindowDays:
    """The days of first_day … today split by where their active users are read."""

    first_day: dt.date
    rollup_dau: dict[dt.date, int]  # rolled-up days (UserActivity), with their DAU
    raw_days: list[dt.date]  # the others: intraday rows or raw events
    intraday_days: set[dt.date]

    @property
    def rollup_runs(self) -> list[tuple[dt.date, dt.date]]:
        return day_runs(sorted(self.rollup_dau))

    def raw_active_sql(self) -> tuple[str, list[Any]]:
        """`SELECT day, user_id`: one row per (raw day, active user)."""
        branches, params = raw_users_branches(self.raw_days, self.intraday_days)
        if not branches:  # never: today is always a raw day
            return "SELECT NULL, NULL WHERE 1 = 0", []
        return " UNION ALL ".join(branches), params


def _window_days(*, first_day: dt.date, today: dt.date) -> _WindowDays:
    """Days whose rollup is computed and not flagged (always before today) are rolled up."""
    rollup_dau = dict(
        DailyRollup.objects.filter(
            day__gte=first_day, day__lt=today, needs_recompute=False
        ).values_list("day", "dau")
    )
    span = (today - first_day).days + 1
    raw_days = [
        day
        for day in (first_day + dt.timedelta(days=n) for n in range(span))
        if day not in rollup_dau
    ]
    return _WindowDays(
        first_day=first_day,
        rollup_dau=rollup_dau,
        raw_days=raw_days,
        intraday_days=intraday_filled_days(raw_days),
    )


def _activity_rows_sql(*, origin: dt.date, where: str) -> tuple[str, list[Any]]:
    """`SELECT user_id, active_days, o` from UserActivity, where `o` is the position in
    `active_days` (0-based) of `origin`: day d sits at o + (d - origin) days."""
    if connection.vendor == "sqlite":
        offset = "CAST(julianday(%s) - julianday(first_day) AS INTEGER)"
    else:
        offset = "(CAST(%s AS DATE) - first_day)"
    return (
        f"SELECT user_id, active_days, {offset} AS o FROM {_quote(UserActivity)} WHERE {where}",
        [sql_date(origin)],
    )


def _active_days_in_sql(*, origin: dt.date, first: dt.date, last: dt.date) -> str:
    """SQL counting the "1"s of an activity row (`active_days`, `o`) over first … last."""
    lo, hi = int((first - origin).days), int((last - origin).days)
    if connection.vendor == "postgresql":
        # PostgreSQL's SUBSTR clips a start before the string to the string: exactly the
        # part of first … last the row covers.
        segment = f"SUBSTR(active_days, o + {lo + 1}, {hi - lo + 1})"
    else:  # SQLite reads a negative start from the end: clamp it to the row's start
        start = f"(CASE WHEN o + {lo} > 0 THEN o + {lo} ELSE 0 END)"
        length = f"(CASE WHEN o + {hi} - {start} + 1 > 0 THEN o + {hi} - {start} + 1 ELSE 0 END)"
        segment = f"SUBSTR(active_days, {start} + 1, {length})"
    return f"LENGTH(REPLACE({segment}, '0', ''))"


# --- stickiness ------------------------------------------------------------------------------


def stickiness(*, days: int = 30, now: dt.datetime | None = None) -> dict[str, Any]:
    """How many users were active on 1, 2, … `days` distinct UTC days of the window (the
    last `days` days including today), and dau_mau = mean daily users over the days
    with active users / users in the window (3 decimals; 0.0 without users)."""
    if not 1 <= days <= INSIGHT_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {INSIGHT_MAX_DAYS}")
    today = _now(now).date()
    window = _window_days(first_day=today - dt.timedelta(days=days - 1), today=today)
    raw_active, params = window.raw_active_sql()
    # Users by active days: the rolled-up days' histogram, straight from one row per user
    # (grouped by a small number, not by user), then each raw-day user moved up by their
    # raw days (from their rolled-up count, 0 without one).
    raw_users = "SELECT user_id, COUNT(*) AS n FROM raw_active GROUP BY user_id"
    parts = []
    rolled_count = "0"
    joined = ""
    runs = window.rollup_runs
    if runs:
        origin = window.first_day
        rows, row_params = _activity_rows_sql(origin=origin, where="last_day >= %s")
        counted = " + ".join(
            _active_days_in_sql(origin=origin, first=first, last=last) for first, last in runs
        )
        parts.append(
            # (the users with none there are bucket 0, which the histogram leaves out)
            f"SELECT 0, n, 0, COUNT(*) FROM (SELECT {counted} AS n FROM ({rows}) activity) "
            "counted GROUP BY n"
        )
        params += [*row_params, sql_date(runs[0][0])]
        joined_rows, joined_params = _activity_rows_sql(origin=origin, where="1 = 1")
        joined = f" LEFT JOIN ({joined_rows}) activity ON activity.user_id = raw_users.user_id"
        params += joined_params
        rolled_count = f"COALESCE({counted}, 0)"
    parts.append(
        f"SELECT 1, rolled, n, COUNT(*) FROM (SELECT {rolled_count} AS rolled, raw_users.n "
        f"FROM ({raw_users}) raw_users{joined}) moved GROUP BY rolled, n"
    )
    parts.append("SELECT 2, COUNT(DISTINCT day), 0, 0 FROM raw_active")
    sql = f"WITH raw_active (day, user_id) AS ({raw_active}) {' UNION ALL '.join(parts)}"
    with no_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_days: dict[int, int] = {}
    raw_days_with_users = 0
    for kind, rolled, raw, users in rows:
        if kind == 0:
            if rolled:
                by_days[int(rolled)] = by_days.get(int(rolled), 0) + int(users)
        elif kind == 1:
            if rolled:
                by_days[int(rolled)] = by_days.get(int(rolled), 0) - int(users)
            total = int(rolled) + int(raw)
            by_days[total] = by_days.get(total, 0) + int(users)
        else:
            raw_days_with_users = int(rolled)
    days_with_users = raw_days_with_users + sum(1 for n in window.rollup_dau.values() if n > 0)
    users = sum(by_days.values())
    pairs = sum(active_days * n for active_days, n in by_days.items())
    dau = pairs / days_with_users if days_with_users else 0.0
    return {
        "ok": True,
        "days": days,
        "users_by_active_days": {str(n): by_days.get(n, 0) for n in range(1, days + 1)},
        "dau_mau": round(dau / users, 3) if users else 0.0,
    }


# --- retention cohorts -----------------------------------------------------------------------
def _period_starts(*, period: RetentionPeriod, cohorts: int, today: dt.date) -> list[dt.date]:
    step = dt.timedelta(days=7 if period == "week" else 1)
    current = iso_monday(today) if period == "week" else today
    return [current - step * (cohorts - 1 - n) for n in range(cohorts)]


def _raw_days_before(day: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Runs of the days before `day` whose raw events may hold users that their
    `DailyActiveUser` rows lack: days with events and no current rollup."""
    earliest = Event.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()
    if earliest is None or earliest.astimezone(dt.UTC).date() >= day:
        return []
    first = earliest.astimezone(dt.UTC).date()
    rolled = set(
        DailyRollup.objects.filter(day__gte=first, day__lt=day, needs_recompute=False).values_list(
            "day", flat=True
        )
    )
    span = (day - first).days
    return day_runs(
        [d for d in (first + dt.timedelta(days=n) for n in range(span)) if d not in rolled]
    )


def retention_cohorts(
    *, period: RetentionPeriod = "week", cohorts: int = 8, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The last `cohorts` periods (UTC days, or ISO weeks from Monday) up to the current
    one, oldest first. A cohort is the users whose first event ever fell in that period;
    returning[n] is the share of them with an event in the n-th period after it
    (returning[0] = 1.0; 0.0 throughout for a cohort without users), 3 decimals."""
    if period not in ("day", "week"):
        raise ValueError("period must be day or week")
    if not 1 <= cohorts <= RETENTION_MAX_COHORTS:
        raise ValueError(f"cohorts must be between 1 and {RETENTION_MAX_COHORTS}")
    today = _now(now).date()
    starts = _period_starts(period=period, cohorts=cohorts, today=today)
    span_start = starts[0]
    window = _window_days(first_day=span_start, today=today)
    raw_active, params = window.raw_active_sql()
    ends = [later - dt.timedelta(days=1) for later in starts[1:]] + [today]

    # Per user and period: 1 when active in it. Raw days by their period (newest first, so
    # the first matching branch wins); rolled-up days from the user's activity row.
    whens = " ".join(f"WHEN day >= %s THEN {n}" for n in range(cohorts - 1, 0, -1))
    period_of_day = f"CASE {whens} ELSE 0 END" if whens else "0"
    raw_flags = ", ".join(
        f"CASE WHEN period = {n} THEN 1 ELSE 0 END AS f{n}" for n in range(cohorts)
    )
    parts = [
        f"SELECT user_id, {raw_flags} FROM (SELECT user_id, {period_of_day} AS period "
        "FROM raw_active) raw_periods"
    ]
    params += [sql_date(start) for start in reversed(starts[1:])]
    runs = window.rollup_runs
    if runs:
        flags = []
        for n, (first, last) in enumerate(zip(starts, ends, strict=True)):
            counted = [
                _active_days_in_sql(origin=span_start, first=max(first, a), last=min(last, b))
                for a, b in runs
                if a <= last and b >= first
            ]
            flags.append(
                f"CASE WHEN {' + '.join(counted)} > 0 THEN 1 ELSE 0 END AS f{n}"
                if counted
                else f"0 AS f{n}"
            )
        # Only users whose first rolled-up active day is in the span can be in a cohort.
        rows, row_params = _activity_rows_sql(origin=span_start, where="first_day >= %s")
        parts.append(f"SELECT user_id, {', '.join(flags)} FROM ({rows}) activity")
        params += [*row_params, sql_date(span_start)]
    maxes = ", ".join(f"MAX(f{n}) AS f{n}" for n in range(cohorts))
    # A user with any event before the span belongs to an older cohort: a DailyActiveUser
    # row before it (their activity row's first day), or a raw event on a day before it
    # that has no current rollup.
    earlier = [
        f"NOT EXISTS (SELECT 1 FROM {_quote(UserActivity)} a "
        "WHERE a.user_id = flags.user_id AND a.first_day < %s)"
    ]
    params.append(sql_date(span_start))
    ops = connection.ops
    for first, last in _raw_days_before(span_start):
        earlier.append(
            f"NOT EXISTS (SELECT 1 FROM {_quote(Event)} e WHERE e.user_id = flags.user_id "
            "AND e.occurred_at >= %s AND e.occurred_at < %s)"
        )
        first_at, end_at = days_bounds(first, last)
        params += [ops.adapt_datetimefield_value(first_at), ops.adapt_datetimefield_value(end_at)]
    cohort_of = " ".join(f"WHEN f{n} = 1 THEN {n}" for n in range(cohorts))
    sums = ", ".join(f"SUM(f{n})" for n in range(cohorts))
    sql = (
        f"WITH raw_active (day, user_id) AS ({raw_active}), "
        f"flags AS (SELECT user_id, {maxes} FROM ({' UNION ALL '.join(parts)}) parts "
        "GROUP BY user_id) "
        f"SELECT cohort, {sums} FROM (SELECT flags.*, CASE {cohort_of} END AS cohort "
        f"FROM flags WHERE {' AND '.join(earlier)}) members "
        "WHERE cohort IS NOT NULL GROUP BY cohort"
    )
    with no_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        active_users = {
            (int(row[0]), n): int(row[1 + n] or 0)
            for row in cursor.fetchall()
            for n in range(cohorts)
        }
    rows = []
    for index, start in enumerate(starts):
        users = active_users.get((index, index), 0)
        rows.append(
            {
                "start": start.isoformat(),
                "users": users,
                "returning": [
                    _ratio(active_users.get((index, later), 0), users)
                    for later in range(index, cohorts)
                ],
            }
        )
    return {"ok": True, "period": period, "cohorts": rows}


# --- ordered funnels -------------------------------------------------------------------------


def funnel_steps_parse(text: str) -> list[FunnelStep]:
    """`page_view:pricing,action:signup,conversion` → its steps (2–10).

    Raises ValueError with a fixed message (the input is never echoed back).
    """
    parts = text.split(",")
    message = (
        f"steps must be {FUNNEL_MIN_STEPS} to {FUNNEL_MAX_STEPS} comma-separated "
        "event_type or event_type:feature."
    )
    if not FUNNEL_MIN_STEPS <= len(parts) <= FUNNEL_MAX_STEPS:
        raise ValueError(message)
    steps = []
    for part in parts:
        event_type, colon, feature = part.strip().partition(":")
        if (
            not event_type
            or len(event_type) > 64
            or (colon and not feature)
            or len(feature) > FEATURE_MAX_LENGTH
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in part)
        ):
            raise ValueError(message)
        steps.append(FunnelStep(event_type=event_type, feature=feature if colon else None))
    return steps


def _within_seconds(earlier: str, later: str) -> str:
    """SQL: `later` is no more than %s seconds after `earlier` (an index bound on PostgreSQL)."""
    if connection.vendor == "sqlite":
        return f"{_seconds_between(earlier, later)} <= %s"
    return f"{later} <= {earlier} + %s * INTERVAL '1 second'"


def _funnel_step_sql(
    *,
    step: FunnelStep,
    name: str,
    previous: str,
    after: list[str],
    carried: str,
    params: list[Any],
    after_params: list[Any],
    end: Any,
) -> str:
    """`name AS (…)`: for each row `p` of `previous`, the user's first event of `step`
    (by time, then storage order) that meets `after` and falls before the window's end,
    as columns t and id beside `carried`; users without one drop out. Appends its
    placeholders' values to `params`.

    SQLite has no LATERAL: correlated subqueries find the time, then the id at that time.
    """
    matches = ["e.user_id = p.user_id", "e.event_type = %s", *after, "e.occurred_at < %s"]
    match_params = [step.event_type, *after_params, end]
    if step.feature is not None:
        matches.append("e.feature = %s")
        match_params.append(step.feature)
    where = " AND ".join(matches)
    events = _quote(Event)
    first_only = "t0" not in carried  # step 1 starts the user's window
    params += [*match_params, *match_params]
    t0 = ", p.next_t AS t0" if first_only else ""
    return (
        f"{name} AS (SELECT {carried}, p.next_t AS t, (SELECT MIN(e.id) FROM {events} e "
        f"WHERE {where} AND e.occurred_at = p.next_t) AS id{t0} FROM ("
        f"SELECT p.*, (SELECT MIN(e.occurred_at) FROM {events} e WHERE {where}) AS next_t "
        f"FROM {previous} p) p WHERE p.next_t IS NOT NULL)"
    )


def _kind_match(step: FunnelStep, alias: str, params: list[Any]) -> str:
    params.append(step.event_type)
    if step.feature is None:
        return f"{alias}.event_type = %s"
    params.append(step.feature)
    return f"({alias}.event_type = %s AND {alias}.feature = %s)"


def _funnel_reached_pg(
    *, steps: Sequence[FunnelStep], window_days: int, window: _WindowDays, params: list[Any]
) -> list[str]:
    """PostgreSQL: the CTEs ending in `reached (step, gap)`, one materialized step after
    another over one row per user (SPEC §11: a funnel over 10M events in milliseconds).

    A user's events of a kind come, sorted, from one row per source (see
    `analytics.step_times`): `UserStepTimes` for the rolled-up days, `IntradayStepTimes`
    for each day in `IntradayFill` (today, and a day the rollup has not reached), and,
    for any other day (flagged by a late event), its raw events of the funnel's kinds,
    ranked and gathered per user in one pass (`raw`). "The user's next event of this kind
    after that moment" is then a binary search (`width_bucket`) in each source's row,
    and the earliest of them is the step's event (the sources never share a day).
    Appends the placeholders' values to `params`.
    """
    slots = step_times.MOMENT_RANK_SLOTS
    kinds = list(dict.fromkeys(steps))  # each distinct kind once
    rolled = [
        (
            step_times.moment_floor(day_start(first)),
            step_times.moment_floor(day_start(last + dt.timedelta(days=1))),
        )
        for first, last in window.rollup_runs
    ]
    filled = [day for day in window.raw_days if day in window.intraday_days]
    raw_runs = day_runs([day for day in window.raw_days if day not in window.intraday_days])
    ctes: list[str] = []
    if raw_runs:
        # Placeholders in text order: the flags, the day ranges, the matches.
        flags = ", ".join(
            f"{_kind_match(kind, 'e', params)} AS f{j}" for j, kind in enumerate(kinds)
        )
        ranges = " OR ".join("(e.occurred_at >= %s AND e.occurred_at < %s)" for _ in raw_runs)
        for first, last in raw_runs:
            params += [day_start(first), day_start(last + dt.timedelta(days=1))]
        matches = " OR ".join(_kind_match(kind, "e", params) for kind in kinds)
        arrays = ", ".join(
            f"array_agg(moment ORDER BY moment) FILTER (WHERE f{j}) AS k{j}"
            for j in range(len(kinds))
        )
        ctes.append(
            f'raw AS (SELECT user_id COLLATE "C" AS user_id, {arrays} '
            f"FROM (SELECT e.user_id, {flags}, "
            f"{step_times.moment_sql('e')} AS moment FROM {_quote(Event)} e "
            f"WHERE ({ranges}) AND e.user_id <> '' AND ({matches})) e "
            # in the order the ranking sorted them by: no second sort
            "GROUP BY 1)"
        )
    # Each kind's rows per source: (CTE name, alias, bounds of the moments it may give).
    sources: list[list[tuple[str, str, list[tuple[int, int]]]]] = []
    for j, kind in enumerate(kinds):
        kind_sources = []
        kind_where = "event_type = %s AND any_feature = %s AND feature = %s"
        kind_params = [kind.event_type, kind.feature is None, kind.feature or ""]
        if rolled:
            ctes.append(
                f"a{j} AS NOT MATERIALIZED (SELECT user_id, times FROM "
                f"{_quote(UserStepTimes)} WHERE {kind_where})"
            )
            params += kind_params
            # only inside a rolled-up run: a flagged day's slice is stale
            kind_sources.append((f"a{j}", "a", rolled))
        for n, day in enumerate(filled):
            ctes.append(
                f"i{n}k{j} AS NOT MATERIALIZED (SELECT user_id, times FROM "
                f"{_quote(IntradayStepTimes)} WHERE day = %s AND {kind_where})"
            )
            params += [day, *kind_params]
            kind_sources.append((f"i{n}k{j}", f"i{n}", []))
        sources.append(kind_sources)

    def next_after(previous: str, j: int, raw: str) -> str:
        """The user's first moment of kind j after `previous`, over the joined sources
        and the raw array `raw`."""
        found = []
        for _, alias, bounds in sources[j]:
            if not bounds:
                found.append(f"{alias}.times[width_bucket({previous}, {alias}.times) + 1]")
            for lo, hi in bounds:
                at = f"{alias}.times[width_bucket(GREATEST({previous}, {lo - 1}), {alias}.times) + 1]"
                found.append(f"CASE WHEN {at} < {hi} THEN {at} END")
        if raw_runs:
            found.append(f"{raw}[width_bucket({previous}, {raw}) + 1]")
        return f"LEAST({', '.join(found)})"

    def joins(j: int, user: str) -> str:  # the sources of kind j beside each user
        return " ".join(
            f"LEFT JOIN {name} {alias} ON {alias}.user_id = {user}" for name, alias, _ in sources[j]
        )

    first = kinds.index(steps[0])
    start = step_times.moment_floor(day_start(window.first_day))
    # Step 1's users: every user in one of its sources, the sources full-joined on the
    # user (each read once, no separate list of users).
    joined: list[str] = []
    ids: list[str] = []
    for name, alias, _ in sources[first]:
        on = f" ON {alias}.user_id = COALESCE({', '.join(ids)})" if ids else ""
        joined.append(f"{' FULL JOIN ' if ids else ''}{name} {alias}{on}")
        ids.append(f"{alias}.user_id")
    if raw_runs:
        on = f" ON r.user_id = COALESCE({', '.join(ids)})" if ids else ""
        joined.append(f"{' FULL JOIN ' if ids else ''}raw r{on}")
        ids.append("r.user_id")
    user_id = f"COALESCE({', '.join(ids)})" if len(ids) > 1 else ids[0]
    carried = "".join(f", r.k{j}" for j in range(len(kinds))) if raw_runs else ""
    window_us = window_days * 86_400_000_000
    # OFFSET 0 keeps each subquery whole, so its search runs once per row.
    ctes.append(
        f"s0 AS MATERIALIZED (SELECT *, (e / {slots} + {window_us}) * {slots} + {slots - 1} "
        f"AS lim FROM (SELECT {user_id} AS user_id{carried}, "
        f"{next_after(str(start - 1), first, f'r.k{first}')} AS e "
        f"FROM {''.join(joined)} OFFSET 0) x WHERE e IS NOT NULL)"
    )
    raw_carried = "".join(f", p.k{j}" for j in range(len(kinds))) if raw_runs else ""
    for k, step in enumerate(steps[1:], start=1):
        j = kinds.index(step)
        ctes.append(
            f"s{k} AS MATERIALIZED (SELECT * FROM (SELECT p.user_id{raw_carried}, p.lim, "
            f"p.e AS previous, {next_after('p.e', j, f'p.k{j}')} AS e FROM s{k - 1} p "
            f"{joins(j, 'p.user_id')} OFFSET 0) x WHERE e <= lim)"
        )
    # Gaps in whole microseconds: their median is exact (a float8 holds half of an odd
    # sum of two such integers exactly), and seconds are made from it in Python.
    gaps = [f"SELECT {k}, e / {slots} - previous / {slots} FROM s{k}" for k in range(1, len(steps))]
    reached = " UNION ALL ".join(["SELECT 0 AS step, CAST(NULL AS BIGINT) AS gap FROM s0", *gaps])
    ctes.append(f"reached AS ({reached})")
    return ctes


def _funnel_sqlite(
    *, steps: Sequence[FunnelStep], window_days: int, window: _WindowDays, params: list[Any]
) -> list[str]:
    """SQLite: the CTEs ending in `reached (step, user_id, gap)`, read from raw events
    (the embedded default keeps no `UserStepTimes`): each candidate user's next event of
    each step by correlated subqueries. Appends the placeholders' values to `params`."""
    ops = connection.ops
    start, end = days_bounds(window.first_day, window.raw_days[-1])
    end_param = ops.adapt_datetimefield_value(end)
    # Every user with an event in the window (a superset of step 1's users is enough).
    raw_active, raw_params = window.raw_active_sql()
    params += raw_params
    candidates = "SELECT DISTINCT user_id FROM raw_active"
    if window.rollup_runs:
        candidates += f" UNION SELECT user_id FROM {_quote(UserActivity)} WHERE last_day >= %s"
        params.append(sql_date(window.rollup_runs[0][0]))
    ctes = [f"raw_active (day, user_id) AS ({raw_active})", f"candidates AS ({candidates})"]
    ctes.append(
        _funnel_step_sql(
            step=steps[0],
            name="s0",
            previous="candidates",
            after=["e.occurred_at >= %s"],
            carried="p.user_id",
            params=params,
            after_params=[ops.adapt_datetimefield_value(start)],
            end=end_param,
        )
    )
    for k, step in enumerate(steps[1:], start=1):
        ctes.append(
            _funnel_step_sql(
                step=step,
                name=f"s{k}",
                previous=f"s{k - 1}",
                # Strictly after the previous step's event (ties in time by storage order)
                # and no later than window_days after the user's first step-1 event.
                after=[
                    "e.occurred_at >= p.t",
                    "(e.occurred_at > p.t OR e.id > p.id)",
                    _within_seconds("p.t0", "e.occurred_at"),
                ],
                carried="p.user_id, p.t0, p.t AS previous_t",
                params=params,
                after_params=[window_days * 86400],
                end=end_param,
            )
        )
    reached = " UNION ALL ".join(
        [
            "SELECT 0 AS step, user_id, CAST(NULL AS FLOAT) AS gap FROM s0",
            *(
                f"SELECT {k}, user_id, {_seconds_between('previous_t', 't')} FROM s{k}"
                for k in range(1, len(steps))
            ),
        ]
    )
    ctes.append(f"reached AS ({reached})")
    return ctes


def _funnel_medians(ctes: list[str], params: list[Any]) -> dict[int, tuple[int, Any]]:
    """{step: (users, median gap in seconds)} from the CTEs ending in `reached`."""
    if connection.vendor == "postgresql":
        sql = (
            f"WITH {', '.join(ctes)} SELECT step, COUNT(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FROM reached GROUP BY step"
        )
        with no_jit(), connection.cursor() as cursor:
            # Every join is over one row per user: hash joins, with room for them in memory.
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(sql, params)
            return {
                int(k): (int(n), None if us is None else Decimal(us) / 1_000_000)
                for k, n, us in cursor.fetchall()
            }
    # The median without percentile functions (SQLite has none): the middle row, or the
    # mean of the two middle rows, of each step's gaps in order.
    sql = (
        f"WITH {', '.join(ctes)}, "
        "ranked AS (SELECT step, gap, ROW_NUMBER() OVER (PARTITION BY step ORDER BY gap) AS rn, "
        "COUNT(*) OVER (PARTITION BY step) AS n FROM reached) "
        "SELECT step, MAX(n), AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN gap END) "
        "FROM ranked GROUP BY step"
    )
    with no_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {int(k): (int(n), median) for k, n, median in cursor.fetchall()}


def funnel(
    *,
    steps: Sequence[FunnelStep],
    window_days: int = 14,
    days: int = 30,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An ordered funnel over the last `days` UTC days including today.

    A user reaches step 1 with their first step-1 event in the window, and step k when,
    after reaching step k-1, they did step k later (ties in time broken by storage
    order), no more than `window_days` after that first step-1 event. The earliest such
    event is the one taken, which never loses a later step. Anonymous events never count.
    Per step: users, conversion_from_start (users / step-1 users), conversion_from_previous
    (users / step k-1 users), both 3 decimals, and median_seconds_from_previous (median
    over the step's users of the time since their step k-1 event, 1 decimal; null for
    step 1 and for a step nobody reached).
    """
    if not FUNNEL_MIN_STEPS <= len(steps) <= FUNNEL_MAX_STEPS:
        raise ValueError(f"a funnel has {FUNNEL_MIN_STEPS} to {FUNNEL_MAX_STEPS} steps")
    if not 1 <= window_days <= FUNNEL_MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be between 1 and {FUNNEL_MAX_WINDOW_DAYS}")
    if not 1 <= days <= INSIGHT_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {INSIGHT_MAX_DAYS}")
    today = _now(now).date()
    # Events older than the raw retention never count: the purge deletes them from
    # rolled-up days, so the answer does not depend on when it last ran.
    first_day = max(today - dt.timedelta(days=days - 1), raw_events_kept_since(today=today))
    window = _window_days(first_day=first_day, today=today)
    params: list[Any] = []
    if connection.vendor == "postgresql":
        ctes = _funnel_reached_pg(
            steps=steps, window_days=window_days, window=window, params=params
        )
    else:
        ctes = _funnel_sqlite(steps=steps, window_days=window_days, window=window, params=params)
    found = _funnel_medians(ctes, params)
    rows = []
    first_users = found.get(0, (0, None))[0]
    previous_users = first_users
    for k, step in enumerate(steps):
        users, median = found.get(k, (0, None))
        rows.append(
            {
                "step": step.label,
                "users": users,
                "conversion_from_start": _ratio(users, first_users),
                "conversion_from_previous": _ratio(users, previous_users if k else first_users),
                "median_seconds_from_previous": (
                    round(float(median), 1) if k and median is not None else None
                ),
            }
        )
        previous_users = users
    return {"ok": True, "steps": rows}


# --- the product page's daily active users ---------------------------------------------------


def daily_active_users_series(
    *, days: int = 30, now: dt.datetime | None = None
) -> list[tuple[dt.date, int]]:
    """(day, distinct users) for each of the last `days` UTC days including today: a
    rolled-up day's rollup figure, the other days counted from raw events."""
    if not 1 <= days <= INSIGHT_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {INSIGHT_MAX_DAYS}")
    today = _now(now).date()
    first_day = today - dt.timedelta(days=days - 1)
    per_day = dict(
        DailyRollup.objects.filter(
            day__gte=first_day, day__lt=today, needs_recompute=False
        ).values_list("day", "dau")
    )
    window = [first_day + dt.timedelta(days=n) for n in range(days)]
    raw_days = [day for day in window if day not in per_day]
    branches, params = raw_users_branches(raw_days, intraday_filled_days(raw_days))
    if branches:
        sql = (
            f"WITH raw_active (day, user_id) AS ({' UNION ALL '.join(branches)}) "
            "SELECT day, COUNT(*) FROM raw_active GROUP BY day"
        )
        with no_jit(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            for day, users in cursor.fetchall():
                key = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
                per_day[key] = int(users)
    return [(day, per_day.get(day, 0)) for day in window]
