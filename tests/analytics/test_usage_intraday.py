"""Today's usage from the intraday rows kept by ingestion: the same answers as raw events.

SPEC §6.4 / §11: `/api/analytics/usage` answers at 23:59 as fast as at 00:20, so today is
read from rows ingestion keeps current (`IntradayFill`, `IntradayEventCount`,
`IntradayActiveUser`) instead of today's raw events. Every figure must equal the one
counted from raw events; a retried batch, late events and a GDPR erasure must keep it so.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from analytics.gdpr import user_erase
from analytics.models import Event, IntradayActiveUser, IntradayEventCount, IntradayFill
from analytics.rollups import daily_rollup_recompute, intraday_usage_rebuild
from analytics.selectors import usage_summary
from analytics.services import NewEvent, events_store

pytestmark = pytest.mark.django_db

LATE_EVENING = dt.datetime(2026, 3, 11, 23, 59, tzinfo=dt.UTC)
TODAY = LATE_EVENING.date()
TYPES = ["page_view", "action", "conversion", "song_add"]
FEATURES = ["dashboard", "search", "player", ""]


@pytest.fixture
def late_evening(monkeypatch) -> dt.datetime:
    monkeypatch.setattr("django.utils.timezone.now", lambda: LATE_EVENING)
    return LATE_EVENING


def _day_events(rng: random.Random, day: dt.date, n: int, until_minute: int) -> list[NewEvent]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return [
        NewEvent(
            uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            event_type=rng.choice(TYPES),
            user_id="" if rng.random() < 0.1 else f"user{rng.randrange(60):03d}",
            feature=rng.choice(FEATURES),
            occurred_at=start + dt.timedelta(seconds=rng.uniform(0, until_minute * 60)),
        )
        for _ in range(n)
    ]


def _store_in_batches(events: list[NewEvent], received_at: dt.datetime) -> None:
    for i in range(0, len(events), 100):
        events_store(events=events[i : i + 100], received_at=received_at)


def _raw_answer(now: dt.datetime) -> dict:
    """The same summary with the intraday rows forgotten: every raw day from raw events."""
    IntradayFill.objects.all().delete()
    IntradayEventCount.objects.all().delete()
    IntradayActiveUser.objects.all().delete()
    return usage_summary(days=30, now=now)


def _figures(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "ts"}


def test_usage_at_2359_from_intraday_rows_equals_raw_events(late_evening):
    rng = random.Random(11)
    # Three earlier days, rolled up, then a busy today stored the real way in batches.
    for back in (3, 2, 1):
        day = TODAY - dt.timedelta(days=back)
        events_store(
            events=_day_events(rng, day, 300, 24 * 60),
            received_at=dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC),
        )
    today_events = _day_events(rng, TODAY, 2500, 23 * 60 + 59)
    today_events.sort(key=lambda e: e.occurred_at)
    _store_in_batches(today_events, LATE_EVENING)
    # A retried batch stores nothing twice, and counts nothing twice.
    _store_in_batches(today_events[:300], LATE_EVENING)
    for back in (3, 2):
        daily_rollup_recompute(day=TODAY - dt.timedelta(days=back))
    # Yesterday is not rolled up yet (its rollup runs at 03:15): it is read from its own
    # intraday rows, and late events for it arrive today.
    _store_in_batches(_day_events(rng, TODAY - dt.timedelta(days=1), 120, 24 * 60), LATE_EVENING)

    assert (
        Event.objects.filter(occurred_at__gte=LATE_EVENING.replace(hour=0, minute=0)).count()
        == 2500
    )
    assert set(IntradayFill.objects.values_list("day", flat=True)) == {
        TODAY - dt.timedelta(days=1),
        TODAY,
    }
    assert (
        sum(IntradayEventCount.objects.filter(day=TODAY).values_list("events", flat=True)) == 2500
    )

    answer = usage_summary(days=30, now=LATE_EVENING)
    assert answer["total_events"] == 300 * 3 + 120 + 2500
    assert _figures(answer) == _figures(_raw_answer(LATE_EVENING))


def test_first_store_of_the_day_builds_from_events_already_there(late_evening):
    # Events loaded without the store path (a bulk import): the first store of the day
    # builds today's rows from every raw event of today, its own batch included.
    Event.objects.bulk_create(
        [
            Event(
                event_type="page_view",
                user_id="bulk",
                feature="dashboard",
                occurred_at=LATE_EVENING - dt.timedelta(hours=5),
                received_at=LATE_EVENING,
            )
            for _ in range(4)
        ]
    )
    events_store(
        events=[
            NewEvent(
                uuid=uuid.uuid4(),
                event_type="action",
                user_id="alice",
                feature="search",
                occurred_at=LATE_EVENING,
            )
        ],
        received_at=LATE_EVENING,
    )
    assert dict(
        IntradayEventCount.objects.filter(day=TODAY).values_list("event_type", "events")
    ) == {
        "page_view": 4,
        "action": 1,
    }
    assert sorted(
        IntradayActiveUser.objects.filter(day=TODAY).values_list("user_id", "events")
    ) == [
        ("alice", 1),
        ("bulk", 4),
    ]
    answer = usage_summary(days=30, now=LATE_EVENING)
    assert (answer["total_events"], answer["mau"], answer["dau"]) == (5, 2, 2.0)


def test_gdpr_erase_removes_the_users_intraday_contributions(late_evening):
    rng = random.Random(5)
    events = _day_events(rng, TODAY, 400, 23 * 60)
    events += [
        NewEvent(
            uuid=uuid.uuid4(),
            event_type="conversion",
            user_id="erin",
            feature="checkout",
            occurred_at=LATE_EVENING - dt.timedelta(minutes=m),
        )
        for m in range(1, 8)
    ]
    _store_in_batches(events, LATE_EVENING)
    before = usage_summary(days=30, now=LATE_EVENING)

    user_erase(user_id="erin")

    assert not IntradayActiveUser.objects.filter(user_id="erin").exists()
    assert not IntradayEventCount.objects.filter(feature="checkout").exists()
    after = usage_summary(days=30, now=LATE_EVENING)
    assert after["total_events"] == before["total_events"] - 7
    assert after["mau"] == before["mau"] - 1
    assert "checkout" not in after["feature_usage"]
    assert _figures(after) == _figures(_raw_answer(LATE_EVENING))


def test_rollup_of_a_day_drops_its_intraday_rows(late_evening):
    yesterday = TODAY - dt.timedelta(days=1)
    evening = dt.datetime.combine(yesterday, dt.time(22), tzinfo=dt.UTC)
    events_store(
        events=[
            NewEvent(
                uuid=uuid.uuid4(),
                event_type="page_view",
                user_id="bob",
                feature="dashboard",
                occurred_at=evening,
            )
        ],
        received_at=evening,
    )
    assert IntradayFill.objects.filter(day=yesterday).exists()
    daily_rollup_recompute(day=yesterday)
    assert not IntradayFill.objects.filter(day=yesterday).exists()
    assert not IntradayEventCount.objects.filter(day=yesterday).exists()
    assert not IntradayActiveUser.objects.filter(day=yesterday).exists()
    assert usage_summary(days=30, now=LATE_EVENING)["total_events"] == 1


def test_intraday_rebuild_is_idempotent(late_evening):
    rng = random.Random(3)
    _store_in_batches(_day_events(rng, TODAY, 250, 23 * 60), LATE_EVENING)
    rows = sorted(IntradayEventCount.objects.values_list("event_type", "feature", "events"))
    users = sorted(IntradayActiveUser.objects.values_list("user_id", "events"))
    intraday_usage_rebuild(day=TODAY)
    intraday_usage_rebuild(day=TODAY)
    assert sorted(IntradayEventCount.objects.values_list("event_type", "feature", "events")) == rows
    assert sorted(IntradayActiveUser.objects.values_list("user_id", "events")) == users
