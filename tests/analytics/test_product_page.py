"""The staff product analytics page at /admin/analytics/product (SPEC §6.5): who may see
it, that it shows the figures of the insight selectors, and its links from the admin."""

from __future__ import annotations

import pytest

from .conftest import at, store

pytestmark = pytest.mark.django_db

URL = "/admin/analytics/product"


@pytest.fixture
def product_dataset(frozen_now):
    # alice: page_view → action (+10 min) → conversion (+1 h): through all three steps.
    # bob: page_view → action (+20 min). carol: conversion only (no step 1).
    store(
        [
            ("page_view", "alice", "pricing", at("2026-03-09", 10)),
            ("action", "alice", "signup", at("2026-03-09", 10, 10)),
            ("conversion", "alice", "checkout", at("2026-03-09", 11, 10)),
            ("page_view", "bob", "pricing", at("2026-03-10", 9)),
            ("action", "bob", "signup", at("2026-03-10", 9, 20)),
            ("conversion", "carol", "checkout", at("2026-03-11", 8)),
        ]
    )
    return frozen_now


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/analytics/product")


def test_non_staff_users_are_sent_to_the_admin_login(client, django_user_model):
    member = django_user_model.objects.create_user("member", "m@example.com", "pw-member-1")
    client.force_login(member)
    assert client.get(URL).status_code == 302


def test_staff_see_the_figures_charts_and_funnel_of_the_form(client, staff_user, product_dataset):
    client.force_login(staff_user)
    response = client.get(URL, {"steps": "page_view:pricing,action:signup,conversion"})
    assert response.status_code == 200
    html = response.content.decode()
    assert response.templates[0].name == "analytics/product.html"
    funnel = response.context["funnel"]["steps"]
    assert [(s["step"], s["users"]) for s in funnel] == [
        ("page_view:pricing", 2),
        ("action:signup", 2),
        ("conversion", 1),
    ]
    # Medians: (10 min + 20 min) / 2 = 15 min, then alice's 1 h.
    assert [s["median_text"] for s in funnel] == ["—", "15m 00s", "1h 00m"]
    assert "<code>page_view:pricing</code>" in html
    # DAU line, feature bars, funnel bars, stickiness histogram (the admin has icon SVGs too).
    assert html.count('role="img"') == 4
    assert 'id="retention-grid"' in html
    assert 'href="/static/analytics/product.css"' in html
    assert "<script>" not in html  # the page's script is a static file
    usage = response.context["usage"]
    # alice, bob, carol and the staff member (their login is a tracked product event too),
    # each active on one day.
    assert (usage["mau"], response.context["stickiness"]["users_by_active_days"]["1"]) == (4, 4)


def test_a_bad_form_field_is_named_and_the_defaults_shown(client, staff_user, product_dataset):
    client.force_login(staff_user)
    response = client.get(URL, {"steps": "page_view", "cohorts": "99"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "steps must be 2 to 10 comma-separated" in html
    assert "cohorts must be a whole number from 1 to 52." in html
    assert [s["step"] for s in response.context["funnel"]["steps"]] == [
        "page_view",
        "action",
        "conversion",
    ]
    assert len(response.context["retention"]["cohorts"]) == 8


def test_the_page_escapes_what_it_is_given(client, staff_user, frozen_now):
    store([("page_view", "mallory", "<script>x</script>", at("2026-03-11", 8))])
    client.force_login(staff_user)
    html = client.get(URL).content.decode()
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_admin_index_and_sidebar_link_to_the_page(client, superuser):
    client.force_login(superuser)
    index = client.get("/admin/").content.decode()
    assert 'class="model-product-analytics"' in index and f'href="{URL}"' in index
    # The sidebar (shown on every admin page but the index) links it, current here.
    page = client.get(URL).content.decode()
    assert f'<a href="{URL}" aria-current="page">Product analytics</a>' in page
    users = client.get("/admin/auth/user/").content.decode()
    assert f'<a href="{URL}">Product analytics</a>' in users


def test_the_page_is_not_shadowed_by_the_admin_catch_all(client, superuser):
    client.force_login(superuser)
    assert client.get(URL).status_code == 200
