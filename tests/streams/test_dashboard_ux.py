"""The staff stream pages for a new user (issue "The first five minutes"): date presets,
the change against the previous period on every KPI card, each figure's definition,
one unit style on the page, the summary, the stream page and the CSV, and filters that
keep the form when they are wrong.

The traffic, sent over HTTP like a player does and aggregated as the 5-minute job would
(heartbeat interval 15 s), on one stream ("Launch party", organizer Nightjar Records):

- DAY_BEFORE (the previous period of a one-day range on DAY): c-1 and c-4 watch 60 s
  each, overlapping → 2 viewers, 2 sessions, 120 s, peak 2, no buffering, no errors,
  8 events.
- DAY: c-1 60 s; c-2 plays 20 s, buffers 5 s, plays 35 s (60 s) with one error; c-3
  60 s; all overlapping → 3 viewers, 3 sessions, 180 s, 60 s per viewer, peak 3,
  buffer 5/180 = 2.8 %, errors 1/3 = 33.3 %, 4 + 7 + 4 = 15 events.

Against the previous period: viewers, sessions, watch time and peak +50.0 % (2 → 3,
120 s → 180 s), average 0.0 % (60 s both), buffer ratio and error rate "—" (zero
before), events +87.5 % (8 → 15), streams 0.0 % (1 both).
"""

from __future__ import annotations

import csv
import html as html_text
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from django.utils.html import escape

from echonest_analytics.renderers import csv_cell
from streams.aggregation import stream_stats_recompute
from streams.charts import count_text
from streams.dashboard import METRIC_DEFINITIONS, change, preset_range, previous_period

from .conftest import T0, ev, heartbeats

LIST = "/admin/analytics/streams"
SUMMARY = "/admin/analytics/streams/summary"
DETAIL = "/admin/analytics/streams/launch-party"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DAY = T0.date()
DAY_BEFORE = DAY - timedelta(days=1)
ONE_DAY = {"from": DAY.isoformat(), "to": DAY.isoformat()}


@pytest.fixture
def browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def two_days(stream, send_batch):
    before = T0 - timedelta(days=1)
    send_batch("c-1", heartbeats(0, 15, 30, 45, base=before))
    send_batch("c-4", heartbeats(0, 15, 30, 45, base=before))
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    send_batch(
        "c-2",
        [
            ev("play", 0),
            ev("heartbeat", 15),
            ev("buffer_start", 20),
            ev("buffer_end", 25),
            ev("heartbeat", 45),
            ev("error", 50, extra={"code": "NETWORK"}),
            ev("heartbeat", 60),
        ],
    )
    send_batch("c-3", heartbeats(0, 15, 30, 45))
    assert stream_stats_recompute().ran


def page(client: Client, path: str, status: int = 200, **params) -> str:
    response = client.get(path, params, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def cards(html: str) -> dict[str, dict[str, str]]:
    """data-kpi → its value, its change and its hover definition."""
    found = {}
    for match in re.finditer(
        r'<div class="kpi" title="([^"]*)" data-kpi="(\w+)"><span class="kpi-label">[^<]*</span>'
        r'<span class="kpi-value"[^>]*>([^<]*)</span>\s*(?:<span class="kpi-change is-(\w+)" '
        r'data-change="([^"]*)")?',
        html,
    ):
        definition, name, value, direction, delta = match.groups()
        found[name] = {"value": value, "change": delta, "direction": direction, "title": definition}
    return found


# --- Presets and the previous period ------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "start", "end"),
    [
        ("today", date(2026, 11, 21), date(2026, 11, 21)),
        ("7d", date(2026, 11, 15), date(2026, 11, 21)),
        ("30d", date(2026, 10, 23), date(2026, 11, 21)),
        ("mtd", date(2026, 11, 1), date(2026, 11, 21)),
    ],
)
def test_presets_end_today_and_go_back_their_length(preset, start, end):
    assert preset_range(preset, today=date(2026, 11, 21)) == (start, end)


def test_month_to_date_on_the_first_of_a_month_is_that_day():
    assert preset_range("mtd", today=date(2026, 12, 1)) == (date(2026, 12, 1), date(2026, 12, 1))


