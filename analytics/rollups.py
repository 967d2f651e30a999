"""Daily rollups of product events (SPEC §4 DailyRollup, §7 product rollup).

A day's rollup is always recomputed from that day's raw events and written over
the old one (Zulip style): re-running a day, or running it after a crash
halfway, gives the same figures as one clean run, never a `+=`. Only complete
UTC days (before today) are rolled up.

Today (and a day not rolled up yet) is served from the intraday rows instead
(`IntradayFill`, `IntradayEventCount`, `IntradayActiveUser`): built from the day's raw
events by the first store of one of its events, then kept current by every store in the
transaction that stores the events (each uuid is stored once, so each event is added
exactly once — a retried batch adds nothing), rebuilt from raw rows by an erasure, and
dropped when the day's rollup is computed. A day's `IntradayActiveUser` rows are only
ever inserted (a user's first event of the day, with a new id) or updated, or all
deleted at once (a rebuild, a drop): the usage API's cache of today's classified users
(`selectors._today_users_cached`) relies on it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Collection, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from echonest_analytics.days import day_bounds, utc_today

from . import step_times
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

# Days before yesterday that the nightly run also fills when their rollup is
# missing (e.g. beat was down), so a gap heals itself.
BACKFILL_DAYS = 7


def raw_events_kept_since(*, today: dt.date | None = None) -> dt.date:
    """The first day whose raw events retention never deletes.

    A day before it whose rollup is computed is *closed*: the purge may have deleted its raw
    events, so its rollup (with its DailyActiveUser rows) is the whole record and
    is never recomputed from raw rows again.
    """
    today = today or utc_today()
    return today - dt.timedelta(days=settings.PRODUCT_EVENT_RETENTION_DAYS)


def closed_rollup_days(*, days: Iterable[dt.date], today: dt.date | None = None) -> set[dt.date]:
    kept_since = raw_events_kept_since(today=today)
    old = [day for day in days if day < kept_since]
    if not old:
        return set()
    # Only a computed, unflagged rollup can have lost raw events to the purge (which
    # skips days without one); a placeholder made by a flag still has all its rows.
    return set(
        DailyRollup.objects.filter(
            day__in=old, computed_at__isnull=False, needs_recompute=False
        ).values_list("day", flat=True)
    )


def closed_rollup_fold_in(*, day: dt.date, events: Iterable) -> None:
    """Add late events to a closed day's rollup, exactly once.

    Runs in the transaction that stores the events (each uuid is stored once), so
    it never counts an event twice; distinct users stay exact through the day's
    DailyActiveUser rows.
    """
    rollup = DailyRollup.objects.select_for_update().get(day=day)
    for event in events:
        rollup.total_events += 1
        rollup.event_counts[event.event_type] = rollup.event_counts.get(event.event_type, 0) + 1
        if event.feature:
            rollup.feature_usage[event.feature] = rollup.feature_usage.get(event.feature, 0) + 1
        if event.user_id:
            updated = DailyActiveUser.objects.filter(day=day, user_id=event.user_id).update(
                events=F("events") + 1
            )
            if not updated:
                DailyActiveUser.objects.create(day=day, user_id=event.user_id, events=1)
                user_activity_day_update(day=day, added=[event.user_id], removed=[])
                rollup.dau += 1
    rollup.event_counts = dict(sorted(rollup.event_counts.items(), key=lambda kv: (-kv[1], kv[0])))
    rollup.feature_usage = dict(
        sorted(rollup.feature_usage.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    rollup.save(update_fields=["total_events", "event_counts", "feature_usage", "dau"])


def rollup_days_mark_for_recompute(*, days: Iterable[dt.date]) -> None:
    """Flag days whose raw events changed after (or while) they were rolled up.

    Upserts so a day whose rollup is being computed right now is flagged once
    that computation commits (it holds the row lock), and is recomputed later.
    Sorted, so concurrent writers lock rows in the same order.
    """
    DailyRollup.objects.bulk_create(
        [DailyRollup(day=day, needs_recompute=True) for day in sorted(set(days))],
        update_conflicts=True,
        unique_fields=["day"],
        update_fields=["needs_recompute"],
    )


def daily_rollup_recompute(
    *, day: dt.date, only_users: Collection[str] | None = None
) -> DailyRollup:
    """Recompute one complete UTC day from its raw events and store it (idempotent).

    `only_users`: the only users whose events of the day changed since its last current
    rollup (an erasure of an unflagged day); the funnel rows of the others are not
    re-read. None (the default): anyone's may have.
    """
    if day >= utc_today():
        raise ValueError(f"{day} is not a complete UTC day yet; only days before today roll up.")
    if closed_rollup_days(days=[day]):
        # Its raw events may be purged: recomputing would wipe the figures.
        DailyRollup.objects.filter(day=day, needs_recompute=True).update(needs_recompute=False)
        logger.info("rollup of %s kept: the day is closed (raw events past retention)", day)
        return DailyRollup.objects.get(day=day)
    start, end = day_bounds(day)
    with transaction.atomic():
        # Take the day's row lock first: a late event for this day then waits and
        # flags the fresh rollup for recompute, instead of being silently missed.
        DailyRollup.objects.bulk_create(
            [DailyRollup(day=day, needs_recompute=True)], ignore_conflicts=True
        )
        rollup = DailyRollup.objects.select_for_update().get(day=day)

        counts = (
            Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
            .values_list("event_type", "feature")
            .annotate(events=Count("id"))
            .order_by()
        )
        event_counts: dict[str, int] = {}
        feature_usage: dict[str, int] = {}
        for event_type, feature, events in counts:
            event_counts[event_type] = event_counts.get(event_type, 0) + events
            if feature:
                feature_usage[feature] = feature_usage.get(feature, 0) + events

        day_users = DailyActiveUser.objects.filter(day=day)
        users_before = set(day_users.values_list("user_id", flat=True))
        day_users.delete()
        dau = _daily_active_users_insert(day=day, start=start, end=end)
        users_after = set(day_users.values_list("user_id", flat=True))
        user_activity_day_update(
            day=day, added=users_after - users_before, removed=users_before - users_after
        )
        step_times.day_replace(
            day=day,
            users_before=users_before,
            # a flagged day's slices may be stale for anyone
            only_users=None if rollup.needs_recompute else only_users,
        )

        rollup.total_events = sum(event_counts.values())
        rollup.event_counts = dict(sorted(event_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        rollup.feature_usage = dict(sorted(feature_usage.items(), key=lambda kv: (-kv[1], kv[0])))
        rollup.dau = dau
        rollup.needs_recompute = False
        rollup.computed_at = timezone.now()
        rollup.save()
        # The rollup serves the day from now on; a later late event flags it (raw reads).
        intraday_usage_drop(day=day)
    return rollup


def _daily_active_users_insert(*, day: dt.date, start: dt.datetime, end: dt.datetime) -> int:
    """One set-based `INSERT … SELECT … GROUP BY` of the day's (day, user) rows."""
    ops = connection.ops
    dau_table = ops.quote_name(DailyActiveUser._meta.db_table)
    event_table = ops.quote_name(Event._meta.db_table)
    sql = (
        f"INSERT INTO {dau_table} (day, user_id, events) "  # noqa: S608 — names from model metadata
        f"SELECT %s, user_id, COUNT(*) FROM {event_table} "
        "WHERE occurred_at >= %s AND occurred_at < %s AND user_id <> '' GROUP BY user_id"
    )
    params = [
        ops.adapt_datefield_value(day) if connection.vendor == "sqlite" else day,
        ops.adapt_datetimefield_value(start),
        ops.adapt_datetimefield_value(end),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return DailyActiveUser.objects.filter(day=day).count()


# --- per-user activity (DailyActiveUser pivoted per user) -------------------------------------


def _user_activity_lock() -> None:
    """Serialize writers of `UserActivity` (a read-modify-write of each row's days) for the
    rest of the transaction. SQLite allows one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('analytics.UserActivity'))")


def _activity_with_day(activity: UserActivity | None, *, user_id: str, day: dt.date):
    if activity is None:
        return UserActivity(user_id=user_id, first_day=day, last_day=day, active_days="1")
    offset = (day - activity.first_day).days
    days = activity.active_days
    if offset < 0:
        activity.active_days = "1" + "0" * (-offset - 1) + days
        activity.first_day = day
    elif offset >= len(days):
        activity.active_days = days + "0" * (offset - len(days)) + "1"
        activity.last_day = day
    else:
        activity.active_days = days[:offset] + "1" + days[offset + 1 :]
    return activity


def _activity_without_day(activity: UserActivity, *, day: dt.date) -> UserActivity | None:
    """The row without `day`, trimmed to start and end on an active day; None when empty."""
    offset = (day - activity.first_day).days
    days = activity.active_days
    if 0 <= offset < len(days):
        days = days[:offset] + "0" + days[offset + 1 :]
    trimmed = days.lstrip("0")
    if not trimmed:
        return None
    activity.first_day += dt.timedelta(days=len(days) - len(trimmed))
    activity.active_days = trimmed.rstrip("0")
    activity.last_day = activity.first_day + dt.timedelta(days=len(activity.active_days) - 1)
    return activity


def _user_activity_save(changed: list[UserActivity], emptied: list[str]) -> None:
    if emptied:
        UserActivity.objects.filter(user_id__in=emptied).delete()
    UserActivity.objects.bulk_create(
        changed,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["user_id"],
        update_fields=["first_day", "last_day", "active_days"],
    )


def user_activity_day_update(
    *, day: dt.date, added: Collection[str], removed: Collection[str]
) -> None:
    """Mark `day` active for the `added` users and inactive for the `removed` ones, in the
    transaction that adds or deletes their `DailyActiveUser` rows of that day."""
    if not added and not removed:
        return
    _user_activity_lock()
    users = sorted(set(added) | set(removed))
    changed: list[UserActivity] = []
    emptied: list[str] = []
    for chunk in range(0, len(users), 1000):
        batch = users[chunk : chunk + 1000]
        rows = {row.user_id: row for row in UserActivity.objects.filter(user_id__in=batch)}
        for user_id in batch:
            if user_id in added:
                changed.append(_activity_with_day(rows.get(user_id), user_id=user_id, day=day))
            elif user_id in rows:
                kept = _activity_without_day(rows[user_id], day=day)
                if kept is None:
                    emptied.append(user_id)
                else:
                    changed.append(kept)
    _user_activity_save(changed, emptied)


def user_activity_rebuild(*, user_ids: Collection[str]) -> None:
    """Recompute these users' rows from their `DailyActiveUser` rows (after a purge or an
    erasure removed some of them)."""
    with transaction.atomic():
        _user_activity_lock()
        _user_activity_rebuild(sorted(set(user_ids)))


def _user_activity_rebuild(users: list[str]) -> None:
    for chunk in range(0, len(users), 1000):
        batch = users[chunk : chunk + 1000]
        rebuilt: dict[str, UserActivity] = {}
        for user_id, day in (
            DailyActiveUser.objects.filter(user_id__in=batch)
            .order_by("user_id", "day")
            .values_list("user_id", "day")
        ):
            rebuilt[user_id] = _activity_with_day(rebuilt.get(user_id), user_id=user_id, day=day)
        _user_activity_save(list(rebuilt.values()), [u for u in batch if u not in rebuilt])


def rollup_due_days(*, today: dt.date | None = None) -> list[dt.date]:
    """Days the nightly run recomputes: yesterday, flagged days, and recent days never rolled up."""
    today = today or utc_today()
    due = set(
        DailyRollup.objects.filter(needs_recompute=True, day__lt=today).values_list(
            "day", flat=True
        )
    )
    recent = {today - dt.timedelta(days=n) for n in range(1, BACKFILL_DAYS + 1)}
    rolled = set(
        DailyRollup.objects.filter(day__in=recent, needs_recompute=False).values_list(
            "day", flat=True
        )
    )
    due |= recent - rolled
    due.add(today - dt.timedelta(days=1))
    return sorted(due)


def daily_rollups_refresh(*, today: dt.date | None = None) -> list[DailyRollup]:
    """The nightly job (03:15 UTC): recompute every due day, oldest first."""
    rollups = [daily_rollup_recompute(day=day) for day in rollup_due_days(today=today)]
    logger.info("product rollups refreshed: %s", ", ".join(str(r.day) for r in rollups))
    return rollups


# --- intraday usage rows (today, and days not rolled up yet) ---------------------------------


def _day_param(day: dt.date):
    return day.isoformat() if connection.vendor == "sqlite" else day


def _fill_lock(*, days: Iterable[dt.date], exclusive: bool) -> list[dt.date]:
    """Lock the fill rows of `days` (sorted) and return the days that have one.

    Stores take them shared (concurrent stores never wait for each other), a rebuild or a
    drop exclusively: a store then waits for a rebuild to commit and adds its events to
    the rebuilt rows, and a rebuild waits for the stores already adding.
    """
    days = sorted(set(days))
    if not days:
        return []
    table = connection.ops.quote_name(IntradayFill._meta.db_table)
    lock = (" FOR UPDATE" if exclusive else " FOR SHARE") if connection.vendor != "sqlite" else ""
    placeholders = ", ".join(["%s"] * len(days))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT day FROM {table} WHERE day IN ({placeholders}) ORDER BY day{lock}",  # noqa: S608
            [_day_param(day) for day in days],
        )
        found = [row[0] for row in cursor.fetchall()]
    return [dt.date.fromisoformat(day) if isinstance(day, str) else day for day in found]


def intraday_usage_rebuild(*, day: dt.date) -> None:
    """Build one day's intraday rows from its raw events and mark the day filled (idempotent).

    Recomputed from raw rows and written over the old ones, never added to.
    """
    start, end = day_bounds(day)
    ops = connection.ops
    event_table = ops.quote_name(Event._meta.db_table)
    params = [
        _day_param(day),
        ops.adapt_datetimefield_value(start),
        ops.adapt_datetimefield_value(end),
    ]
    with transaction.atomic():
        IntradayFill.objects.bulk_create(
            [IntradayFill(day=day, filled_at=timezone.now())], ignore_conflicts=True
        )
        _fill_lock(days=[day], exclusive=True)
        IntradayEventCount.objects.filter(day=day).delete()
        IntradayActiveUser.objects.filter(day=day).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {ops.quote_name(IntradayEventCount._meta.db_table)} "  # noqa: S608
                f"(day, event_type, feature, events) SELECT %s, event_type, feature, COUNT(*) "
                f"FROM {event_table} WHERE occurred_at >= %s AND occurred_at < %s "
                "GROUP BY event_type, feature",
                params,
            )
            cursor.execute(
                f"INSERT INTO {ops.quote_name(IntradayActiveUser._meta.db_table)} "  # noqa: S608
                f"(day, user_id, events) SELECT %s, user_id, COUNT(*) FROM {event_table} "
                "WHERE occurred_at >= %s AND occurred_at < %s AND user_id <> '' GROUP BY user_id",
                params,
            )
        step_times.intraday_rebuild(day=day)
        IntradayFill.objects.filter(day=day).update(filled_at=timezone.now())


def intraday_usage_drop(*, day: dt.date) -> None:
    """Forget one day's intraday rows (its rollup serves it now)."""
    with transaction.atomic():
        if _fill_lock(days=[day], exclusive=True):
            IntradayEventCount.objects.filter(day=day).delete()
            IntradayActiveUser.objects.filter(day=day).delete()
            step_times.intraday_drop(day=day)
            IntradayFill.objects.filter(day=day).delete()


