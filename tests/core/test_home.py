"""The first things a new user sees: the home page, the branded admin, the favicon."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_home_page_names_the_product_and_links_every_part(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>EchoNest Analytics</h1>" in page
    for href in (
        "/admin/analytics/streams",
        "/admin/stats",
        "/admin/",
        "/streams/launch-party/watch",
        "/analytics/demo",
        "/api/docs/",
    ):
        assert f'href="{href}"' in page, href


def test_admin_is_branded_and_its_view_site_link_leads_home(client, superuser):
    client.force_login(superuser)
    page = client.get("/admin/").content.decode()
    assert "EchoNest Analytics" in page
    assert "Django administration" not in page
    assert '<a href="/">View site</a>' in page
    assert 'rel="icon"' in page


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("echonest/favicon.svg")


def test_the_dashboards_are_in_the_admin_sidebar(client, superuser):
    client.force_login(superuser)
    page = client.get("/admin/streams/stream/").content.decode()
    sidebar = page[page.index('id="nav-sidebar"') :]
    assert 'href="/admin/analytics/streams"' in sidebar
    assert 'href="/admin/stats"' in sidebar