def test_preset_links_on_a_fixed_today_carry_their_from_and_to(browser, stream, monkeypatch):
    monkeypatch.setattr("streams.dashboard.utc_today", lambda: date(2026, 11, 21))
    html = page(browser, LIST, organizer="nightjar", **{"from": "2026-11-15", "to": "2026-11-21"})
    links = dict(re.findall(r'data-preset="(\w+)" href="([^"]*)"', html))
    assert links == {
        "today": "?from=2026-11-21&amp;to=2026-11-21&amp;organizer=nightjar",
        "7d": "?from=2026-11-15&amp;to=2026-11-21&amp;organizer=nightjar",
        "30d": "?from=2026-10-23&amp;to=2026-11-21&amp;organizer=nightjar",
        "mtd": "?from=2026-11-01&amp;to=2026-11-21&amp;organizer=nightjar",
        "custom": "#stats-from",
    }
    # The range shown is the last 7 days: that preset is marked, Custom is not.
    assert 'class="stats-preset is-current" aria-current="true" data-preset="7d"' in html
    assert 'class="stats-preset" data-preset="custom"' in html


def test_a_range_no_preset_matches_is_custom(browser, stream, monkeypatch):
    monkeypatch.setattr("streams.dashboard.utc_today", lambda: date(2026, 11, 21))
    html = page(browser, LIST, **{"from": "2026-11-02", "to": "2026-11-05"})
    assert 'class="stats-preset is-current" aria-current="true" data-preset="custom"' in html
    assert html.count("is-current") == 1


def test_the_previous_period_is_as_long_and_ends_the_day_before():
    assert previous_period(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30)) == (
        date(2026, 10, 2),
        date(2026, 10, 31),
    )
    assert previous_period(date_from=date(2026, 11, 21), date_to=date(2026, 11, 21)) == (
        date(2026, 11, 20),
        date(2026, 11, 20),
    )


@pytest.mark.parametrize(
    ("now", "before", "text", "direction"),
    [
        (150, 120, "+25.0%", "up"),
        (90, 120, "\u221225.0%", "down"),
        (60, 60, "0.0%", "flat"),
        (5, 0, "—", "none"),
        (0, 0, "—", "none"),
        (0.0125, 0.01, "+25.0%", "up"),
    ],
)
def test_change_is_relative_with_one_decimal_and_a_dash_after_zero(now, before, text, direction):
    assert change(now, before) == (text, direction)


def test_every_dashboard_card_compares_with_the_previous_period(browser, two_days):
    found = cards(page(browser, LIST, **ONE_DAY))
    assert {name: (c["value"], c["change"], c["direction"]) for name, c in found.items()} == {
        "unique_viewers": ("3", "+50.0%", "up"),
        "sessions": ("3", "+50.0%", "up"),
        "watch_time": ("3m 00s", "+50.0%", "up"),
        "avg_watch": ("1m 00s", "0.0%", "flat"),
        "peak_concurrent": ("3", "+50.0%", "up"),
        "buffer_ratio": ("2.8%", "—", "none"),
        "error_rate": ("33.3%", "—", "none"),
        "events": ("15", "+87.5%", "up"),
        "streams": ("1", "0.0%", "flat"),
    }


def test_the_stream_page_cards_compare_too_and_name_the_previous_period(browser, two_days):
    html = page(browser, DETAIL, **ONE_DAY)
    found = cards(html)
    assert found["watch_time"]["change"] == "+50.0%"
    assert found["unique_viewers"]["change"] == "+50.0%"
    assert found["error_rate"]["change"] == "—"
    assert f"Previous period, {DAY_BEFORE} to {DAY_BEFORE}: 2m 00s" in html
    assert '<span class="kpi-mark" aria-hidden="true">&#9650;</span>' in html


def test_a_drop_is_marked_down(browser, two_days):
    # The day after DAY (no traffic) against DAY (3 viewers): 0 after 3 is −100.0 %.
    after = (DAY + timedelta(days=1)).isoformat()
    found = cards(page(browser, LIST, **{"from": after, "to": after}))
    assert found["unique_viewers"]["change"] == "\u2212100.0%"
    assert found["unique_viewers"]["direction"] == "down"


