"""SPEC §5.5/§6.3: the /admin/stats staff page — who sees it and what it shows."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics import live_counters

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 11)


@pytest.fixture
def live_activity(frozen_now, redis_client):
    r = redis_client
    for _ in range(4):
        live_counters.track(r, "song_add", "dylan@gmail.com", day=TODAY)
    live_counters.track(r, "song_add", "kurt@gmail.com", day=TODAY)
    for _ in range(3):
        live_counters.track(r, "vote", "kurt@gmail.com", day=TODAY)
    live_counters.track(r, "jam", "kurt@gmail.com", day=TODAY - dt.timedelta(days=2))
    live_counters.track(r, "airhorn", "dylan@gmail.com", day=TODAY)
    live_counters.track(r, "signup", "newbie@example.com", day=TODAY - dt.timedelta(days=1))
    live_counters.track(r, "ws_connect", "dylan@gmail.com", day=TODAY)
    live_counters.track(r, "bender_fill", day=TODAY)
    live_counters.track(r, "login", "old@example.com", day=TODAY - dt.timedelta(days=6))


def test_superuser_sees_todays_figures_dau_bars_top_users_signups_and_known_users(
    client, superuser, live_activity
):
    client.force_login(superuser)
    response = client.get("/admin/stats")
    assert response.status_code == 200
    html = response.content.decode()
    context = response.context
    glance = {card["event_type"]: card["value"] for card in context["glance"]}
    assert glance == {"dau": 2, "song_add": 5, "vote": 3, "airhorn": 1, "signup": 0}
    assert context["other_events"] == [("bender_fill", 1), ("ws_connect", 1)]
    assert [(bar["day"].isoformat(), bar["users"]) for bar in context["dau_bars"]] == [
        ("2026-03-05", 1),
        ("2026-03-06", 0),
        ("2026-03-07", 0),
        ("2026-03-08", 0),
        ("2026-03-09", 1),
        ("2026-03-10", 1),
        ("2026-03-11", 2),
    ]
    assert [bar["percent"] for bar in context["dau_bars"]] == [50, 0, 0, 0, 50, 50, 100]
    assert [(row["email"], row["figures"]) for row in context["top_users"]] == [
        ("kurt@gmail.com", [1, 3, 1]),
        ("dylan@gmail.com", [4, 0, 0]),
    ]
    assert context["known_users"] == 4  # dylan, kurt, newbie, old
    # And the HTML carries them: figures, CSS bars, signups with dates, admin look.
    assert 'data-event="song_add"><span class="figure">5</span>' in html
    assert 'class="bar" data-height="100"' in html
    assert "<td>newbie@example.com</td><td>2026-03-10</td>" in html
    assert "ws_connect" in html and "bender_fill" in html
    assert 'data-event="known_users"><span class="figure">4</span>' in html
    assert "Django administration" in html or 'id="site-name"' in html


def test_staff_listed_in_echonest_admin_emails_may_see_the_page(
    client, staff_user, settings, live_activity
):
    settings.ECHONEST_ADMIN_EMAILS = ["staffer@example.com"]
    client.force_login(staff_user)
    assert client.get("/admin/stats").status_code == 200


def test_staff_not_listed_is_redirected_away_to_the_admin_index(client, staff_user, settings):
    settings.ECHONEST_ADMIN_EMAILS = ["someone-else@example.com"]
    client.force_login(staff_user)
    response = client.get("/admin/stats")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get("/admin/stats")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/stats")


def test_a_listed_email_without_staff_status_is_still_refused(client, django_user_model, settings):
    settings.ECHONEST_ADMIN_EMAILS = ["fan@example.com"]
    fan = django_user_model.objects.create_user("fan", "fan@example.com", "pw-fan-12345")
    client.force_login(fan)
    assert client.get("/admin/stats").status_code == 302


def test_the_page_survives_a_redis_outage(client, superuser, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    from echonest_analytics.redis import get_redis

    get_redis.cache_clear()
    client.force_login(superuser)
    response = client.get("/admin/stats")
    assert response.status_code == 200
    assert b"live counters (Redis) are unavailable" in response.content


def test_the_admin_index_links_to_the_stats_page_for_those_allowed(client, superuser, staff_user):
    client.force_login(superuser)
    index = client.get("/admin/")
    assert b'id="analytics-dashboards"' in index.content
    assert b'href="/admin/stats"' in index.content
    client.force_login(staff_user)
    assert b'href="/admin/stats"' not in client.get("/admin/").content
