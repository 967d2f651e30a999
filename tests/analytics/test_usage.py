"""SPEC §5.4/§6.4: usage figures, from raw events and from rollups, and who may read them."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token

from analytics.models import DailyActiveUser, DailyRollup
from analytics.rollups import daily_rollup_recompute
from analytics.selectors import usage_summary

from .conftest import USAGE_DATASET, at, store

pytestmark = pytest.mark.django_db

DASH_KEY = "s3cret-dash-key"

# The dataset's days with data in a 14-day window ending Wed 2026-03-11 (ISO weeks 10 and 11):
#   03-05 alice, bob | 03-06 frank | 03-07 alice, carol (+anonymous) | 03-10 bob, dave, carol
#   (+anonymous) | 03-11 alice, erin, bob
EXPECTED_14_DAYS = {
    "period_days": 14,
    "dau": 2.2,  # (2 + 1 + 2 + 3 + 3) / 5 days with data
    # week 10: alice, bob, frank, carol = 4; week 11: bob, dave, carol, alice, erin = 5
    "wau": 4.5,  # (4 + 5) / 2
    "mau": 6,  # alice, bob, carol, dave, erin, frank (gina is before the window)
    "feature_usage": {"dashboard": 7, "checkout": 2, "player": 2, "search": 2, "settings": 1},
    "funnel_steps": {"page_view": 9, "action": 4, "conversion": 2},
    "total_events": 15,
    "unique_days": 5,
    "unique_weeks": 2,
}


def figures(summary: dict) -> dict:
    return {key: summary[key] for key in EXPECTED_14_DAYS}


@pytest.fixture
def usage_dataset(frozen_now):
    store(USAGE_DATASET)
    return frozen_now


def roll_up_every_past_day():
    for offset in range(1, 25):
        daily_rollup_recompute(day=dt.date(2026, 3, 11) - dt.timedelta(days=offset))


def test_usage_figures_for_a_dataset_spanning_two_iso_weeks_from_raw_events(usage_dataset):
    summary = usage_summary(days=14)
    assert figures(summary) == EXPECTED_14_DAYS
    assert summary["rolled_up_days"] == 0
    assert (summary["from"], summary["to"]) == ("2026-02-26", "2026-03-11")
    assert summary["ts"] == "2026-03-11T12:00:00Z"
    assert list(summary["feature_usage"]) == [
        "dashboard",
        "checkout",
        "player",
        "search",
        "settings",
    ]


def test_usage_figures_are_the_same_when_past_days_come_from_rollups(usage_dataset):
    raw = usage_summary(days=14)
    roll_up_every_past_day()
    rolled = usage_summary(days=14)
    assert rolled["rolled_up_days"] == 13  # every day of the window except today
    assert figures(rolled) == figures(raw) == EXPECTED_14_DAYS
    assert DailyActiveUser.objects.filter(day="2026-03-10").count() == 3


def test_one_day_window_is_today_only(usage_dataset):
    roll_up_every_past_day()
    summary = usage_summary(days=1)
    assert (summary["dau"], summary["wau"], summary["mau"]) == (3.0, 3.0, 3)
    assert summary["total_events"] == 4
    assert summary["funnel_steps"] == {"page_view": 3, "action": 0, "conversion": 1}
    assert (summary["unique_days"], summary["unique_weeks"]) == (1, 1)


def test_a_window_reaching_back_to_an_older_day_counts_it(usage_dataset):
    summary = usage_summary(days=20)  # 2026-02-20 .. 2026-03-11 includes gina
    assert summary["mau"] == 7
    assert summary["unique_days"] == 6
    assert summary["unique_weeks"] == 3  # weeks 8, 10, 11
    assert summary["dau"] == 2.0  # (1 + 2 + 1 + 2 + 3 + 3) / 6
    assert summary["wau"] == 3.3  # (1 + 4 + 5) / 3


def test_no_events_gives_zeros(frozen_now):
    summary = usage_summary(days=30)
    assert figures(summary) | {"period_days": 30} == {
        "period_days": 30,
        "dau": 0.0,
        "wau": 0.0,
        "mau": 0,
        "feature_usage": {},
        "funnel_steps": {"page_view": 0, "action": 0, "conversion": 0},
        "total_events": 0,
        "unique_days": 0,
        "unique_weeks": 0,
    }


def test_a_late_event_on_a_rolled_up_day_counts_at_once_and_after_the_next_rollup(usage_dataset):
    roll_up_every_past_day()
    store([("page_view", "zoe", "dashboard", at("2026-03-06", 15))])
    assert DailyRollup.objects.get(day="2026-03-06").needs_recompute is True
    late = usage_summary(days=14)
    assert (late["mau"], late["total_events"], late["rolled_up_days"]) == (7, 16, 12)
    daily_rollup_recompute(day=dt.date(2026, 3, 6))
    again = usage_summary(days=14)
    assert figures(again) == figures(late)
    assert again["rolled_up_days"] == 13


def test_usage_api_with_the_right_dash_key_answers_the_figures(api_client, usage_dataset, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get("/api/analytics/usage?days=14", HTTP_X_DASH_KEY=DASH_KEY)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert figures(body) == EXPECTED_14_DAYS


def test_usage_api_defaults_to_30_days(api_client, usage_dataset, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    body = api_client.get("/api/analytics/usage", HTTP_X_DASH_KEY=DASH_KEY).json()
    assert body["period_days"] == 30
    assert body["mau"] == 7


def test_usage_api_with_a_wrong_dash_key_is_403(api_client, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get("/api/analytics/usage", HTTP_X_DASH_KEY="s3cret-dash-kez")
    assert response.status_code == 403
    assert response.json()["ok"] is False


def test_usage_api_with_any_key_is_403_when_no_key_is_configured(api_client, settings):
    settings.ANALYTICS_DASH_KEY = ""
    assert api_client.get("/api/analytics/usage", HTTP_X_DASH_KEY="").status_code == 403


def test_usage_api_without_credentials_is_401(api_client, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get("/api/analytics/usage")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error": "Send X-Dash-Key or sign in as staff."}


def test_usage_api_for_staff_session_and_token_is_200_and_non_staff_403(
    client, api_client, staff_user, django_user_model, frozen_now
):
    client.force_login(staff_user)
    assert client.get("/api/analytics/usage").status_code == 200
    token = Token.objects.create(user=staff_user)
    assert (
        api_client.get("/api/analytics/usage", HTTP_AUTHORIZATION=f"Token {token.key}").status_code
        == 200
    )
    member = django_user_model.objects.create_user("member", "m@example.com", "pw-member-1")
    client.force_login(member)
    assert client.get("/api/analytics/usage").status_code == 403


@pytest.mark.parametrize("days", ["0", "366", "-1", "abc", "1.5", "", "99999999999999999999"])
def test_days_outside_1_to_365_is_400(staff_client, days):
    response = staff_client.get(f"/api/analytics/usage?days={days}")
    assert response.status_code == 400
    assert response.json()["ok"] is False


@pytest.mark.parametrize("days", ["1", "365"])
def test_days_at_the_bounds_is_200(staff_client, days):
    response = staff_client.get(f"/api/analytics/usage?days={days}")
    assert response.status_code == 200
    assert response.json()["period_days"] == int(days)
