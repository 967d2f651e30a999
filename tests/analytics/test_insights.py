"""SPEC §6.5 product insights: ordered funnels, retention cohorts, stickiness, and who may
read them. The clock is frozen at Wed 2026-03-11 12:00 UTC (ISO week 11)."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token

from analytics.insights import funnel, funnel_steps_parse, retention_cohorts, stickiness
from analytics.models import Event
from analytics.rollups import daily_rollup_recompute

from .conftest import USAGE_DATASET, at, store

pytestmark = pytest.mark.django_db

DASH_KEY = "s3cret-dash-key"
PRICING_FUNNEL = "page_view:pricing,action:signup,conversion"


def roll_up_every_past_day(days: int = 40) -> None:
    for offset in range(1, days):
        daily_rollup_recompute(day=dt.date(2026, 3, 11) - dt.timedelta(days=offset))


# --- funnels ---------------------------------------------------------------------------------

# Steps page_view:pricing → action:signup → conversion, window_days 14, days 30
# (window 2026-02-10 .. 2026-03-11):
#   alice  pricing 03-01 10:00, signup +300 s, conversion +86 400 s      → steps 1, 2, 3
#   bob    pricing 03-02 09:00, signup +600 s                            → steps 1, 2
#   carol  signup 03-03 08:00 BEFORE pricing 03-03 09:00, conversion     → step 1 only
#   dave   pricing 02-20, pricing again 03-07, signup 03-08 (16 days after
#          his first pricing in the window: too late), conversion 03-09  → step 1 only
#   frank  pricing 03-04 12:00, signup +86 400 s, conversion +432 000 s  → steps 1, 2, 3
#   erin   page_view:dashboard (not the step's feature), signup, conversion → nothing
#   ""     anonymous pricing, signup, conversion                          → nothing
FUNNEL_DATASET = [
    ("page_view", "alice", "pricing", at("2026-03-01", 10)),
    ("action", "alice", "signup", at("2026-03-01", 10, 5)),
    ("conversion", "alice", "checkout", at("2026-03-02", 10, 5)),
    ("page_view", "bob", "pricing", at("2026-03-02", 9)),
    ("action", "bob", "signup", at("2026-03-02", 9, 10)),
    ("action", "carol", "signup", at("2026-03-03", 8)),
    ("page_view", "carol", "pricing", at("2026-03-03", 9)),
    ("conversion", "carol", "checkout", at("2026-03-03", 10)),
    ("page_view", "dave", "pricing", at("2026-02-20", 12)),
    ("page_view", "dave", "pricing", at("2026-03-07", 12)),
    ("action", "dave", "signup", at("2026-03-08", 12)),
    ("conversion", "dave", "checkout", at("2026-03-09", 12)),
    ("page_view", "frank", "pricing", at("2026-03-04", 12)),
    ("action", "frank", "signup", at("2026-03-05", 12)),
    ("conversion", "frank", "checkout", at("2026-03-10", 12)),
    ("page_view", "erin", "dashboard", at("2026-03-04", 12)),
    ("action", "erin", "signup", at("2026-03-04", 13)),
    ("conversion", "erin", "checkout", at("2026-03-04", 14)),
    ("page_view", "", "pricing", at("2026-03-05", 8)),
    ("action", "", "signup", at("2026-03-05", 9)),
    ("conversion", "", "checkout", at("2026-03-05", 10)),
]

EXPECTED_PRICING_FUNNEL = [
    {
        "step": "page_view:pricing",
        "users": 5,  # alice, bob, carol, dave, frank
        "conversion_from_start": 1.0,
        "conversion_from_previous": 1.0,
        "median_seconds_from_previous": None,
    },
    {
        "step": "action:signup",
        "users": 3,  # alice 300 s, bob 600 s, frank 86 400 s
        "conversion_from_start": 0.6,
        "conversion_from_previous": 0.6,
        "median_seconds_from_previous": 600.0,
    },
    {
        "step": "conversion",
        "users": 2,  # alice 86 400 s, frank 432 000 s after their signup
        "conversion_from_start": 0.4,
        "conversion_from_previous": 0.667,  # 2 / 3
        "median_seconds_from_previous": 259200.0,  # (86 400 + 432 000) / 2
    },
]


@pytest.fixture
def funnel_dataset(frozen_now):
    store(FUNNEL_DATASET)
    return frozen_now


def test_funnel_counts_users_who_did_the_steps_in_order_within_the_window(funnel_dataset):
    steps = funnel_steps_parse(PRICING_FUNNEL)
    assert funnel(steps=steps, window_days=14, days=30) == {
        "ok": True,
        "steps": EXPECTED_PRICING_FUNNEL,
    }


def test_funnel_step_2_before_step_1_does_not_convert(frozen_now):
    store(
        [
            ("action", "carol", "signup", at("2026-03-03", 8)),
            ("page_view", "carol", "pricing", at("2026-03-03", 9)),
        ]
    )
    steps = funnel(steps=funnel_steps_parse("page_view:pricing,action:signup"))["steps"]
    assert [s["users"] for s in steps] == [1, 0]
    assert steps[1]["median_seconds_from_previous"] is None


def test_funnel_step_after_window_days_does_not_count(frozen_now):
    store(
        [
            ("page_view", "dave", "", at("2026-03-01", 12)),
            ("action", "dave", "", at("2026-03-08", 12)),  # 7 days after step 1: in a 7-day window
            ("conversion", "dave", "", at("2026-03-08", 12, 1)),  # 7 days 60 s: outside it
        ]
    )
    steps = funnel(steps=funnel_steps_parse("page_view,action,conversion"), window_days=7)
    assert [s["users"] for s in steps["steps"]] == [1, 1, 0]
    assert steps["steps"][1]["median_seconds_from_previous"] == 7 * 86400.0
    wider = funnel(steps=funnel_steps_parse("page_view,action,conversion"), window_days=8)
    assert [s["users"] for s in wider["steps"]] == [1, 1, 1]


def test_funnel_window_starts_at_the_first_step_1_inside_the_days_window(funnel_dataset):
    # days=7 is 03-05 .. 03-11: dave's first pricing view there is 03-07, so his signup
    # (+1 day) and conversion (+1 day) now count; everyone else's pricing view is earlier.
    steps = funnel(steps=funnel_steps_parse(PRICING_FUNNEL), window_days=14, days=7)["steps"]
    assert [(s["users"], s["median_seconds_from_previous"]) for s in steps] == [
        (1, None),
        (1, 86400.0),
        (1, 86400.0),
    ]


def test_funnel_anonymous_events_never_count(frozen_now):
    store(
        [
            ("page_view", "", "", at("2026-03-05", 8)),
            ("action", "", "", at("2026-03-05", 9)),
        ]
    )
    steps = funnel(steps=funnel_steps_parse("page_view,action"))["steps"]
    assert [s["users"] for s in steps] == [0, 0]
    assert [s["conversion_from_start"] for s in steps] == [0.0, 0.0]


def test_funnel_a_repeated_step_needs_a_second_event(frozen_now):
    store(
        [
            ("page_view", "once", "", at("2026-03-05", 8)),
            ("page_view", "twice", "", at("2026-03-05", 8)),
            ("page_view", "twice", "", at("2026-03-05", 8, 30)),
        ]
    )
    steps = funnel(steps=funnel_steps_parse("page_view,page_view"))["steps"]
    assert [s["users"] for s in steps] == [2, 1]
    assert steps[1]["median_seconds_from_previous"] == 1800.0


def test_funnel_median_of_an_odd_number_of_users_is_the_middle_one(frozen_now):
    rows = []
    for user, gap_minutes in (("u1", 1), ("u2", 10), ("u3", 100)):
        rows += [
            ("page_view", user, "", at("2026-03-05", 8)),
            ("action", user, "", at("2026-03-05", 8) + dt.timedelta(minutes=gap_minutes)),
        ]
    store(rows)
    steps = funnel(steps=funnel_steps_parse("page_view,action"))["steps"]
    assert steps[1]["median_seconds_from_previous"] == 600.0


def test_funnel_steps_parse_reads_event_types_and_features():
    steps = funnel_steps_parse("page_view:pricing,action:sign:up,conversion")
    assert [(s.event_type, s.feature) for s in steps] == [
        ("page_view", "pricing"),
        ("action", "sign:up"),
        ("conversion", None),
    ]


# --- retention -------------------------------------------------------------------------------

# Weekly cohorts, 3 of them: ISO weeks from Mon 02-23, Mon 03-02 and Mon 03-09.
#   u1 first Sun 03-01 23:59 (still the week of 02-23), back Mon 03-02 00:00 and 03-11
#   u2 first Mon 02-23 00:00, back Sun 03-08 23:59 (still week 1)
#   u3 first Wed 02-25, never back
#   → cohort 02-23: 3 users, week 1: u1 + u2 = 2/3 = 0.667, week 2: u1 = 1/3 = 0.333
#   u4 first Mon 03-02 00:00, never back; u5 first Sun 03-08 23:59, back 03-10
#   → cohort 03-02: 2 users, week 1: 1/2 = 0.5
#   u6 first 03-10 → cohort 03-09: 1 user
#   old: first 02-10 (before the first cohort), also 03-03 → in no cohort
#   anonymous events in every week → in no cohort
RETENTION_DATASET = [
    ("page_view", "u1", "", at("2026-03-01", 23, 59)),
    ("page_view", "u1", "", at("2026-03-02", 0, 0)),
    ("page_view", "u1", "", at("2026-03-11", 9)),
    ("page_view", "u2", "", at("2026-02-23", 0, 0)),
    ("page_view", "u2", "", at("2026-03-08", 23, 59)),
    ("page_view", "u3", "", at("2026-02-25")),
    ("page_view", "u4", "", at("2026-03-02", 0, 0)),
    ("page_view", "u5", "", at("2026-03-08", 23, 59)),
    ("action", "u5", "", at("2026-03-10")),
    ("page_view", "u6", "", at("2026-03-10")),
    ("page_view", "old", "", at("2026-02-10")),
    ("page_view", "old", "", at("2026-03-03")),
    ("page_view", "", "", at("2026-02-24")),
    ("page_view", "", "", at("2026-03-04")),
    ("page_view", "", "", at("2026-03-11", 8)),
]

EXPECTED_WEEKLY_COHORTS = [
    {"start": "2026-02-23", "users": 3, "returning": [1.0, 0.667, 0.333]},
    {"start": "2026-03-02", "users": 2, "returning": [1.0, 0.5]},
    {"start": "2026-03-09", "users": 1, "returning": [1.0]},
]


@pytest.fixture
def retention_dataset(frozen_now):
    store(RETENTION_DATASET)
    return frozen_now


def test_weekly_retention_a_3_user_cohort_with_2_back_in_week_1_reads_0_667(retention_dataset):
    assert retention_cohorts(period="week", cohorts=3) == {
        "ok": True,
        "period": "week",
        "cohorts": EXPECTED_WEEKLY_COHORTS,
    }


def test_weekly_retention_is_the_same_from_rollups_even_after_raw_events_are_gone(
    retention_dataset,
):
    roll_up_every_past_day()
    assert retention_cohorts(period="week", cohorts=3)["cohorts"] == EXPECTED_WEEKLY_COHORTS
    # Past days are read from their DailyActiveUser rows: the raw events are not needed.
    Event.objects.filter(occurred_at__lt=at("2026-03-11", 0)).delete()
    assert retention_cohorts(period="week", cohorts=3)["cohorts"] == EXPECTED_WEEKLY_COHORTS


def test_iso_week_boundary_sunday_belongs_to_the_week_before_monday(frozen_now):
    store(
        [
            ("page_view", "sunday", "", at("2026-03-08", 23, 59)),  # ISO week 10
            ("page_view", "monday", "", at("2026-03-09", 0, 0)),  # ISO week 11
        ]
    )
    cohorts = retention_cohorts(period="week", cohorts=2)["cohorts"]
    assert [(c["start"], c["users"]) for c in cohorts] == [("2026-03-02", 1), ("2026-03-09", 1)]


def test_daily_retention_counts_utc_days(retention_dataset):
    # Days 03-09, 03-10, 03-11: u5 and u1 were active before 03-09; only u6 is new (03-10).
    assert retention_cohorts(period="day", cohorts=3)["cohorts"] == [
        {"start": "2026-03-09", "users": 0, "returning": [0.0, 0.0, 0.0]},
        {"start": "2026-03-10", "users": 1, "returning": [1.0, 0.0]},
        {"start": "2026-03-11", "users": 0, "returning": [0.0]},
    ]


# --- stickiness ------------------------------------------------------------------------------

# USAGE_DATASET over 7 days (03-05 .. 03-11): alice 03-05, 03-07, 03-11 (3 days); bob
# 03-05, 03-10, 03-11 (3); carol 03-07, 03-10 (2); dave, erin, frank 1 day each;
# anonymous events not at all. Daily users 2 + 1 + 2 + 3 + 3 = 11 over 5 days with users
# = 2.2 a day; 6 users in the window → dau_mau 2.2 / 6 = 0.367.
EXPECTED_STICKINESS_7_DAYS = {
    "ok": True,
    "days": 7,
    "users_by_active_days": {"1": 3, "2": 1, "3": 2, "4": 0, "5": 0, "6": 0, "7": 0},
    "dau_mau": 0.367,
}


def test_stickiness_counts_users_by_distinct_active_days(frozen_now):
    store(USAGE_DATASET)
    assert stickiness(days=7) == EXPECTED_STICKINESS_7_DAYS


def test_stickiness_is_the_same_from_rollups(frozen_now):
    store(USAGE_DATASET)
    roll_up_every_past_day()
    assert stickiness(days=7) == EXPECTED_STICKINESS_7_DAYS


def test_stickiness_without_events_is_zeros(frozen_now):
    assert stickiness(days=2) == {
        "ok": True,
        "days": 2,
        "users_by_active_days": {"1": 0, "2": 0},
        "dau_mau": 0.0,
    }


# --- HTTP: answers, auth, bad parameters ---------------------------------------------------

INSIGHT_URLS = [
    f"/api/analytics/funnel?steps={PRICING_FUNNEL}",
    "/api/analytics/retention",
    "/api/analytics/stickiness",
]


def test_funnel_api_answers_exactly_the_spec_fields(api_client, funnel_dataset, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get(
        f"/api/analytics/funnel?steps={PRICING_FUNNEL}&window_days=14&days=30",
        HTTP_X_DASH_KEY=DASH_KEY,
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "steps": EXPECTED_PRICING_FUNNEL}


def test_retention_api_answers_the_cohorts(api_client, retention_dataset, settings):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get(
        "/api/analytics/retention?period=week&cohorts=3", HTTP_X_DASH_KEY=DASH_KEY
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "period": "week", "cohorts": EXPECTED_WEEKLY_COHORTS}


def test_retention_api_defaults_to_8_weekly_cohorts(staff_client, retention_dataset):
    body = staff_client.get("/api/analytics/retention").json()
    assert body["period"] == "week"
    assert [c["start"] for c in body["cohorts"]][-3:] == ["2026-02-23", "2026-03-02", "2026-03-09"]
    assert len(body["cohorts"]) == 8


def test_stickiness_api_answers_the_histogram(api_client, frozen_now, settings):
    store(USAGE_DATASET)
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get("/api/analytics/stickiness?days=7", HTTP_X_DASH_KEY=DASH_KEY)
    assert response.status_code == 200
    assert response.json() == EXPECTED_STICKINESS_7_DAYS


@pytest.mark.parametrize("url", INSIGHT_URLS)
def test_insight_api_without_credentials_is_401(api_client, settings, url):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get(url)
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error": "Send X-Dash-Key or sign in as staff."}


@pytest.mark.parametrize("url", INSIGHT_URLS)
def test_insight_api_with_a_wrong_dash_key_is_403(api_client, settings, url):
    settings.ANALYTICS_DASH_KEY = DASH_KEY
    response = api_client.get(url, HTTP_X_DASH_KEY="s3cret-dash-kez")
    assert response.status_code == 403
    assert response.json()["ok"] is False


@pytest.mark.parametrize("url", INSIGHT_URLS)
def test_insight_api_with_any_key_is_403_when_no_key_is_configured(api_client, settings, url):
    settings.ANALYTICS_DASH_KEY = ""
    assert api_client.get(url, HTTP_X_DASH_KEY="").status_code == 403


@pytest.mark.parametrize("url", INSIGHT_URLS)
def test_insight_api_for_staff_token_is_200_and_non_staff_403(
    api_client, django_user_model, staff_user, frozen_now, url
):
    token = Token.objects.create(user=staff_user)
    assert api_client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    member = django_user_model.objects.create_user("member", "m@example.com", "pw-member-1")
    other = Token.objects.create(user=member)
    response = api_client.get(url, HTTP_AUTHORIZATION=f"Token {other.key}")
    assert response.status_code == 403
    assert response.json() == {"ok": False, "error": "Staff only."}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "steps must be"),
        ("steps=", "steps must be"),
        ("steps=page_view", "steps must be"),
        ("steps=" + ",".join(["page_view"] * 11), "steps must be"),
        ("steps=page_view:,action", "steps must be"),
        ("steps=,action", "steps must be"),
        ("steps=page_view,act%00ion", "steps must be"),
        ("steps=page_view,<script>alert(1)</script>:%0A", "steps must be"),
        ("steps=" + "x" * 3000 + ",action", "steps must be"),
        (f"steps={PRICING_FUNNEL}&window_days=0", "window_days must be"),
        (f"steps={PRICING_FUNNEL}&window_days=91", "window_days must be"),
        (f"steps={PRICING_FUNNEL}&window_days=1e3", "window_days must be"),
        (f"steps={PRICING_FUNNEL}&days=366", "days must be"),
        (f"steps={PRICING_FUNNEL}&days=-1", "days must be"),
    ],
)
def test_funnel_bad_parameters_are_400_without_echoing_them(staff_client, query, message):
    response = staff_client.get(f"/api/analytics/funnel?{query}")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"ok", "error"} and body["ok"] is False
    assert body["error"].startswith(message)
    assert "script" not in body["error"] and "xxx" not in body["error"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=month", "period must be day or week."),
        ("period=<b>", "period must be day or week."),
        ("cohorts=0", "cohorts must be a whole number from 1 to 52."),
        ("cohorts=53", "cohorts must be a whole number from 1 to 52."),
        ("cohorts=", "cohorts must be a whole number from 1 to 52."),
        ("cohorts=99999999999999999999", "cohorts must be a whole number from 1 to 52."),
    ],
)
def test_retention_bad_parameters_are_400(staff_client, query, message):
    response = staff_client.get(f"/api/analytics/retention?{query}")
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": message}


@pytest.mark.parametrize("days", ["0", "366", "abc", "", "7.5"])
def test_stickiness_bad_days_is_400(staff_client, days):
    response = staff_client.get(f"/api/analytics/stickiness?days={days}")
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "days must be a whole number from 1 to 365."}
