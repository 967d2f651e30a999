"""Today's users, classified once and then only as they are added (SPEC §11, §6.4).

The usage API keeps, in the cache, today's intraday users classified against the window's
rolled-up days (`analytics.selectors._today_users_cached`), under a key naming the rollup
rows and today's fill state, with the highest `IntradayActiveUser` id it has classified
and how many rows that covered. A request classifies only the rows added since, and
classifies every row again when the covered rows are not all still there. After every
kind of write (ingestion, late events, erasure, rollup, purge, a rebuild, a row committed
out of id order) the very next answer must equal the one counted from raw events, or,
once raw events are purged, the one counted with an empty cache. Real database and cache
(LocMem, or Redis when REDIS_URL is set: shared by every process); no mocks.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.gdpr import user_erase
from analytics.models import (
    DailyRollup,
    Event,
    IntradayActiveUser,
    IntradayEventCount,
    IntradayFill,
)
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute, intraday_usage_rebuild
from analytics.selectors import FUNNEL_STEPS, iso_monday, usage_summary
from analytics.services import NewEvent, events_store
from echonest_analytics.days import day_start

pytestmark = pytest.mark.django_db

LATE_EVENING = dt.datetime(2026, 3, 11, 23, 59, tzinfo=dt.UTC)
TODAY = LATE_EVENING.date()
WINDOW = 14
TYPES = ["page_view", "action", "conversion", "song_add"]
FEATURES = ["dashboard", "search", "player", ""]
# The statement that classifies today's rows reads those above an id: `… AND id > N)`.
CLASSIFIED_AFTER = re.compile(r"WHERE day = \S+ AND id > (\d+)\)")


@pytest.fixture
def late_evening(monkeypatch) -> dt.datetime:
    monkeypatch.setattr("django.utils.timezone.now", lambda: LATE_EVENING)
    return LATE_EVENING


def event(user_id: str, occurred_at: dt.datetime, event_type: str = "page_view", feature=""):
    return NewEvent(
        uuid=uuid.uuid4(),
        event_type=event_type,
        user_id=user_id,
        feature=feature,
        occurred_at=occurred_at,
    )


def store(*events: NewEvent) -> None:
    events_store(events=list(events), received_at=LATE_EVENING)


def day_events(rng: random.Random, day: dt.date, n: int, users: int = 40) -> list[NewEvent]:
    start = day_start(day)
    last = 23 * 3600 if day == TODAY else 86399
    return [
        event(
            "" if rng.random() < 0.1 else f"user{rng.randrange(users):03d}",
            start + dt.timedelta(seconds=rng.uniform(0, last)),
            rng.choice(TYPES),
            rng.choice(FEATURES),
        )
        for _ in range(n)
    ]


def roll_up_days_before(day: dt.date) -> None:
    """Roll up every day of the window before `day` (a day without events too: the nightly
    run does), so that the later days are the window's only raw days."""
    for back in range(WINDOW - 1, (TODAY - day).days, -1):
        daily_rollup_recompute(day=TODAY - dt.timedelta(days=back))


@pytest.fixture
def busy_day(late_evening):
    """Twenty days of events, every day before today rolled up, and today so far stored
    the real way (its intraday rows kept by ingestion); one request has filled the cache."""
    rng = random.Random(7)
    for back in range(20, 0, -1):
        day = TODAY - dt.timedelta(days=back)
        events_store(events=day_events(rng, day, 60), received_at=day_start(day))
    for back in range(20, 0, -1):
        daily_rollup_recompute(day=TODAY - dt.timedelta(days=back))
    today = day_events(rng, TODAY, 300)
    for i in range(0, len(today), 50):
        store(*today[i : i + 50])
    # Someone active on the rolled-up days but not yet today, someone never seen before.
    assert Event.objects.filter(user_id="user000", occurred_at__lt=day_start(TODAY)).exists()
    Event.objects.filter(user_id="user000", occurred_at__gte=day_start(TODAY)).delete()
    intraday_usage_rebuild(day=TODAY)
    assert not Event.objects.filter(user_id="newbie").exists()
    usage_summary(days=WINDOW)
    return late_evening


