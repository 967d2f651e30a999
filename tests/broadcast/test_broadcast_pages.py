"""The station pages (SPEC §9.4): admin look, tabs, charts as SVG, empty states."""

from __future__ import annotations

import re

import pytest

from streams.broadcast.demo import seed_broadcast_demo
from streams.broadcast.play_stats import broadcast_stats_refresh
from tests.broadcast.staff_support import make_station, staff_user

pytestmark = pytest.mark.django_db

TABS = ["", "top-songs", "listeners", "requests", "log", "health", "reports/"]


@pytest.fixture
def demo(client):
    seed_broadcast_demo()
    broadcast_stats_refresh()
    client.force_login(staff_user(superuser=True, organizer=None))
    return client


@pytest.mark.parametrize("tab", TABS)
def test_each_tab_is_an_admin_page_with_the_tabs(demo, tab):
    page = demo.get(f"/admin/broadcast/wavelength-fm/{tab}", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="broadcast-tabs"' in html and 'aria-current="page"' in html
    assert "broadcast/broadcast.css" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "no inline script (CSP)"


def test_overview_kpis_and_play_stats_charts(demo):
    html = demo.get("/admin/broadcast/wavelength-fm/", HTTP_ACCEPT="text/html").content.decode()
    for kpi in (
        "listeners_now",
        "peak_today",
        "average_today",
        "tlh_today",
        "plays_today",
        "requests_today",
        "open_alerts",
    ):
        assert f'data-kpi="{kpi}"' in html
    plays = demo.get(
        "/admin/broadcast/wavelength-fm/top-songs", HTTP_ACCEPT="text/html"
    ).content.decode()
    assert plays.count('class="heat-cell"') == 7 * 24
    assert 'id="top_songs"' in plays


def test_listeners_page_refresh_interval_is_a_data_attribute(demo):
    html = demo.get(
        "/admin/broadcast/wavelength-fm/listeners?refresh=1", HTTP_ACCEPT="text/html"
    ).content.decode()
    assert 'data-refresh-seconds="1"' in html
    assert "format=json" in html
    default = demo.get(
        "/admin/broadcast/wavelength-fm/listeners", HTTP_ACCEPT="text/html"
    ).content.decode()
    assert 'data-refresh-seconds="30"' in default


def test_station_index_lists_the_station_and_admin_links_to_it(demo):
    html = demo.get("/admin/broadcast/", HTTP_ACCEPT="text/html").content.decode()
    assert "/admin/broadcast/wavelength-fm/" in html
    index = demo.get("/admin/").content.decode()
    assert 'href="/admin/broadcast/"' in index


def test_empty_station_says_what_to_set_up(client):
    make_station(key="empty-fm")
    client.force_login(staff_user())
    html = client.get(
        "/admin/broadcast/empty-fm/top-songs", HTTP_ACCEPT="text/html"
    ).content.decode()
    assert "broadcast_refresh" in html and "push API" in html
    html = client.get(
        "/admin/broadcast/empty-fm/listeners", HTTP_ACCEPT="text/html"
    ).content.decode()
    assert "No encoder yet" in html
