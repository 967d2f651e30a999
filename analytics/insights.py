"""Reading product insights: ordered funnels, retention cohorts, stickiness and the daily
active users series of the product page (SPEC §6.5, beyond the usage summary of §6.4).

Users are distinct non-empty user_id, days are UTC days. Retention and stickiness only
need "who was active on which day": past days come from the `DailyActiveUser` rows of
their rollup and the rest (today, a day without a rollup or one flagged for recompute)
from raw events, the way the usage summary does it (the helpers are shared from
`analytics.selectors`). A funnel needs each event's time and order, so it reads raw
events. Every figure is computed set-based in one SQL statement (window functions,
GROUP BY) that runs on PostgreSQL and SQLite; Python only shapes the few result rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connection
from django.utils import timezone

from echonest_analytics.days import day_start, days_bounds

from .models import FEATURE_MAX_LENGTH, DailyActiveUser, DailyRollup, Event
from .selectors import _iso_monday, _no_jit, _raw_users_branches, _runs, _sql_date

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


def _active_days_sql(*, first_day: dt.date, today: dt.date) -> tuple[str, list[Any]]:
    """`SELECT day, user_id` with one row per (UTC day, active user) of first_day … today.

    Days whose rollup is computed and not flagged (always before today) read their
    `DailyActiveUser` rows; every other day reads its raw events. The two sets of days
    are disjoint, so the rows are distinct without a DISTINCT over the union.
    """
    rollup_days = sorted(
        DailyRollup.objects.filter(
            day__gte=first_day, day__lt=today, needs_recompute=False
        ).values_list("day", flat=True)
    )
    rolled = set(rollup_days)
    span = (today - first_day).days + 1
    raw_days = [
        day for day in (first_day + dt.timedelta(days=n) for n in range(span)) if day not in rolled
    ]
    branches: list[str] = []
    params: list[Any] = []
    for first, last in _runs(rollup_days):
        branches.append(
            f"SELECT day, user_id FROM {_quote(DailyActiveUser)} WHERE day >= %s AND day <= %s"
        )
        params += [_sql_date(first), _sql_date(last)]
    raw_branches, raw_params = _raw_users_branches(raw_days)
    return " UNION ALL ".join(branches + raw_branches), params + raw_params


# --- stickiness ------------------------------------------------------------------------------


def stickiness(*, days: int = 30, now: dt.datetime | None = None) -> dict[str, Any]:
    """How many users were active on 1, 2, … `days` distinct UTC days of the window (the
    last `days` days including today), and dau_mau = mean daily users over the days
    with active users / users in the window (3 decimals; 0.0 without users)."""
    if not 1 <= days <= INSIGHT_MAX_DAYS:
        raise ValueError(f"days must be between 1 and {INSIGHT_MAX_DAYS}")
    today = _now(now).date()
    active, params = _active_days_sql(first_day=today - dt.timedelta(days=days - 1), today=today)
    sql = (
        f"WITH active (day, user_id) AS ({active}), "
        "per_user AS (SELECT user_id, COUNT(*) AS active_days FROM active GROUP BY user_id) "
        "SELECT active_days, COUNT(*), (SELECT COUNT(DISTINCT day) FROM active) "
        "FROM per_user GROUP BY active_days"
    )
    with _no_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_days = {int(active_days): int(users) for active_days, users, _ in rows}
    days_with_users = int(rows[0][2]) if rows else 0
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
    current = _iso_monday(today) if period == "week" else today
    return [current - step * (cohorts - 1 - n) for n in range(cohorts)]


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
    active, params = _active_days_sql(first_day=starts[0], today=today)
    # The period index of a day, newest first so the first matching branch wins.
    whens = " ".join(f"WHEN day >= %s THEN {n}" for n in range(cohorts - 1, 0, -1))
    period_of_day = f"CASE {whens} ELSE 0 END" if whens else "0"
    params += [_sql_date(start) for start in reversed(starts[1:])]
    span_start = starts[0]
    sql = (
        f"WITH active (day, user_id) AS ({active}), "
        f"periods AS (SELECT DISTINCT user_id, {period_of_day} AS period FROM active), "
        # A user active before the first cohort's period belongs to an older cohort: their
        # first event is looked for in the rollups' rows and in the raw events (either may
        # hold it: raw events of a closed day are purged, a recent day may not be rolled up).
        "cohort AS (SELECT user_id, MIN(period) AS first_period FROM periods p GROUP BY user_id "
        f"HAVING NOT EXISTS (SELECT 1 FROM {_quote(DailyActiveUser)} earlier "
        "WHERE earlier.user_id = p.user_id AND earlier.day < %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {_quote(Event)} earlier "
        "WHERE earlier.user_id = p.user_id AND earlier.occurred_at < %s)) "
        "SELECT cohort.first_period, periods.period, COUNT(*) FROM periods "
        "JOIN cohort ON cohort.user_id = periods.user_id "
        "GROUP BY cohort.first_period, periods.period"
    )
    params += [
        _sql_date(span_start),
        connection.ops.adapt_datetimefield_value(day_start(span_start)),
    ]
    with _no_jit(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        active_users = {(int(c), int(p)): int(n) for c, p, n in cursor.fetchall()}
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
    start, end = days_bounds(today - dt.timedelta(days=days - 1), today)
    ops = connection.ops
    bounds = [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
    events = _quote(Event)

    def step_filter(step: FunnelStep, alias: str) -> tuple[str, list[Any]]:
        sql = (
            f"{alias}.event_type = %s AND {alias}.user_id <> '' "
            f"AND {alias}.occurred_at >= %s AND {alias}.occurred_at < %s"
        )
        params: list[Any] = [step.event_type, *bounds]
        if step.feature is not None:
            sql += f" AND {alias}.feature = %s"
            params.append(step.feature)
        return sql, params

    first_filter, params = step_filter(steps[0], "e")
    ctes = [
        "s0 AS (SELECT user_id, t, id, t AS t0, CAST(NULL AS FLOAT) AS gap FROM ("
        "SELECT e.user_id, e.occurred_at AS t, e.id, ROW_NUMBER() OVER "
        "(PARTITION BY e.user_id ORDER BY e.occurred_at, e.id) AS rn "
        f"FROM {events} e WHERE {first_filter}) firsts WHERE rn = 1)"
    ]
    for k, step in enumerate(steps[1:], start=1):
        where, step_params = step_filter(step, "e")
        ctes.append(
            f"s{k} AS (SELECT user_id, t, id, t0, gap FROM ("
            f"SELECT e.user_id, e.occurred_at AS t, e.id, p.t0, "
            f"{_seconds_between('p.t', 'e.occurred_at')} AS gap, ROW_NUMBER() OVER "
            "(PARTITION BY e.user_id ORDER BY e.occurred_at, e.id) AS rn "
            f"FROM {events} e JOIN s{k - 1} p ON p.user_id = e.user_id WHERE {where} "
            "AND (e.occurred_at > p.t OR (e.occurred_at = p.t AND e.id > p.id)) "
            f"AND {_seconds_between('p.t0', 'e.occurred_at')} <= %s) nexts WHERE rn = 1)"
        )
        params += [*step_params, window_days * 86400]
    reached = " UNION ALL ".join(
        f"SELECT {k} AS step, user_id, gap FROM s{k}" for k in range(len(steps))
    )
    ctes.append(f"reached AS ({reached})")
    # The median without percentile functions (SQLite has none): the middle row, or the
    # mean of the two middle rows, of each step's gaps in order.
    sql = (
        f"WITH {', '.join(ctes)}, "
        "ranked AS (SELECT step, gap, ROW_NUMBER() OVER (PARTITION BY step ORDER BY gap) AS rn, "
        "COUNT(*) OVER (PARTITION BY step) AS n FROM reached) "
        "SELECT step, MAX(n), AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN gap END) "
        "FROM ranked GROUP BY step"
    )
    with _no_jit(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner guesses a handful of users per step (it cannot estimate `rn = 1`)
            # and probes the events once per user (a random heap read each: seconds at 2M
            # events); scanning each step's events once and hashing them is far cheaper.
            cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(sql, params)
        found = {int(k): (int(n), median) for k, n, median in cursor.fetchall()}
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
    branches, params = _raw_users_branches(raw_days)
    if branches:
        sql = (
            f"WITH raw_active (day, user_id) AS ({' UNION ALL '.join(branches)}) "
            "SELECT day, COUNT(*) FROM raw_active GROUP BY day"
        )
        with _no_jit(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            for day, users in cursor.fetchall():
                key = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
                per_day[key] = int(users)
    return [(day, per_day.get(day, 0)) for day in window]
