"""SPEC §6.5 insights read from their rollups give the answers a plain reading of the raw
events gives, on seeded random datasets: before any rollup, after every past day is
rolled up, with a day flagged by a late event, after the raw events of past days are
gone, and with events arriving today. Also: `UserActivity` always holds exactly the days
of the `DailyActiveUser` rows it pivots (rollup, erasure, purge).

The reference functions below compute each definition from every stored event in Python,
the way the spec words it; they share no code with `analytics.insights`.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import defaultdict

import pytest

from analytics.gdpr import user_erase
from analytics.insights import funnel, funnel_steps_parse, retention_cohorts, stickiness
from analytics.models import DailyActiveUser, DailyRollup, Event, UserActivity
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute

from .conftest import FROZEN_NOW, store

pytestmark = pytest.mark.django_db

TODAY = FROZEN_NOW.date()
FUNNELS = [
    ("page_view:pricing,action:signup,conversion", 14, 30),
    ("page_view,action,conversion", 3, 30),
    ("page_view,page_view,action", 7, 10),
    ("action,page_view:pricing", 1, 45),
]
RETENTIONS = [("week", 8), ("day", 20), ("week", 2)]
STICKINESS_DAYS = [1, 7, 30, 60]


def random_events(seed: int, *, days: int = 45, users: int = 30) -> list[tuple]:
    """(event_type, user_id, feature, occurred_at) over the `days` days up to FROZEN_NOW,
    with anonymous events and same-second ties."""
    rng = random.Random(seed)
    first = FROZEN_NOW - dt.timedelta(days=days)
    rows = []
    for n in range(users):
        user = f"user{n:02d}"
        joined = rng.uniform(0, days * 86400)
        for _ in range(rng.randint(1, 60)):
            at = first + dt.timedelta(seconds=rng.uniform(joined, days * 86400))
            at = at.replace(microsecond=0)
            event_type = rng.choice(["page_view", "page_view", "action", "conversion"])
            feature = rng.choice(["pricing", "dashboard", "signup", ""])
            rows.append((event_type, user, feature, at))
            if rng.random() < 0.1:  # the next step in the same second
                rows.append((rng.choice(["action", "conversion"]), user, "signup", at))
    rows += [("page_view", "", "pricing", first + dt.timedelta(days=d)) for d in range(days)]
    rng.shuffle(rows)  # storage order is not time order
    return rows


# --- the definitions, read plainly from every stored event -----------------------------------


def all_events() -> list[tuple[int, str, str, str, dt.datetime]]:
    return list(
        Event.objects.exclude(user_id="")
        .order_by("occurred_at", "id")
        .values_list("id", "event_type", "user_id", "feature", "occurred_at")
    )


def reference_funnel(text: str, window_days: int, days: int) -> list[dict]:
    steps = [(part.partition(":")[0], part.partition(":")[2] or None) for part in text.split(",")]
    first_day = TODAY - dt.timedelta(days=days - 1)
    by_user = defaultdict(list)
    for event in all_events():
        if first_day <= event[4].astimezone(dt.UTC).date() <= TODAY:
            by_user[event[2]].append(event)
    reached = [0] * len(steps)
    gaps = [[] for _ in steps]
    for events in by_user.values():  # each user's events in (time, id) order
        position, t0, previous = 0, None, None
        for k, (event_type, feature) in enumerate(steps):
            found = None
            for i in range(position, len(events)):
                _, kind, _, feat, at = events[i]
                if kind != event_type or (feature is not None and feat != feature):
                    continue
                if t0 is not None and (at - t0).total_seconds() > window_days * 86400:
                    break
                found = i
                break
            if found is None:
                break
            at = events[found][4]
            if k == 0:
                t0 = at
            else:
                gaps[k].append((at - previous).total_seconds())
            reached[k] += 1
            previous, position = at, found + 1
    rows = []
    for k, (event_type, feature) in enumerate(steps):
        rows.append(
            {
                "step": event_type if feature is None else f"{event_type}:{feature}",
                "users": reached[k],
                "conversion_from_start": round(reached[k] / reached[0], 3) if reached[0] else 0.0,
                "conversion_from_previous": (
                    round(reached[k] / reached[k - 1 if k else 0], 3)
                    if reached[k - 1 if k else 0]
                    else 0.0
                ),
                "median_seconds_from_previous": (
                    round(statistics.median(gaps[k]), 1) if k and gaps[k] else None
                ),
            }
        )
    return rows


def reference_active_days() -> dict[str, set[dt.date]]:
    active = defaultdict(set)
    for _, _, user, _, at in all_events():
        active[user].add(at.astimezone(dt.UTC).date())
    return active


def reference_retention(period: str, cohorts: int, active: dict[str, set[dt.date]]) -> list[dict]:
    def period_start(day: dt.date) -> dt.date:
        return day - dt.timedelta(days=day.weekday()) if period == "week" else day

    step = dt.timedelta(days=7 if period == "week" else 1)
    starts = [period_start(TODAY) - step * (cohorts - 1 - n) for n in range(cohorts)]
    rows = []
    for index, start in enumerate(starts):
        members = [u for u, days in active.items() if period_start(min(days)) == start]
        returning = []
        for later in starts[index:]:
            back = sum(1 for u in members if any(period_start(d) == later for d in active[u]))
            returning.append(round(back / len(members), 3) if members else 0.0)
        rows.append({"start": start.isoformat(), "users": len(members), "returning": returning})
    return rows


def reference_stickiness(days: int, active: dict[str, set[dt.date]]) -> dict:
    first_day = TODAY - dt.timedelta(days=days - 1)
    per_user = {
        u: n for u, d in active.items() if (n := sum(1 for day in d if first_day <= day <= TODAY))
    }
    histogram = {str(n): 0 for n in range(1, days + 1)}
    for n in per_user.values():
        histogram[str(n)] += 1
    days_with_users = {day for d in active.values() for day in d if first_day <= day <= TODAY}
    dau = sum(per_user.values()) / len(days_with_users) if days_with_users else 0.0
    return {
        "ok": True,
        "days": days,
        "users_by_active_days": histogram,
        "dau_mau": round(dau / len(per_user), 3) if per_user else 0.0,
    }


def reference_answers(active: dict[str, set[dt.date]] | None = None) -> dict:
    active = active if active is not None else reference_active_days()
    return {
        "funnels": [reference_funnel(*f) for f in FUNNELS],
        "retention": [reference_retention(p, c, active) for p, c in RETENTIONS],
        "stickiness": [reference_stickiness(d, active) for d in STICKINESS_DAYS],
    }


def read_answers() -> dict:
    return {
        "funnels": [
            funnel(steps=funnel_steps_parse(text), window_days=w, days=d)["steps"]
            for text, w, d in FUNNELS
        ],
        "retention": [retention_cohorts(period=p, cohorts=c)["cohorts"] for p, c in RETENTIONS],
        "stickiness": [stickiness(days=d) for d in STICKINESS_DAYS],
    }


def roll_up_past_days(days: int = 60) -> None:
    for offset in range(1, days):
        daily_rollup_recompute(day=TODAY - dt.timedelta(days=offset))


def activity_pivot() -> dict[str, tuple[dt.date, dt.date, str]]:
    """What `UserActivity` must hold: each user's DailyActiveUser days, as its rows do."""
    days = defaultdict(set)
    for user, day in DailyActiveUser.objects.values_list("user_id", "day"):
        days[user].add(day)
    pivot = {}
    for user, active in days.items():
        first, last = min(active), max(active)
        bits = "".join(
            "1" if first + dt.timedelta(days=n) in active else "0"
            for n in range((last - first).days + 1)
        )
        pivot[user] = (first, last, bits)
    return pivot


