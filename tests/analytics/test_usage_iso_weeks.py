"""SPEC §6.4: wau and unique_weeks count ISO weeks, which run Monday to Sunday.

The main usage dataset has no Sunday or Monday events, so a week that started on
Sunday would give it the same figures. Here a Sunday and the Monday after it fall in
two weeks, and a Monday and the Sunday after it in one; both from raw events and
from rollups, read over GET /api/analytics/usage.
"""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.rollups import daily_rollup_recompute

from .conftest import at, store

pytestmark = pytest.mark.django_db

DASH_KEY = "s3cret-dash-key"
# FROZEN_NOW is Wed 2026-03-11. ISO week 10: Mon 2026-03-02 .. Sun 2026-03-08;
# ISO week 11: Mon 2026-03-09 .. Sun 2026-03-15.
SUNDAY_WEEK_10 = "2026-03-08"
MONDAY_WEEK_11 = "2026-03-09"
MONDAY_WEEK_10 = "2026-03-02"


@pytest.fixture
def dash_client(api_client, settings, frozen_now):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    return api_client


def usage(client, days: int = 14) -> dict:
    response = client.get(f"/api/analytics/usage?days={days}", HTTP_X_DASH_KEY=DASH_KEY)
    assert response.status_code == 200, response.content
    return response.json()


def roll_up_days_before_today() -> None:
    for offset in range(1, 14):
        daily_rollup_recompute(day=dt.date(2026, 3, 11) - dt.timedelta(days=offset))


@pytest.fixture
def sunday_then_monday():
    # Sunday of week 10: alice, bob. Monday of week 11: bob, carol.
    store(
        [
            ("page_view", "alice", "dashboard", at(SUNDAY_WEEK_10, 10)),
            ("page_view", "bob", "dashboard", at(SUNDAY_WEEK_10, 23, 59)),
            ("page_view", "bob", "dashboard", at(MONDAY_WEEK_11, 0, 0)),
            ("action", "carol", "search", at(MONDAY_WEEK_11, 9)),
        ]
    )


@pytest.fixture
def monday_then_sunday():
    # Monday and Sunday of week 10: dave on both, erin on Sunday only.
    store(
        [
            ("page_view", "dave", "dashboard", at(MONDAY_WEEK_10, 0, 0)),
            ("page_view", "dave", "dashboard", at(SUNDAY_WEEK_10, 23, 59)),
            ("page_view", "erin", "dashboard", at(SUNDAY_WEEK_10, 12)),
        ]
    )


def test_a_sunday_and_the_monday_after_it_are_two_iso_weeks(dash_client, sunday_then_monday):
    body = usage(dash_client)
    assert body["unique_days"] == 2
    assert body["unique_weeks"] == 2  # a week from Sunday would make this 1
    assert body["wau"] == 2.0  # week 10: alice, bob = 2; week 11: bob, carol = 2 → (2 + 2) / 2
    assert body["mau"] == 3
    assert body["dau"] == 2.0


def test_a_sunday_and_the_monday_after_it_are_two_iso_weeks_from_rollups(
    dash_client, sunday_then_monday
):
    roll_up_days_before_today()
    body = usage(dash_client)
    assert body["rolled_up_days"] == 13
    assert (body["unique_weeks"], body["wau"], body["mau"]) == (2, 2.0, 3)


def test_a_monday_and_the_sunday_after_it_are_one_iso_week(dash_client, monday_then_sunday):
    body = usage(dash_client)
    assert body["unique_days"] == 2
    assert body["unique_weeks"] == 1  # a week from Sunday would split them: 2
    assert body["wau"] == 2.0  # week 10: dave, erin
    assert body["dau"] == 1.5  # (1 + 2) / 2


def test_a_monday_and_the_sunday_after_it_are_one_iso_week_from_rollups(
    dash_client, monday_then_sunday
):
    roll_up_days_before_today()
    body = usage(dash_client)
    assert body["rolled_up_days"] == 13
    assert (body["unique_weeks"], body["wau"], body["mau"]) == (1, 2.0, 2)