def from_raw_events(days: int = WINDOW) -> dict:
    """SPEC §6.4's figures counted in Python straight from the stored events."""
    first = TODAY - dt.timedelta(days=days - 1)
    users_by_day: dict[dt.date, set[str]] = {}
    users_by_week: dict[dt.date, set[str]] = {}
    feature_usage: dict[str, int] = {}
    event_counts: dict[str, int] = {}
    total = 0
    for event_type, user_id, feature, occurred_at in Event.objects.filter(
        occurred_at__gte=day_start(first), occurred_at__lt=day_start(TODAY + dt.timedelta(days=1))
    ).values_list("event_type", "user_id", "feature", "occurred_at"):
        day = occurred_at.astimezone(dt.UTC).date()
        total += 1
        users_by_day.setdefault(day, set())
        users_by_week.setdefault(iso_monday(day), set())
        if user_id:
            users_by_day[day].add(user_id)
            users_by_week[iso_monday(day)].add(user_id)
        event_counts[event_type] = event_counts.get(event_type, 0) + 1
        if feature:
            feature_usage[feature] = feature_usage.get(feature, 0) + 1
    return {
        "dau": round(sum(map(len, users_by_day.values())) / len(users_by_day), 1),
        "wau": round(sum(map(len, users_by_week.values())) / len(users_by_week), 1),
        "mau": len(set().union(*users_by_day.values())),
        "feature_usage": dict(sorted(feature_usage.items(), key=lambda kv: (-kv[1], kv[0]))),
        "funnel_steps": {step: event_counts.get(step, 0) for step in FUNNEL_STEPS},
        "total_events": total,
        "unique_days": len(users_by_day),
        "unique_weeks": len(users_by_week),
    }


FIGURES = (
    "dau",
    "wau",
    "mau",
    "feature_usage",
    "funnel_steps",
    "total_events",
    "unique_days",
    "unique_weeks",
)


def answer() -> tuple[dict, list[int]]:
    """(this request's figures, the ids above which it classified today's rows)."""
    with CaptureQueriesContext(connection) as captured:
        summary = usage_summary(days=WINDOW)
    after = [int(m.group(1)) for q in captured for m in [CLASSIFIED_AFTER.search(q["sql"])] if m]
    return {key: summary[key] for key in FIGURES}, after


def with_an_empty_cache() -> dict:
    cache.clear()
    return {key: value for key, value in usage_summary(days=WINDOW).items() if key in FIGURES}


def today_max_id() -> int:
    return max(IntradayActiveUser.objects.filter(day=TODAY).values_list("id", flat=True))


def test_a_repeated_request_classifies_no_row_again(busy_day):
    figures_now, after = answer()
    assert figures_now == from_raw_events()
    assert after == [today_max_id()]  # only rows above the newest one: none


def test_a_new_user_today_is_classified_alone_and_counted(busy_day):
    before, _ = answer()
    covered = today_max_id()
    store(event("newbie", LATE_EVENING - dt.timedelta(minutes=1), "action", "search"))
    after_write, after = answer()
    assert after == [covered]  # the new row only
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"] + 1


def test_a_user_of_earlier_days_first_seen_today_is_not_a_new_user(busy_day):
    before, _ = answer()
    store(event("user000", LATE_EVENING - dt.timedelta(minutes=1)))
    after_write, after = answer()
    assert len(after) == 1 and after[0] > 0  # incremental
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"]
    assert after_write["dau"] != before["dau"]  # today has one more user


def test_another_event_of_a_user_seen_today_adds_only_the_event(busy_day):
    seen = IntradayActiveUser.objects.filter(day=TODAY).order_by("id").first().user_id
    before, _ = answer()
    store(event(seen, LATE_EVENING - dt.timedelta(minutes=1), "conversion"))
    after_write, _ = answer()
    assert after_write == from_raw_events()
    assert after_write["total_events"] == before["total_events"] + 1
    assert (after_write["mau"], after_write["dau"]) == (before["mau"], before["dau"])


def test_a_late_event_for_a_rolled_up_day_changes_the_answer_at_once(busy_day):
    store(event("latecomer", day_start(TODAY - dt.timedelta(days=3)) + dt.timedelta(hours=5)))
    assert DailyRollup.objects.get(day=TODAY - dt.timedelta(days=3)).needs_recompute
    after_write, _ = answer()
    assert after_write == from_raw_events()


def test_a_late_event_folded_into_a_closed_day_changes_the_answer_at_once(busy_day, settings):
    settings.PRODUCT_EVENT_RETENTION_DAYS = 5  # days before 03-06 are closed, their events go
    product_purge(dry_run=False)
    assert not Event.objects.filter(
        occurred_at__lt=day_start(TODAY - dt.timedelta(days=5))
    ).exists()
    before, _ = answer()
    store(event("newbie", LATE_EVENING - dt.timedelta(minutes=2)))
    answer()  # newbie classified as new in the window
    store(event("newbie", day_start(TODAY - dt.timedelta(days=8)) + dt.timedelta(hours=5)))
    assert not DailyRollup.objects.get(day=TODAY - dt.timedelta(days=8)).needs_recompute  # folded
    after_write, _ = answer()
    assert after_write == with_an_empty_cache()
    assert after_write["mau"] == before["mau"] + 1  # newbie once, not twice