def activity_rows() -> dict[str, tuple[dt.date, dt.date, str]]:
    return {a.user_id: (a.first_day, a.last_day, a.active_days) for a in UserActivity.objects.all()}


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_insights_from_rollups_equal_the_definitions_read_from_raw_events(frozen_now, seed):
    store(random_events(seed))
    expected = reference_answers()
    assert expected["funnels"][0][0]["users"] > 0  # the dataset exercises every figure
    assert read_answers() == expected  # nothing rolled up: every day raw

    roll_up_past_days()
    assert UserActivity.objects.exists()
    assert activity_rows() == activity_pivot()
    assert read_answers() == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_insights_read_a_flagged_day_from_raw_events_and_today_as_it_arrives(frozen_now, seed):
    store(random_events(seed))
    roll_up_past_days()
    # A late event on a rolled-up day flags it: that day is read raw until recomputed.
    late_day = TODAY - dt.timedelta(days=5)
    store([("page_view", "latecomer", "pricing", FROZEN_NOW - dt.timedelta(days=5))])
    assert DailyRollup.objects.get(day=late_day).needs_recompute
    assert read_answers() == reference_answers()

    before = read_answers()
    # Events arriving today: a new user runs the whole pricing funnel, an old one returns.
    this_morning = FROZEN_NOW - dt.timedelta(hours=3)
    store(
        [
            ("page_view", "newcomer", "pricing", this_morning),
            ("action", "newcomer", "signup", this_morning + dt.timedelta(minutes=5)),
            ("conversion", "newcomer", "", this_morning + dt.timedelta(minutes=9)),
            ("action", "user00", "signup", this_morning),
        ]
    )
    after = read_answers()
    assert after == reference_answers()
    assert after["funnels"][0][2]["users"] == before["funnels"][0][2]["users"] + 1
    newest_day_cohort = after["retention"][1][-1]
    assert newest_day_cohort["start"] == TODAY.isoformat()
    assert newest_day_cohort["users"] >= 1  # the newcomer

    daily_rollup_recompute(day=late_day)
    assert activity_rows() == activity_pivot()
    assert read_answers() == reference_answers()


def test_retention_and_stickiness_stay_the_same_once_past_raw_events_are_gone(frozen_now):
    store(random_events(6))
    roll_up_past_days()
    active = reference_active_days()
    expected = reference_answers(active)
    Event.objects.filter(occurred_at__lt=FROZEN_NOW.replace(hour=0)).delete()
    answers = read_answers()
    assert answers["retention"] == expected["retention"]
    assert answers["stickiness"] == expected["stickiness"]


def test_user_activity_follows_an_erasure(frozen_now):
    store(random_events(7))
    roll_up_past_days()
    assert UserActivity.objects.filter(user_id="user03").exists()
    user_erase(user_id="user03")
    assert not UserActivity.objects.filter(user_id="user03").exists()
    assert activity_rows() == activity_pivot()
    assert read_answers() == reference_answers()


def test_user_activity_follows_the_purge_of_old_daily_active_users(frozen_now, settings):
    store(random_events(8))
    roll_up_past_days()
    settings.PRODUCT_EVENT_RETENTION_DAYS = 10
    settings.ROLLUP_RETENTION_DAYS = 20
    oldest_before = UserActivity.objects.order_by("first_day").first().first_day
    while product_purge(batch_size=500).has_more:
        pass
    assert oldest_before < TODAY - dt.timedelta(days=20)
    assert not UserActivity.objects.filter(first_day__lt=TODAY - dt.timedelta(days=20)).exists()
    assert activity_rows() == activity_pivot()
