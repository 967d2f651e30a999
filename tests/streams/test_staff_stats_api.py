"""SPEC §5.5 staff stream analytics: `GET /admin/analytics/streams` and `…/streams/summary`.

Who may read them (§10: anonymous users read nothing, staff of one organizer never see
another's streams), the §6.2 figures "over a date range" with the numbers written out,
the CSV and HTML renderings, and bad query strings (§10: never a 5xx).

Data goes in over HTTP like a player sends it and `stream_stats_recompute()` builds the
daily StreamStats the endpoints read. Heartbeat interval 15 s, so heartbeats at
0/15/30/45 s are 60 s of watching (15 s opening credit + 3 × 15 s).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from django.urls import resolve
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from echonest_analytics.days import utc_today
from streams.aggregation import stream_stats_recompute
from streams.apis import StreamStatsListApi, StreamStatsSummaryApi
from streams.models import PlaybackEvent, Stream, StreamProvider

from .conftest import MOBILE_UA, T0, ev, heartbeats

pytestmark = pytest.mark.django_db

LIST = "/admin/analytics/streams"
SUMMARY = "/admin/analytics/streams/summary"
ENDPOINTS = [LIST, SUMMARY]

DAY_2 = T0.date()  # two days ago
DAY_1 = DAY_2 - timedelta(days=1)  # three days ago
BASE_DAY_1 = T0 - timedelta(days=1)

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SIXTY_SECONDS = (0, 15, 30, 45)  # heartbeats: 15 s opening credit + 45 s = 60 s watched


def recompute() -> None:
    assert stream_stats_recompute().ran


def days_ago(days: int) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )


def get_json(client, path: str, **params) -> dict:
    response = client.get(path, params, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def only_row(client, **params) -> dict:
    rows = get_json(client, LIST, **params)["streams"]
    assert len(rows) == 1, rows
    return rows[0]


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


@pytest.fixture
def other_stream(other_organizer) -> Stream:
    """A stream of organizer B ("other-label")."""
    s = Stream.objects.create(key="other-show", title="Other show", organizer=other_organizer)
    StreamProvider.objects.create(
        stream=s, provider="youtube", external_id="dQw4w9WgXcQ", is_primary=True
    )
    return s


@pytest.fixture
def member_client(staff_user, organizer) -> APIClient:
    """Staff who is a member of organizer A ("nightjar") only."""
    organizer.members.add(staff_user)
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def two_organizers_watched(stream, other_stream, send_batch):
    """A: one client, 4 events, 60 s. B: two other clients, 6 events, 60 s + 30 s."""
    send_batch("c-a-1", heartbeats(*SIXTY_SECONDS))
    send_batch("c-b-1", heartbeats(*SIXTY_SECONDS), stream_key="other-show")
    send_batch("c-b-2", heartbeats(0, 15), stream_key="other-show")
    recompute()


# --- Who may read them (§5.5, §10) ---------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_api_client_is_refused(api_client, path, two_organizers_watched):
    response = api_client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code in (401, 403)
    assert "streams" not in response.json()
    assert b"launch-party" not in response.content


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_csv_download_is_refused(api_client, path, two_organizers_watched):
    response = api_client.get(path, {"format": "csv"})
    assert response.status_code in (401, 403)
    assert b"launch-party" not in response.content
    assert b"other-show" not in response.content
    assert "attachment" not in response.get("Content-Disposition", "")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_logged_in_user_who_is_not_staff_gets_403(django_user_model, path, two_organizers_watched):
    user = django_user_model.objects.create_user("listener", "l@example.com", "pw-listener-1")
    client = Client()
    client.force_login(user)
    response = client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert b"launch-party" not in response.content


@pytest.mark.parametrize("path", ENDPOINTS)
def test_staff_with_an_api_token_gets_200(staff_user, organizer, path, two_organizers_watched):
    organizer.members.add(staff_user)
    token = Token.objects.create(user=staff_user)
    client = APIClient()
    response = client.get(
        path, HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["unique_viewers" if path == SUMMARY else "streams"]


def test_a_wrong_api_token_is_refused(api_client, two_organizers_watched):
    response = api_client.get(LIST, HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert response.status_code in (401, 403)
    assert b"launch-party" not in response.content


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_browser_is_redirected_to_the_admin_login(accept, path):
    response = Client().get(path, {"from": "2026-01-01", "to": "2026-01-31"}, HTTP_ACCEPT=accept)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/admin/login/?next=")
    assert "/admin/analytics/streams" in location
    assert "from%3D2026-01-01" in location  # the query survives the round trip


def test_logged_in_non_staff_browser_is_not_redirected_to_login_but_refused(django_user_model):
    user = django_user_model.objects.create_user("listener", "l@example.com", "pw-listener-1")
    client = Client()
    client.force_login(user)
    response = client.get(LIST, HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    # The page says why, rather than rendering an empty report.
    body = response.content.decode()
    assert "You do not have permission to perform this action." in body
    assert "No streams match." not in body


# --- Organizer boundary (§10) --------------------------------------------------------


def test_staff_member_of_a_sees_only_a_streams_in_the_list(member_client, two_organizers_watched):
    rows = get_json(member_client, LIST)["streams"]
    assert [(r["stream_id"], r["organizer"]) for r in rows] == [("launch-party", "nightjar")]


def test_staff_member_of_a_gets_a_summary_of_a_streams_only(member_client, two_organizers_watched):
    summary = get_json(member_client, SUMMARY)
    # B's 2 viewers, 6 events and 90 s are not counted.
    assert summary["streams"] == 1
    assert summary["events"] == 4
    assert summary["unique_viewers"] == 1
    assert summary["sessions"] == 1
    assert summary["total_watch_seconds"] == pytest.approx(60.0)


def test_staff_member_of_a_asking_for_b_by_slug_gets_an_empty_list(
    member_client, two_organizers_watched
):
    assert get_json(member_client, LIST, organizer="other-label")["streams"] == []
    summary = get_json(member_client, SUMMARY, organizer="other-label")
    assert (summary["streams"], summary["events"], summary["unique_viewers"]) == (0, 0, 0)


def test_staff_member_of_a_filtering_by_a_gets_a(member_client, two_organizers_watched):
    rows = get_json(member_client, LIST, organizer="nightjar")["streams"]
    assert [r["stream_id"] for r in rows] == ["launch-party"]


def test_superuser_sees_both_organizers_streams(admin_client_api, two_organizers_watched):
    rows = get_json(admin_client_api, LIST)["streams"]
    assert sorted(r["stream_id"] for r in rows) == ["launch-party", "other-show"]
    summary = get_json(admin_client_api, SUMMARY)
    assert summary["streams"] == 2
    assert summary["events"] == 4 + 6
    assert summary["unique_viewers"] == 3
    assert summary["total_watch_seconds"] == pytest.approx(60.0 + 60.0 + 30.0)


def test_superuser_filtering_by_organizer_b_sees_only_b(admin_client_api, two_organizers_watched):
    rows = get_json(admin_client_api, LIST, organizer="other-label")["streams"]
    assert [r["stream_id"] for r in rows] == ["other-show"]
    assert rows[0]["provider"] == "youtube"
    assert rows[0]["unique_viewers"] == 2


def test_staff_who_is_a_member_of_nothing_sees_nothing(staff_client, two_organizers_watched):
    assert get_json(staff_client, LIST)["streams"] == []
    summary = get_json(staff_client, SUMMARY)
    assert summary["streams"] == 0
    assert summary["events"] == 0
    assert summary["unique_viewers"] == 0
    assert summary["sessions"] == 0
    assert summary["total_watch_seconds"] == 0


def test_staff_member_of_both_organizers_sees_both(
    staff_user, organizer, other_organizer, staff_client, two_organizers_watched
):
    organizer.members.add(staff_user)
    other_organizer.members.add(staff_user)
    rows = get_json(staff_client, LIST)["streams"]
    assert sorted(r["stream_id"] for r in rows) == ["launch-party", "other-show"]


# --- Figures over a date range (§6.2) ------------------------------------------------


def test_one_client_on_two_days_is_one_unique_viewer_over_the_range_with_two_sessions(
    admin_client_api, stream, send_batch
):
    send_batch("c-1", heartbeats(*SIXTY_SECONDS, base=BASE_DAY_1))
    send_batch("c-1", heartbeats(*SIXTY_SECONDS))
    recompute()
    row = only_row(admin_client_api, **{"from": DAY_1.isoformat(), "to": DAY_2.isoformat()})
    # Per day 1 viewer each; over the range the same client counts once.
    assert row["unique_viewers"] == 1
    assert row["sessions"] == 2
    assert row["total_watch_seconds"] == pytest.approx(120.0)
    assert row["avg_watch_seconds"] == pytest.approx(120.0)  # 120 s / 1 viewer
    summary = get_json(admin_client_api, SUMMARY)
    assert (summary["unique_viewers"], summary["sessions"]) == (1, 2)


def test_peak_over_the_range_is_the_maximum_of_the_daily_peaks(
    admin_client_api, stream, send_batch
):
    for client_id in ("c-a", "c-b", "c-c"):  # day 1: three overlapping sessions
        send_batch(client_id, heartbeats(*SIXTY_SECONDS, base=BASE_DAY_1))
    for client_id in ("c-a", "c-b"):  # day 2: two overlapping sessions
        send_batch(client_id, heartbeats(*SIXTY_SECONDS))
    recompute()
    row = only_row(admin_client_api)
    assert row["peak_concurrent_viewers"] == 3  # max(3, 2), not 3 + 2
    assert row["unique_viewers"] == 3
    assert row["sessions"] == 5
    assert get_json(admin_client_api, SUMMARY)["peak_concurrent_viewers"] == 3


def test_buffer_ratio_over_the_range_is_total_buffering_over_total_watch(
    admin_client_api, stream, send_batch
):
    # Day 1: playing 0-40 and 45-60, buffering 40-45 → 5 s of 60 s.
    send_batch(
        "c-1",
        [
            ev("play", 0, BASE_DAY_1),
            ev("heartbeat", 15, BASE_DAY_1),
            ev("heartbeat", 30, BASE_DAY_1),
            ev("buffer_start", 40, BASE_DAY_1),
            ev("buffer_end", 45, BASE_DAY_1),
            ev("heartbeat", 60, BASE_DAY_1),
        ],
    )
    # Day 2: playing 0-5 and 20-30, buffering 5-20 → 15 s of 30 s.
    send_batch(
        "c-2", [ev("play", 0), ev("buffer_start", 5), ev("buffer_end", 20), ev("heartbeat", 30)]
    )
    recompute()
    row = only_row(admin_client_api)
    assert row["total_watch_seconds"] == pytest.approx(90.0)
    # (5 + 15) / (60 + 30) = 0.222222, not the mean of the daily ratios (1/12 + 1/2) / 2.
    assert row["buffer_ratio"] == pytest.approx(20 / 90, abs=1e-6)
    assert get_json(admin_client_api, SUMMARY)["buffer_ratio"] == pytest.approx(20 / 90, abs=1e-6)


def test_error_rate_over_the_range_is_error_sessions_over_all_sessions(
    admin_client_api, stream, send_batch
):
    # Day 1: two sessions, one with an error. Day 2: one session, with an error.
    send_batch("c-1", [*heartbeats(0, 15, base=BASE_DAY_1), ev("error", 20, BASE_DAY_1)])
    send_batch("c-2", heartbeats(0, 15, base=BASE_DAY_1))
    send_batch("c-3", [ev("play", 0), ev("error", 10)])
    recompute()
    row = only_row(admin_client_api)
    assert row["sessions"] == 3
    # 2 / 3 = 0.666667, not the mean of the daily rates (1/2 + 1/1) / 2 = 0.75.
    assert row["error_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert get_json(admin_client_api, SUMMARY)["error_rate"] == pytest.approx(2 / 3, abs=1e-6)


def test_from_and_to_exclude_days_outside_the_range(admin_client_api, stream, send_batch):
    send_batch("c-1", heartbeats(*SIXTY_SECONDS, base=BASE_DAY_1))  # day 1: 60 s
    send_batch("c-2", heartbeats(0, 15))  # day 2: 30 s
    recompute()
    day_1 = only_row(admin_client_api, **{"from": DAY_1.isoformat(), "to": DAY_1.isoformat()})
    assert (day_1["unique_viewers"], day_1["sessions"]) == (1, 1)
    assert day_1["total_watch_seconds"] == pytest.approx(60.0)
    day_2 = only_row(admin_client_api, **{"from": DAY_2.isoformat(), "to": DAY_2.isoformat()})
    assert (day_2["unique_viewers"], day_2["sessions"]) == (1, 1)
    assert day_2["total_watch_seconds"] == pytest.approx(30.0)
    both = get_json(
        admin_client_api, SUMMARY, **{"from": DAY_1.isoformat(), "to": DAY_2.isoformat()}
    )
    assert (both["unique_viewers"], both["sessions"], both["events"]) == (2, 2, 6)
    before = only_row(admin_client_api, to=(DAY_1 - timedelta(days=1)).isoformat())
    assert (before["sessions"], before["unique_viewers"], before["total_watch_seconds"]) == (
        0,
        0,
        0,
    )


def test_the_answer_names_the_range_it_covers(admin_client_api, stream):
    body = get_json(admin_client_api, LIST, **{"from": "2026-01-05", "to": "2026-01-09"})
    assert (body["from"], body["to"], body["organizer"]) == ("2026-01-05", "2026-01-09", None)


def test_default_range_is_the_last_30_days_up_to_today(admin_client_api, stream):
    today = utc_today()  # read per test: a run may cross 00:00 UTC
    body = get_json(admin_client_api, LIST)
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()


def test_default_range_excludes_a_session_40_days_ago_and_keeps_one_29_days_ago(
    admin_client_api, stream, send_batch
):
    send_batch("c-old", heartbeats(*SIXTY_SECONDS, base=days_ago(40)))
    send_batch("c-recent", heartbeats(0, 15, base=days_ago(29)))
    recompute()
    row = only_row(admin_client_api)
    assert (row["unique_viewers"], row["sessions"]) == (1, 1)
    assert row["total_watch_seconds"] == pytest.approx(30.0)
    summary = get_json(admin_client_api, SUMMARY)
    assert (summary["unique_viewers"], summary["events"]) == (1, 2)
    # The old session is there, only outside the default range.
    old = days_ago(40).date().isoformat()
    assert only_row(admin_client_api, **{"from": old, "to": old})["sessions"] == 1


def test_summary_counts_matching_streams_and_their_events(
    admin_client_api, stream, second_stream, send_batch
):
    send_batch("c-1", heartbeats(*SIXTY_SECONDS))  # 4 events
    send_batch("c-2", [ev("play", 0), ev("heartbeat", 15), ev("pause", 20)])  # 3 events
    send_batch("c-1", heartbeats(0, 15), stream_key="after-party")  # 2 events
    Stream.objects.create(key="unwatched", title="Unwatched", organizer=stream.organizer)
    recompute()
    summary = get_json(admin_client_api, SUMMARY)
    assert summary["streams"] == 3  # every matching stream, watched or not
    assert summary["events"] == 4 + 3 + 2
    assert summary["unique_viewers"] == 2  # c-1 on two streams counts once
    assert summary["sessions"] == 3


# --- CSV -----------------------------------------------------------------------------


@pytest.fixture
def csv_population(stream, second_stream, send_batch, settings):
    """launch-party: US, US, DE on desktop. after-party: one desktop, one mobile, no country."""
    settings.GEOIP_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
    send_batch("c-us-1", heartbeats(*SIXTY_SECONDS), HTTP_CF_IPCOUNTRY="US")
    send_batch("c-us-2", heartbeats(*SIXTY_SECONDS), HTTP_CF_IPCOUNTRY="US")
    send_batch("c-de-1", [ev("play", 0), ev("error", 5)], HTTP_CF_IPCOUNTRY="DE")
    send_batch("c-desk", heartbeats(0, 15), stream_key="after-party")
    send_batch("c-phone", heartbeats(0, 15), stream_key="after-party", ua=MOBILE_UA)
    recompute()


def test_list_csv_is_an_attachment_with_the_columns_in_order(admin_client_api, csv_population):
    today = utc_today()
    response = admin_client_api.get(LIST, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    first = (today - timedelta(days=29)).isoformat()
    assert f'filename="stream-stats_{first}_{today.isoformat()}.csv"' in disposition
    rows = read_csv(response)
    assert rows[0] == [  # SPEC §5.5 order
        "stream_id",
        "title",
        "organizer",
        "provider",
        "unique_viewers",
        "sessions",
        "total_watch_seconds",
        "avg_watch_seconds",
        "peak_concurrent_viewers",
        "buffer_ratio",
        "error_rate",
        "top_countries",
        "device_breakdown",
        "bunny",
        "last_calculated_at",
        # SPEC §6.5's video quality, after §5.5's columns
        "startup_time_median_ms",
        "startup_time_p95_ms",
        "exits_before_start",
        "playback_failure_rate",
        "rebuffer_frequency",
    ]
    assert len(rows) == 1 + 2  # header + one row per stream


def test_list_csv_rows_hold_the_json_figures(admin_client_api, csv_population):
    json_rows = {r["stream_id"]: r for r in get_json(admin_client_api, LIST)["streams"]}
    csv_rows = {
        r["stream_id"]: r
        for r in csv.DictReader(
            io.StringIO(admin_client_api.get(LIST, {"format": "csv"}).content.decode())
        )
    }
    assert csv_rows.keys() == json_rows.keys() == {"launch-party", "after-party"}
    for key, row in csv_rows.items():
        data = json_rows[key]
        for column in ("stream_id", "title", "organizer", "unique_viewers", "sessions"):
            assert row[column] == str(data[column]), column
        assert row["provider"] == (data["provider"] or "")
        for column in (
            "total_watch_seconds",
            "avg_watch_seconds",
            "peak_concurrent_viewers",
            "buffer_ratio",
            "error_rate",
        ):
            assert float(row[column]) == pytest.approx(data[column], rel=1e-5), column
        assert row["bunny"] == ""
        assert row["last_calculated_at"]
        csv_time = datetime.fromisoformat(row["last_calculated_at"])
        json_time = datetime.fromisoformat(data["last_calculated_at"].replace("Z", "+00:00"))
        assert abs(csv_time - json_time) < timedelta(milliseconds=1)

    launch = csv_rows["launch-party"]
    assert launch["title"] == "Launch party"
    assert launch["provider"] == "hls"
    assert (launch["unique_viewers"], launch["sessions"]) == ("3", "3")
    assert launch["top_countries"] == "US:2;DE:1"
    assert launch["device_breakdown"] == "desktop:3"
    assert float(launch["total_watch_seconds"]) == pytest.approx(60 + 60 + 5)
    assert float(launch["error_rate"]) == pytest.approx(1 / 3, abs=1e-5)
    after = csv_rows["after-party"]
    assert after["provider"] == ""  # no provider configured
    assert after["top_countries"] == ""
    assert after["device_breakdown"] == "desktop:1;mobile:1"
    assert json_rows["after-party"]["device_breakdown"] == {"desktop": 1, "mobile": 1}
    assert json_rows["launch-party"]["top_countries"] == [
        {"country": "US", "viewers": 2},
        {"country": "DE", "viewers": 1},
    ]


def test_summary_csv_has_one_data_row_matching_the_json(admin_client_api, csv_population):
    summary = get_json(admin_client_api, SUMMARY)
    response = admin_client_api.get(SUMMARY, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="stream-summary_')
    rows = read_csv(response)
    assert len(rows) == 2
    header, values = rows
    assert header == [  # the range and filter, then SPEC §5.5's figures in their order
        "from",
        "to",
        "organizer",
        "streams",
        "events",
        "unique_viewers",
        "sessions",
        "total_watch_seconds",
        "avg_watch_seconds",
        "peak_concurrent_viewers",
        "buffer_ratio",
        "error_rate",
        "top_countries",
        "device_breakdown",
        "last_calculated_at",
        # SPEC §6.5's video quality, after §5.5's columns
        "startup_time_median_ms",
        "startup_time_p95_ms",
        "exits_before_start",
        "playback_failure_rate",
        "rebuffer_frequency",
    ]
    row = dict(zip(header, values, strict=True))
    assert row["from"] == summary["from"]
    assert row["to"] == summary["to"]
    assert row["organizer"] == ""
    assert row["streams"] == "2" == str(summary["streams"])
    assert row["events"] == str(4 + 4 + 2 + 2 + 2) == str(summary["events"])
    assert row["unique_viewers"] == "5" == str(summary["unique_viewers"])
    assert row["top_countries"] == "US:2;DE:1"
    assert row["device_breakdown"] == "desktop:4;mobile:1"
    assert float(row["total_watch_seconds"]) == pytest.approx(summary["total_watch_seconds"])
    assert float(row["error_rate"]) == pytest.approx(summary["error_rate"], rel=1e-5)
    # c-de-1 played and errored 5 s later: it played, so no exit before start; not fatal.
    assert row["exits_before_start"] == "0" == str(summary["exits_before_start"])
    assert row["startup_time_median_ms"] == "" and summary["startup_time_median_ms"] is None


def test_csv_neutralises_a_title_that_starts_like_a_formula(admin_client_api, stream, send_batch):
    stream.title = '=HYPERLINK("http://evil.example","x")'
    stream.save()
    Stream.objects.create(key="plus", title="+1 and more", organizer=stream.organizer)
    Stream.objects.create(key="at-sign", title="@SUM(A1)", organizer=stream.organizer)
    send_batch("c-1", heartbeats(0, 15))
    recompute()
    rows = {
        r["stream_id"]: r
        for r in csv.DictReader(
            io.StringIO(admin_client_api.get(LIST, {"format": "csv"}).content.decode())
        )
    }
    assert rows["launch-party"]["title"] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows["plus"]["title"] == "'+1 and more"
    assert rows["at-sign"]["title"] == "'@SUM(A1)"
    # The JSON keeps the title as it is.
    titles = {r["stream_id"]: r["title"] for r in get_json(admin_client_api, LIST)["streams"]}
    assert titles["launch-party"] == '=HYPERLINK("http://evil.example","x")'


def test_csv_of_a_bad_query_is_a_400_without_an_attachment(admin_client_api, stream):
    response = admin_client_api.get(LIST, {"format": "csv", "from": "2026-13-01"})
    assert response.status_code == 400
    assert "attachment" not in response.get("Content-Disposition", "")


# --- Bad input (§10) -----------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_month_13_is_a_400_naming_from(admin_client_api, stream, path):
    response = admin_client_api.get(path, {"from": "2026-13-01"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]
    assert set(body["details"]) == {"from"}


def test_bad_to_is_a_400_naming_to(admin_client_api, stream):
    response = admin_client_api.get(LIST, {"to": "yesterday"})
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"to"}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_from_after_to_is_a_400(admin_client_api, stream, path):
    response = admin_client_api.get(path, {"from": "2026-02-02", "to": "2026-02-01"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]
    assert "from" in body["details"]


def test_from_equal_to_to_is_one_day_and_fine(admin_client_api, stream):
    body = get_json(admin_client_api, LIST, **{"from": "2026-02-01", "to": "2026-02-01"})
    assert (body["from"], body["to"]) == ("2026-02-01", "2026-02-01")


@pytest.mark.parametrize("slug", ["a b", "<script>", "nightjar;drop", "x" * 101, "é"])
def test_organizer_with_odd_characters_is_a_400(admin_client_api, stream, slug):
    response = admin_client_api.get(LIST, {"organizer": slug})
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"organizer"}


@pytest.mark.parametrize(
    "query",
    [
        "from=" + "9" * 10_000,
        "to=" + "2026-01-01" * 2_000,
        "organizer=" + "a" * 10_000,
        "from=%00",
        "to=2026-01-01%00",
        "organizer=%00",
        "organizer=night%00jar",
        "from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",  # full-width digits
        "from=%F0%9F%8E%B5",  # 🎵
        "from=%ff%fe",  # not UTF-8
        "from=2026-02-30",
        "from=-2026-01-01",
        "from=0000-01-01",
        "from=0001-01-01",
        "from=0001-01-01&to=0001-01-02",
        "from=2026-01-01&from=2026-01-02&to=2026-01-01",
        "from[]=2026-01-01",
        "format=xml",
        "format=%00",
    ],
)
@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_odd_query_strings_never_give_a_5xx(admin_client_api, stream, path, query, accept):
    response = admin_client_api.get(f"{path}?{query}", HTTP_ACCEPT=accept)
    assert response.status_code < 500, (query, response.status_code)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_range_ending_on_the_last_representable_day_is_a_4xx_not_a_500(
    admin_client_api, stream, path
):
    # 9999-12-31 is a valid date; the day after it is not.
    for query in ({"to": "9999-12-31"}, {"from": "9999-12-31", "to": "9999-12-31"}):
        response = admin_client_api.get(path, query)
        assert response.status_code == 400, (query, response.status_code)
        assert response.json()["error"]


def test_odd_query_strings_are_400_with_error_and_details(admin_client_api, stream):
    for query, field in [
        ("from=%00", "from"),
        ("organizer=%00", "organizer"),
        ("from=2026-02-30", "from"),
        ("from=" + "9" * 10_000, "from"),
        ("from=0001-01-01", "from"),  # longer than the range limit
    ]:
        response = admin_client_api.get(f"{LIST}?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["details"], query


# --- HTML for browsers ----------------------------------------------------------------


@pytest.fixture
def staff_browser(staff_user, organizer) -> Client:
    organizer.members.add(staff_user)
    client = Client()
    client.force_login(staff_user)
    return client


def test_staff_browser_gets_an_admin_styled_list_with_the_figures(
    staff_browser, stream, send_batch
):
    for client_id in ("c-a", "c-b", "c-c"):
        send_batch(client_id, heartbeats(*SIXTY_SECONDS))
    recompute()
    response = staff_browser.get(LIST, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Django administration" in html or 'id="header"' in html
    assert "Launch party" in html
    assert "launch-party" in html
    assert "<td>3</td>" in html  # unique viewers, sessions and peak
    # 3 × 60 s watched, 60 s per viewer: durations in h/m/s, the seconds on hover.
    assert 'data-value="180.0" title="180 s">3m 00s</td>' in html
    assert 'data-value="60.0" title="60.0 s">1m 00s</td>' in html
    assert "format=csv" in html  # the download link


def test_staff_browser_gets_an_admin_styled_summary(staff_browser, stream, send_batch):
    send_batch("c-a", heartbeats(*SIXTY_SECONDS))
    send_batch("c-b", heartbeats(0, 15))
    recompute()
    response = staff_browser.get(SUMMARY, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Django administration" in html or 'id="header"' in html
    figures = dict(
        re.findall(
            r'<tr data-kpi="(\w+)"><th scope="row"[^>]*>[^<]*</th><td[^>]*>([^<]*)</td>', html
        )
    )
    assert figures["streams"] == "1"
    assert figures["events"] == "6"
    assert figures["unique_viewers"] == "2"
    assert figures["watch_time"] == "1m 30s"  # 60 s + 30 s


def test_staff_browser_does_not_see_other_organizers_titles(
    staff_browser, stream, other_stream, send_batch
):
    send_batch("c-b", heartbeats(0, 15), stream_key="other-show")
    recompute()
    html = staff_browser.get(LIST, HTTP_ACCEPT="text/html").content.decode()
    assert "Launch party" in html
    assert "Other show" not in html


def test_html_escapes_a_stream_title(staff_browser, stream):
    stream.title = "<script>alert(1)</script>"
    stream.save()
    html = staff_browser.get(LIST, HTTP_ACCEPT="text/html").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_staff_browser_with_a_bad_date_gets_a_400_that_says_what_is_wrong(staff_browser, stream):
    response = staff_browser.get(LIST, {"from": "2026-13-01"}, HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    # Whatever the rendering, the page must carry the message (the JSON body's
    # details), not an empty report that reads as "no data".
    body = response.content.decode()
    assert "expected a date as YYYY-MM-DD" in body
    assert "No streams match." not in body


# --- Routing: nothing shadowed (§5.5) -------------------------------------------------


def test_anonymous_ingestion_still_works_next_to_the_admin(stream, send_batch):
    response = send_batch("c-1", heartbeats(0, 15))
    assert response.status_code == 202
    assert list(PlaybackEvent.objects.values_list("client_id", "type")) == [
        ("c-1", "heartbeat"),
        ("c-1", "heartbeat"),
    ]


def test_stream_info_is_still_anonymous(stream):
    response = Client().get("/api/streams/launch-party")
    assert response.status_code == 200
    assert response.json()["streamId"] == "launch-party"


def test_stats_urls_resolve_to_the_stats_views_not_the_admin_catch_all():
    assert resolve(LIST).func.view_class is StreamStatsListApi
    assert resolve(SUMMARY).func.view_class is StreamStatsSummaryApi


def test_superuser_gets_the_report_not_the_admin_404(superuser, stream):
    client = Client()
    client.force_login(superuser)
    response = client.get(LIST, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["streams"][0]["stream_id"] == "launch-party"
    # An unknown admin URL is the admin's own 404 — proof the catch-all exists.
    assert client.get("/admin/analytics/nothing-here").status_code == 404


def test_report_dates_are_dates(admin_client_api, stream):
    body = get_json(admin_client_api, LIST, to="2026-03-31")
    assert date.fromisoformat(body["to"]) - date.fromisoformat(body["from"]) == timedelta(days=29)


@pytest.mark.parametrize("fmt", ["csv", "html", "json"])
@pytest.mark.parametrize(
    "path",
    ["/admin/analytics/streams", "/admin/analytics/streams/summary", "/admin/analytics/streams/x"],
)
def test_options_answers_json_metadata_whatever_the_format(admin_client_api, path, fmt):
    # Found by the schema fuzzer: OPTIONS …?format=csv rendered the metadata as a report (500).
    response = admin_client_api.options(f"{path}?format={fmt}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "name" in response.json()


@pytest.mark.parametrize("key", ["%C2%B6", "a.b", "a%2Fb"])
def test_a_key_that_is_no_slug_reaches_the_report_not_the_admin_login(
    api_client, admin_client_api, key
):
    # Found by the schema fuzzer: such a key fell through to the admin's catch-all, which
    # redirected even an API client with a staff token to the login page.
    assert api_client.get(f"/admin/analytics/streams/{key}").status_code == 401
    response = admin_client_api.get(f"/admin/analytics/streams/{key}")
    assert response.status_code == 404