# --- Definitions --------------------------------------------------------------------------


def test_each_card_has_its_definition_on_hover_and_in_the_legend(browser, two_days):
    html = page(browser, LIST, **ONE_DAY)
    found = cards(html)
    assert set(found) == set(METRIC_DEFINITIONS)
    for name, card in found.items():
        label, definition = METRIC_DEFINITIONS[name]
        assert html_text.unescape(card["title"]) == definition
        assert f"<dt>{label}</dt><dd>{escape(definition)}</dd>" in html
    assert "Watch time divided by unique viewers." in html  # avg, SPEC §6.2
    assert "Time rebuffering divided by watch time." in html


def test_the_summary_rows_carry_the_definitions(browser, two_days):
    html = page(browser, SUMMARY, **ONE_DAY)
    label, definition = METRIC_DEFINITIONS["buffer_ratio"]
    assert f'<th scope="row" title="{escape(definition)}">{label}</th>' in html


# --- One unit style -----------------------------------------------------------------------


def test_units_agree_between_dashboard_summary_stream_page_and_csv(browser, two_days):
    dashboard = page(browser, LIST, **ONE_DAY)
    summary = page(browser, SUMMARY, **ONE_DAY)
    stream_page = page(browser, DETAIL, **ONE_DAY)
    row = re.search(r'<tr data-stream="launch-party">(.*?)</tr>', dashboard, re.S).group(1)
    summary_rows = dict(
        re.findall(r'<tr data-kpi="(\w+)"><th[^>]*>[^<]*</th><td[^>]*>([^<]*)</td>', summary)
    )
    day_row = re.search(rf'<tr data-day="{DAY}">(.*?)</tr>', stream_page, re.S).group(1)
    for text in ("3m 00s", "1m 00s", "2.8%", "33.3%"):
        assert text in row and text in day_row
    assert cards(dashboard)["watch_time"]["value"] == summary_rows["watch_time"] == "3m 00s"
    assert cards(stream_page)["buffer_ratio"]["value"] == summary_rows["buffer_ratio"] == "2.8%"
    assert summary_rows["error_rate"] == "33.3%"  # one decimal, not "33%"
    # The CSV keeps the raw numbers: seconds and ratios as decimals.
    csv_text = browser.get(LIST, {**ONE_DAY, "format": "csv"}).content.decode()
    (launch,) = csv.DictReader(io.StringIO(csv_text))
    assert launch["total_watch_seconds"] == "180"
    assert launch["avg_watch_seconds"] == "60"
    assert float(launch["buffer_ratio"]) == pytest.approx(5 / 180, abs=1e-6)
    assert float(launch["error_rate"]) == pytest.approx(1 / 3, abs=1e-6)
    assert datetime.fromisoformat(launch["last_calculated_at"]).tzinfo is not None
    assert "T" in launch["last_calculated_at"]


def test_no_seconds_columns_are_left_on_the_pages(browser, two_days):
    for path in (LIST, SUMMARY, DETAIL):
        html = page(browser, path, **ONE_DAY)
        assert "(s)" not in html


def test_the_table_shows_organizer_names_not_slugs(browser, two_days):
    html = page(browser, LIST, **ONE_DAY)
    row = re.search(r'<tr data-stream="launch-party">(.*?)</tr>', html, re.S).group(1)
    assert "<td>Nightjar Records</td>" in row
    assert "<td>nightjar</td>" not in row


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (999, "999"), (38282, "38,282"), (1234567, "1,234,567")]
)
def test_counts_have_thousands_separators(value, text):
    assert count_text(value) == text


def test_the_bunny_cell_is_flat_key_value_pairs_like_the_other_maps():
    bunny = {
        "video_guid": "guid-bunny-show",
        "views": 7,
        "watch_time_seconds": 300.0,
        "engagement_score": 81.5,
        "country_views": {"DE": 5.0, "FR": 2.0},
        "days": 1,
        "fetched_at": datetime(2026, 11, 21, 6, 30, tzinfo=UTC),
    }
    assert csv_cell(bunny) == (
        "video_guid:guid-bunny-show;views:7;watch_time_seconds:300;engagement_score:81.5;"
        "country_views.DE:5;country_views.FR:2;days:1;fetched_at:2026-11-21T06:30:00Z"
    )
    assert csv_cell({**bunny, "engagement_score": None}).count("engagement_score:;") == 1
    assert csv_cell(None) == ""


