"""The ordered funnel's rollup, `UserStepTimes` (`analytics.step_times`), holds exactly the
moments of the raw events of the rolled-up days, through every write that changes them:
the rollup of each day, a late event and its day's recompute, an erasure, the purge, and
a rebuild. On PostgreSQL only; the embedded SQLite default keeps no rows and reads raw
events, with the same funnel answers (`test_insights_rollups.py` proves both).

The reference below ranks every stored event the way the spec words a funnel's order (by
time, then storage order) and shares no code with `analytics.step_times`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.db import connection

from analytics import step_times
from analytics.gdpr import user_erase
from analytics.insights import funnel, funnel_steps_parse
from analytics.models import DailyRollup, Event, IntradayStepTimes, UserStepTimes
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute
from echonest_analytics.days import day_start

from .conftest import FROZEN_NOW, store
from .test_insights_rollups import (
    FUNNELS,
    TODAY,
    random_events,
    read_answers,
    reference_funnel,
    roll_up_past_days,
)

pytestmark = pytest.mark.django_db

ON_POSTGRES = connection.vendor == "postgresql"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def current_days() -> set[dt.date]:
    """Days whose rollup is computed and not flagged: the days the funnel reads rows for."""
    return set(
        DailyRollup.objects.filter(computed_at__isnull=False, needs_recompute=False).values_list(
            "day", flat=True
        )
    )


def day_of(moment: int) -> dt.date:
    return (EPOCH + dt.timedelta(microseconds=moment // 1024)).date()


def reference_rows(days: set[dt.date]) -> dict[tuple, list[int]]:
    """(user, type, any feature, feature) → sorted moments of the users' events on `days`."""
    ordered = (
        Event.objects.exclude(user_id="")
        .order_by("user_id", "occurred_at", "id")
        .values_list("user_id", "event_type", "feature", "occurred_at")
    )
    rows: dict[tuple, list[int]] = defaultdict(list)
    previous, rank = None, 0
    for user, event_type, feature, at in ordered:
        rank = rank + 1 if (user, at) == previous else 0
        previous = (user, at)
        if at.astimezone(dt.UTC).date() not in days:
            continue
        moment = ((at - EPOCH) // dt.timedelta(microseconds=1)) * 1024 + min(rank, 1023)
        rows[(user, event_type, True, "")].append(moment)
        rows[(user, event_type, False, feature)].append(moment)
    return {key: sorted(times) for key, times in rows.items()}


def assert_rows_match(days: set[dt.date]) -> None:
    """On PostgreSQL the rows hold exactly the reference moments of `days`; SQLite has none."""
    if ON_POSTGRES:
        assert stored_rows(days) == reference_rows(days)
    else:
        assert not UserStepTimes.objects.exists()


def stored_rows(days: set[dt.date]) -> dict[tuple, list[int]]:
    """The stored rows, each cut to its moments on `days` (a flagged day's slice is stale
    until its recompute, and the funnel never reads it)."""
    rows = {}
    for row in UserStepTimes.objects.all():
        assert row.times == sorted(row.times), "a row's moments are kept sorted"
        kept = [m for m in row.times if day_of(m) in days]
        if kept:
            rows[(row.user_id, row.event_type, row.any_feature, row.feature)] = kept
    return rows


def test_rows_hold_the_moments_of_every_rolled_up_day(frozen_now):
    store(random_events(11))
    roll_up_past_days()
    days = current_days()
    assert len(days) == 59
    assert_rows_match(days)
    if ON_POSTGRES:
        # Nothing of today (never rolled up) is kept, and same-second ties rank apart.
        assert all(day_of(m) < TODAY for row in UserStepTimes.objects.all() for m in row.times)
        assert any(m % 1024 for row in UserStepTimes.objects.all() for m in row.times)


def test_recomputing_an_unchanged_day_writes_no_row(frozen_now):
    store(random_events(12))
    roll_up_past_days()

    def versions():
        if not ON_POSTGRES:  # no rows there; the recompute must not make any
            return dict(UserStepTimes.objects.values_list("id", "times"))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, xmin::text FROM {UserStepTimes._meta.db_table}")
            return dict(cursor.fetchall())

    before = versions()
    assert bool(before) == ON_POSTGRES
    daily_rollup_recompute(day=TODAY - dt.timedelta(days=3))
    assert versions() == before


def test_a_late_event_is_read_raw_until_its_day_is_recomputed(frozen_now):
    store(random_events(13))
    roll_up_past_days()
    late_day = TODAY - dt.timedelta(days=4)
    at = dt.datetime.combine(late_day, dt.time(9, 30), tzinfo=dt.UTC)
    store([("conversion", "user05", "signup", at), ("page_view", "newcomer", "pricing", at)])
    assert late_day not in current_days()  # flagged: the funnel reads the day raw
    assert_rows_match(current_days())
    assert read_answers()["funnels"] == [reference_funnel(*f) for f in FUNNELS]

    daily_rollup_recompute(day=late_day)
    assert late_day in current_days()
    assert_rows_match(current_days())
    newcomer = UserStepTimes.objects.filter(user_id="newcomer", event_type="page_view")
    assert newcomer.count() == (2 if ON_POSTGRES else 0)  # any feature, and "pricing"


def test_an_erasure_removes_the_users_rows(frozen_now):
    store(random_events(14))
    roll_up_past_days()
    assert UserStepTimes.objects.filter(user_id="user04").exists() == ON_POSTGRES
    # Another user's late event flags one of the erased user's days: that day's
    # recompute must bring everyone's slice up to date, not only the erased user's.
    user04_days = {
        at.astimezone(dt.UTC).date()
        for at in Event.objects.filter(user_id="user04").values_list("occurred_at", flat=True)
    }
    flagged = max(d for d in user04_days if d < TODAY)
    at = dt.datetime.combine(flagged, dt.time(6, 0), tzinfo=dt.UTC)
    store([("action", "user01", "signup", at)])
    assert flagged not in current_days()
    user_erase(user_id="user04")
    assert flagged in current_days()
    assert not UserStepTimes.objects.filter(user_id="user04").exists()
    assert_rows_match(current_days())
    assert read_answers()["funnels"] == [reference_funnel(*f) for f in FUNNELS]


def test_a_rebuild_gives_the_rows_the_rollups_kept(frozen_now):
    store(random_events(15))
    roll_up_past_days()
    store([("action", "user02", "", FROZEN_NOW - dt.timedelta(days=2))])  # flags a day
    daily_rollup_recompute(day=TODAY - dt.timedelta(days=2))
    kept = {
        (r.user_id, r.event_type, r.any_feature, r.feature): r.times
        for r in UserStepTimes.objects.all()
    }
    step_times.rebuild(days=current_days())
    rebuilt = {
        (r.user_id, r.event_type, r.any_feature, r.feature): r.times
        for r in UserStepTimes.objects.all()
    }
    assert rebuilt == kept
    assert bool(kept) == ON_POSTGRES


def test_the_purge_trims_old_moments_and_funnels_skip_days_past_retention(frozen_now, settings):
    store(random_events(16))
    roll_up_past_days()
    before = read_answers()["funnels"]
    settings.PRODUCT_EVENT_RETENTION_DAYS = 10
    kept_since = TODAY - dt.timedelta(days=10)
    # Past the raw retention nothing counts, before the purge as after it.
    assert read_answers()["funnels"] != before
    unpurged = read_answers()["funnels"]
    while product_purge(batch_size=500).has_more:
        pass
    assert not Event.objects.filter(occurred_at__lt=day_start(kept_since)).exists()
    assert read_answers()["funnels"] == unpurged == [reference_funnel(*f) for f in FUNNELS]
    if ON_POSTGRES:
        slack = kept_since - dt.timedelta(days=step_times.TRIM_SLACK_DAYS)
        assert UserStepTimes.objects.exists()
        assert all(day_of(m) >= slack for row in UserStepTimes.objects.all() for m in row.times)
        assert stored_rows(current_days() - {d for d in current_days() if d < kept_since}) == (
            reference_rows({d for d in current_days() if d >= kept_since})
        )
    else:
        assert not UserStepTimes.objects.exists()  # SQLite reads raw events only


def intraday_rows(day: dt.date) -> dict[tuple, list[int]]:
    return {
        (r.user_id, r.event_type, r.any_feature, r.feature): r.times
        for r in IntradayStepTimes.objects.filter(day=day)
    }


def test_todays_rows_follow_each_store_and_rank_ties_across_batches(frozen_now):
    morning = FROZEN_NOW.replace(hour=8)
    store(random_events(17, days=1))  # builds today's rows (the day's first store)
    # The same microsecond in three separate stores: each ranks after the ones before.
    store([("page_view", "tied", "pricing", morning)])
    store([("action", "tied", "signup", morning), ("page_view", "tied", "pricing", morning)])
    store([("conversion", "tied", "", morning)])
    expected = reference_rows({TODAY})
    if ON_POSTGRES:
        assert intraday_rows(TODAY) == expected
        # Four events at one microsecond rank 0…3; a later store ranks after an earlier.
        tied = {
            kind: [m % 1024 for m in times]
            for (user, kind, any_feature, _), times in intraday_rows(TODAY).items()
            if user == "tied" and any_feature
        }
        assert sorted(r for ranks in tied.values() for r in ranks) == [0, 1, 2, 3]
        assert tied["page_view"][0] == 0 and tied["conversion"] == [3]
    else:
        assert not IntradayStepTimes.objects.exists()
    answer = funnel(steps=funnel_steps_parse("page_view:pricing,action:signup,conversion"))
    assert answer["steps"] == reference_funnel("page_view:pricing,action:signup,conversion", 14, 30)
    assert answer["steps"][2]["users"] >= 1  # "tied" converts: storage order breaks the tie

    user_erase(user_id="tied")
    if ON_POSTGRES:
        assert intraday_rows(TODAY) == reference_rows({TODAY})
        assert not IntradayStepTimes.objects.filter(user_id="tied").exists()


def test_a_days_rollup_replaces_its_intraday_rows(frozen_now, monkeypatch):
    yesterday = TODAY - dt.timedelta(days=1)
    late_evening = dt.datetime.combine(yesterday, dt.time(23, 0), tzinfo=dt.UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: late_evening)
    store(random_events(18, days=1), received_at=late_evening)  # yesterday as "today"
    assert IntradayStepTimes.objects.filter(day=yesterday).exists() == ON_POSTGRES
    monkeypatch.setattr("django.utils.timezone.now", lambda: FROZEN_NOW)
    before = read_answers()["funnels"]  # yesterday from its intraday rows
    assert before == [reference_funnel(*f) for f in FUNNELS]
    daily_rollup_recompute(day=yesterday)
    assert not IntradayStepTimes.objects.filter(day=yesterday).exists()
    assert_rows_match(current_days())
    assert read_answers()["funnels"] == before  # now from UserStepTimes