def test_a_gdpr_erase_of_a_user_active_today_changes_the_answer_at_once(busy_day, redis_client):
    store(event("newbie", LATE_EVENING - dt.timedelta(minutes=1)))
    before, _ = answer()
    active_today = IntradayActiveUser.objects.filter(day=TODAY).exclude(user_id="newbie")
    user_erase(user_id=active_today.order_by("id").first().user_id)
    user_erase(user_id="newbie")
    after_write, _ = answer()
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"] - 2


def test_a_rollup_recompute_changes_the_answer_at_once(busy_day):
    day = TODAY - dt.timedelta(days=2)
    store(event("solo", day_start(day) + dt.timedelta(hours=9)))  # a late event: day flagged
    daily_rollup_recompute(day=day)
    store(event("solo", LATE_EVENING - dt.timedelta(minutes=1)))
    before, _ = answer()  # solo classified: active on a rolled-up day
    Event.objects.filter(user_id="solo", occurred_at__lt=day_start(TODAY)).delete()
    daily_rollup_recompute(day=day)  # the frozen clock: the same computed_at as before
    after_write, _ = answer()
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"]  # solo now counted from today alone


def test_yesterdays_rollup_moving_it_off_its_intraday_rows(late_evening):
    rng = random.Random(3)
    yesterday = TODAY - dt.timedelta(days=1)
    for back in (3, 2):
        day = TODAY - dt.timedelta(days=back)
        events_store(events=day_events(rng, day, 80), received_at=day_start(day))
    roll_up_days_before(yesterday)
    events_store(events=day_events(rng, yesterday, 80), received_at=day_start(yesterday))
    store(*day_events(rng, TODAY, 120))
    assert IntradayFill.objects.filter(day=yesterday).exists()  # not rolled up yet
    before, _ = answer()
    assert before == from_raw_events()
    daily_rollup_recompute(day=yesterday)
    assert not IntradayFill.objects.filter(day=yesterday).exists()
    answer()  # today is the only raw day now: its classification is cached
    store(event("newbie", LATE_EVENING - dt.timedelta(minutes=1)))
    after_write, after = answer()
    assert after and after[0] > 0
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"] + 1


def test_a_purge_changes_the_answer_at_once(busy_day, settings):
    settings.PRODUCT_EVENT_RETENTION_DAYS = 3
    settings.ROLLUP_RETENTION_DAYS = 6  # rollups and user rows before 03-05 go
    while product_purge(dry_run=False).has_more:
        pass
    after_write, _ = answer()
    assert after_write == with_an_empty_cache()
    assert after_write["unique_days"] == 7  # 03-05 … 03-11


def test_a_rebuild_of_todays_rows_classifies_them_again(busy_day):
    filled_at = IntradayFill.objects.get(day=TODAY).filled_at
    leaving = IntradayActiveUser.objects.filter(day=TODAY).order_by("-id").first().user_id
    Event.objects.filter(user_id=leaving, occurred_at__gte=day_start(TODAY)).delete()
    intraday_usage_rebuild(day=TODAY)
    store(event("newbie", LATE_EVENING - dt.timedelta(minutes=1)))
    # The frozen clock keeps the fill state as it was: the row count tells the rebuild.
    assert IntradayFill.objects.get(day=TODAY).filled_at == filled_at
    after_write, after = answer()
    assert after[-1] == 0  # every row classified again
    assert after_write == from_raw_events()


def test_a_row_committed_after_a_higher_one_is_not_missed(late_evening):
    rng = random.Random(5)
    for back in (2, 1):
        day = TODAY - dt.timedelta(days=back)
        events_store(events=day_events(rng, day, 80), received_at=day_start(day))
    roll_up_days_before(TODAY)
    # A store that took its id first and commits last (two concurrent stores): modelled by
    # an id taken now, before today's other rows, and given to a row of today afterwards.
    held = IntradayActiveUser.objects.create(day=dt.date(2000, 1, 1), user_id="held", events=1)
    store(*day_events(rng, TODAY, 150))
    before, _ = answer()
    assert held.id < today_max_id()
    Event.objects.create(
        event_type="page_view",
        user_id="straggler",
        occurred_at=LATE_EVENING - dt.timedelta(minutes=3),
        received_at=LATE_EVENING,
    )
    IntradayActiveUser.objects.filter(pk=held.pk).update(day=TODAY, user_id="straggler")
    counts, _ = IntradayEventCount.objects.get_or_create(
        day=TODAY, event_type="page_view", feature="", defaults={"events": 0}
    )
    IntradayEventCount.objects.filter(pk=counts.pk).update(events=counts.events + 1)
    after_write, after = answer()
    assert after[-1] == 0  # the covered rows grew by one: every row classified again
    assert after_write == from_raw_events()
    assert after_write["mau"] == before["mau"] + 1