def _upsert_add(table, key_columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    quoted = connection.ops.quote_name(table._meta.db_table)
    columns = (*key_columns, "events")
    values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quoted} ({', '.join(columns)}) VALUES {values} "  # noqa: S608
            f"ON CONFLICT ({', '.join(key_columns)}) "
            f"DO UPDATE SET events = {quoted}.events + excluded.events",
            [value for row in rows for value in row],
        )


def intraday_usage_add(*, events: Iterable, today: dt.date) -> None:
    """Add newly stored events to their days' intraday rows, in the storing transaction.

    `events` are the events this transaction stored (uuid-deduplicated), so each is added
    once. The first store of an event of today builds today's rows from raw events
    (which then include this batch); days without a fill row are left to raw reads.
    """
    by_day: dict[dt.date, list] = {}
    for event in events:
        by_day.setdefault(event.occurred_at.astimezone(dt.UTC).date(), []).append(event)
    if not by_day:
        return
    if today in by_day:
        # Waits for a concurrent first store of today to commit, then finds its rows.
        IntradayFill.objects.bulk_create(
            [IntradayFill(day=today, filled_at=timezone.now())], ignore_conflicts=True
        )
        if not IntradayEventCount.objects.filter(day=today).exists():
            intraday_usage_rebuild(day=today)  # from raw rows, this batch included
            del by_day[today]
    counts: Counter = Counter()
    users: Counter = Counter()
    for day in _fill_lock(days=by_day, exclusive=False):
        step_times.intraday_add(day=day, uuids=[e.uuid for e in by_day[day] if e.user_id])
        for event in by_day[day]:
            counts[(_day_param(day), event.event_type, event.feature)] += 1
            if event.user_id:
                users[(_day_param(day), event.user_id)] += 1
    _upsert_add(
        IntradayEventCount,
        ("day", "event_type", "feature"),
        [(*key, n) for key, n in sorted(counts.items())],
    )
    _upsert_add(
        IntradayActiveUser, ("day", "user_id"), [(*key, n) for key, n in sorted(users.items())]
    )


def intraday_usage_erase_user(*, user_id: str, days: Iterable[dt.date]) -> list[dt.date]:
    """Rebuild, from the remaining raw events, every filled day a user's events were on
    (GDPR erasure, after the events are deleted); returns those days."""
    days = set(days) | set(
        IntradayActiveUser.objects.filter(user_id=user_id).values_list("day", flat=True)
    )
    filled = sorted(set(IntradayFill.objects.filter(day__in=days).values_list("day", flat=True)))
    for day in filled:
        intraday_usage_rebuild(day=day)
    return filled