# --- Filters that are wrong keep the form -------------------------------------------------


@pytest.mark.parametrize("path", [LIST, SUMMARY, DETAIL])
def test_from_after_to_keeps_the_form_with_the_message_beside_the_field(browser, stream, path):
    html = page(browser, path, 400, **{"from": "2026-02-02", "to": "2026-02-01"})
    assert '<form method="get" class="stats-filters"' in html
    assert 'name="from" value="2026-02-02" aria-invalid="true"' in html
    assert 'name="to" value="2026-02-01"' in html
    assert (
        '<p class="stats-field-error" id="stats-from-error">'
        "The start date must not be after the end date.</p>"
    ) in html
    assert "`" not in html.split('id="content-main"')[1]
    assert 'id="nav-sidebar"' in html  # still inside the admin


def test_from_after_to_is_still_a_400_for_the_api_without_backticks(admin_client_api, stream):
    response = admin_client_api.get(
        LIST, {"from": "2026-02-02", "to": "2026-02-01"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"from": "must not be after to"}


def test_an_unknown_organizer_keeps_the_form_and_names_it(browser, stream):
    html = page(browser, LIST, 400, organizer="nobody-here")
    assert '<option value="nobody-here" selected>nobody-here (unknown)</option>' in html
    assert "No organizer \u201cnobody-here\u201d among the ones you may see." in html
    assert "No streams match." not in html
    assert '<option value="" selected>' not in html


def test_an_organizer_of_someone_else_is_unknown_to_a_member(staff_user, organizer, stream):
    from streams.models import Organizer

    Organizer.objects.create(name="Other Label", slug="other-label")
    organizer.members.add(staff_user)
    client = Client()
    client.force_login(staff_user)
    html = page(client, SUMMARY, 400, organizer="other-label")
    assert "No organizer \u201cother-label\u201d among the ones you may see." in html
    assert "Other Label" not in html


def test_the_api_still_answers_an_unknown_organizer_with_no_streams(admin_client_api, stream):
    response = admin_client_api.get(
        LIST, {"organizer": "nobody-here"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response.json()["streams"] == []


def test_a_range_in_the_future_says_there_are_no_figures_yet(browser, stream):
    html = page(browser, LIST, **{"from": "2099-01-01", "to": "2099-01-07"})
    assert "No figures for this range yet." in html
    assert "Last calculated never" not in html


# --- Navigation and the live page ---------------------------------------------------------


@pytest.mark.parametrize("path", [LIST, SUMMARY, DETAIL])
def test_every_dashboard_page_keeps_the_admin_sidebar_and_its_styles(browser, stream, path):
    html = page(browser, path)
    assert 'id="nav-sidebar"' in html
    assert "/static/streams/dashboard.css" in html
    assert 'class="stream-dashboard"' in html


def test_the_dashboard_has_the_three_daily_charts_over_all_streams(browser, two_days):
    html = page(browser, LIST, **{"from": DAY_BEFORE.isoformat(), "to": DAY.isoformat()})
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart') == 3
    assert f"{DAY_BEFORE.isoformat()}: 2</title>" in html  # viewers that day
    assert f"{DAY.isoformat()}: 3</title>" in html
    assert f"{DAY.isoformat()}: 3m</title>" in html  # watch time axis text


def test_the_stats_page_refreshes_itself_from_a_static_script(client, superuser, settings):
    settings.ADMIN_STATS_REFRESH_SECONDS = 5
    client.force_login(superuser)
    html = client.get("/admin/stats").content.decode()
    assert 'data-refresh-seconds="5"' in html
    assert "/static/analytics/admin-stats.js" in html
    assert "/static/analytics/admin-stats.css" in html
    assert 'id="live-stats"' in html
    assert "<style" not in html
    assert 'style="height' not in html
