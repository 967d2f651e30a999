"""The usage API caches the distinct users of the window's rolled-up days (SPEC §11).

The cache key names the exact state of every rollup row the figures come from, so any
write that changes them (a recompute, a closed-day fold-in, a GDPR erase, a purge) gives
the very next request a new key: the answer changes at once, never a stale one. Real
database and cache (LocMem or Redis, whichever the setup configures); no mocks.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.gdpr import user_erase
from analytics.models import DailyActiveUser, DailyRollup, Event
from analytics.retention import product_purge
from analytics.rollups import daily_rollup_recompute
from analytics.selectors import usage_summary

from .conftest import USAGE_DATASET, at, store
from .test_usage import EXPECTED_14_DAYS, figures

pytestmark = pytest.mark.django_db

FROZEN_TODAY = dt.date(2026, 3, 11)


@pytest.fixture
def rolled_dataset(frozen_now):
    store(USAGE_DATASET)
    for offset in range(1, 25):
        daily_rollup_recompute(day=FROZEN_TODAY - dt.timedelta(days=offset))
    return frozen_now


def uncached(days: int = 14) -> dict:
    cache.clear()
    return figures(usage_summary(days=days))


def dau_queries(captured) -> int:
    table = DailyActiveUser._meta.db_table
    return sum(1 for q in captured if table in q["sql"])


def test_a_repeated_request_reuses_the_rolled_up_users_and_answers_the_same(rolled_dataset):
    with CaptureQueriesContext(connection) as first:
        cold = usage_summary(days=14)
    with CaptureQueriesContext(connection) as second:
        warm = usage_summary(days=14)
    assert figures(cold) == figures(warm) == EXPECTED_14_DAYS
    # Cold: the distinct-user pass over the window's rows; warm: none (today's users are
    # looked up in UserActivity instead).
    assert dau_queries(first.captured_queries) == 1
    assert dau_queries(second.captured_queries) == 0


def test_a_rollup_recompute_changes_the_answer_at_once(rolled_dataset):
    assert figures(usage_summary(days=14)) == EXPECTED_14_DAYS  # cache filled
    # frank's only event goes; the day is recomputed (same frozen computed_at).
    Event.objects.filter(user_id="frank").delete()
    daily_rollup_recompute(day=dt.date(2026, 3, 6))
    after = figures(usage_summary(days=14))
    assert (after["mau"], after["wau"], after["total_events"]) == (5, 4.0, 14)
    assert after == uncached()


def test_a_late_event_folded_into_a_closed_day_changes_the_answer_at_once(rolled_dataset, settings):
    settings.PRODUCT_EVENT_RETENTION_DAYS = 3  # days before 2026-03-08 are closed
    product_purge(dry_run=False)
    assert not Event.objects.filter(occurred_at__lt=at("2026-03-08", 0)).exists()
    assert figures(usage_summary(days=14)) == EXPECTED_14_DAYS  # cache filled
    store([("page_view", "zoe", "search", at("2026-03-06", 15))])
    assert DailyRollup.objects.get(day="2026-03-06").needs_recompute is False  # folded in
    after = figures(usage_summary(days=14))
    assert (after["mau"], after["wau"], after["total_events"]) == (7, 5.0, 16)
    assert after == uncached()


def test_a_gdpr_erase_changes_the_answer_at_once(rolled_dataset, redis_client):
    assert figures(usage_summary(days=14)) == EXPECTED_14_DAYS  # cache filled
    user_erase(user_id="frank")
    after = figures(usage_summary(days=14))
    assert (after["mau"], after["total_events"]) == (5, 14)
    assert after == uncached()


def test_a_gdpr_erase_on_a_closed_day_changes_the_answer_at_once(
    rolled_dataset, redis_client, settings
):
    settings.PRODUCT_EVENT_RETENTION_DAYS = 3
    product_purge(dry_run=False)
    assert figures(usage_summary(days=14)) == EXPECTED_14_DAYS  # cache filled
    user_erase(user_id="frank")  # 2026-03-06 is closed: only frank's user row goes
    after = figures(usage_summary(days=14))
    assert after["mau"] == 5
    assert after == uncached()


def test_a_purge_changes_the_answer_at_once(rolled_dataset, settings):
    assert figures(usage_summary(days=14)) == EXPECTED_14_DAYS  # cache filled
    settings.PRODUCT_EVENT_RETENTION_DAYS = 3
    settings.ROLLUP_RETENTION_DAYS = 4  # rollups and user rows before 2026-03-07 go
    while product_purge(dry_run=False).has_more:
        pass
    assert not DailyActiveUser.objects.filter(day__lt="2026-03-07").exists()
    after = figures(usage_summary(days=14))
    # 2026-03-05 (alice, bob) and 2026-03-06 (frank) are gone: frank no longer counts.
    assert (after["mau"], after["unique_days"], after["total_events"]) == (5, 3, 11)
    assert after == uncached()
