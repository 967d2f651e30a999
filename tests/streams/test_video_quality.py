"""SPEC §6.5 video quality, through the real pipeline: batches over HTTP as a player sends
them, the set-based aggregation, the numbers read back from StreamStats.

Heartbeat interval 15 s, gap cap 30 s. Startup time = a play's extra.startupMs (median:
the middle value or the mean of the two middle ones; p95: the nearest rank); exits
before video start = sessions with a play and no playing time; playback failure rate =
sessions with a fatal error / sessions; rebuffer frequency = buffer_start events per
minute watched.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from streams.aggregation import stream_stats_recompute
from streams.models import StreamStats, ViewerSession
from streams.selectors import stream_stats_list

from .conftest import BOT_UA, T0, ev, heartbeats

pytestmark = pytest.mark.django_db

DAY = T0.date()


def recompute():
    assert stream_stats_recompute().ran


def stats(stream) -> StreamStats:
    return StreamStats.objects.get(stream=stream, day=DAY)


def watched(startup_ms: float | None = None, *, until: float = 30) -> list[dict]:
    """A play (with its startup time) and heartbeats every 15 s up to `until`."""
    extra = {} if startup_ms is None else {"extra": {"startupMs": startup_ms}}
    return [ev("play", 0, **extra), *heartbeats(*range(15, int(until) + 1, 15))]


def test_startup_of_1_2_s_and_3_4_s_gives_a_median_of_2_3_s(stream, send_batch):
    send_batch("c-one", watched(1200))
    send_batch("c-two", watched(3400))
    recompute()

    row = stats(stream)
    assert row.startup_time_median_ms == 2300
    assert row.startup_time_p95_ms == 3400  # nearest rank: ceil(0.95 × 2) = 2nd
    assert row.startup_sessions == 2


def test_startup_median_of_an_odd_count_is_the_middle_one_and_p95_the_nearest_rank(
    stream, send_batch
):
    # 20 sessions with startups 100, 200, ... 2000 ms: median (1000 + 1100) / 2,
    # p95 = the 19th value (ceil(0.95 × 20) = 19); with one more at 5000 ms (21 values),
    # the median is the 11th and p95 the 20th (ceil(19.95)).
    for i in range(1, 21):
        send_batch(f"c-{i}", watched(i * 100))
    recompute()
    row = stats(stream)
    assert (row.startup_time_median_ms, row.startup_time_p95_ms) == (1050, 1900)

    send_batch("c-slow", watched(5000))
    recompute()
    row = stats(stream)
    assert (row.startup_time_median_ms, row.startup_time_p95_ms) == (1100, 2000)
    assert row.startup_sessions == 21


def test_a_session_counts_its_first_startup_and_ignores_what_is_no_startup_time(stream, send_batch):
    # One session: its first play 800 ms, a later play (a replay) 100 ms -> 800 counts.
    send_batch(
        "c-replay",
        [
            ev("play", 0, extra={"startupMs": 800}),
            *heartbeats(15),
            ev("ended", 20),
            ev("play", 25, extra={"startupMs": 100}),
            *heartbeats(40),
        ],
    )
    # Not numbers, negative, or over 10 minutes: no startup time.
    send_batch("c-text", watched("1200"))
    send_batch("c-negative", watched(-5))
    send_batch("c-forever", watched(3_600_000))
    send_batch("c-none", watched())
    recompute()

    row = stats(stream)
    assert row.startup_sessions == 1
    assert row.startup_time_median_ms == 800
    assert ViewerSession.objects.get(client_id="c-replay").startup_ms == 800


def test_no_startup_times_reads_as_none_not_zero(stream, send_batch):
    send_batch("c-none", watched())
    recompute()
    row = stats(stream)
    assert (row.startup_time_median_ms, row.startup_time_p95_ms, row.startup_sessions) == (
        None,
        None,
        0,
    )


def test_a_session_with_a_play_and_no_playing_time_is_an_exit_before_start(stream, send_batch):
    send_batch("c-left", [ev("play", 0)])  # asked to play, left before the first frame
    send_batch("c-watched", watched(900))  # played 30 s
    send_batch("c-paused", [ev("play", 0), ev("pause", 0)])  # nothing credited either
    send_batch("c-no-play", heartbeats(0, 15))  # no play at all: not an exit before start
    recompute()

    row = stats(stream)
    assert row.sessions == 4
    assert row.exits_before_start == 2


def test_playback_failure_rate_counts_sessions_with_a_fatal_error(stream, send_batch):
    fatal = {"code": "NETWORK", "fatal": True}
    send_batch("c-fatal", [*watched(), ev("error", 35, extra=fatal)])
    send_batch(
        "c-fatal-twice", [*watched(), ev("error", 31, extra=fatal), ev("error", 32, extra=fatal)]
    )
    send_batch("c-recovered", [*watched(), ev("error", 35, extra={"code": "X", "fatal": False})])
    send_batch("c-string", [*watched(), ev("error", 35, extra={"fatal": "true"})])  # not true
    send_batch("c-fine", watched())
    recompute()

    row = stats(stream)
    assert row.sessions == 5
    assert row.fatal_error_sessions == 2
    assert row.playback_failure_rate == pytest.approx(2 / 5)  # 0.4
    assert row.error_sessions == 4  # every error still counts for error_rate
    assert row.error_rate == pytest.approx(4 / 5)


def test_rebuffer_frequency_is_buffer_starts_per_minute_watched(stream, send_batch):
    # play 0, heartbeats to 60, buffer 60-65, play on to 90, buffer 90-95, heartbeats to
    # 120: playing 110 s + buffering 10 s = 120 s = 2 minutes watched, 2 rebuffers -> 1.0.
    send_batch(
        "c-buffers",
        [
            *watched(until=60),
            ev("buffer_start", 60),
            ev("buffer_end", 65),
            *heartbeats(75, 90),
            ev("buffer_start", 90),
            ev("buffer_end", 95),
            *heartbeats(105, 120),
        ],
    )
    # A second viewer watches 60 s without a rebuffer: 2 rebuffers over 3 minutes.
    send_batch("c-smooth", watched(until=60))
    recompute()

    row = stats(stream)
    assert row.tracked_watch_seconds == pytest.approx(180)
    assert row.rebuffer_count == 2
    assert row.rebuffer_frequency == pytest.approx(2 / 3)


def test_bot_sessions_count_in_no_video_quality_figure(stream, send_batch):
    send_batch("c-human", watched(1000))
    send_batch("c-bot", [ev("play", 0, extra={"startupMs": 9000})], ua=BOT_UA)
    recompute()
    row = stats(stream)
    assert (row.sessions, row.exits_before_start, row.startup_time_median_ms) == (1, 0, 1000)


def test_a_rerun_gives_the_same_video_quality_figures(stream, send_batch):
    send_batch("c-one", [ev("play", 0, extra={"startupMs": 1200})])
    send_batch("c-two", [*watched(3400), ev("error", 31, extra={"fatal": True})])
    recompute()
    first = stats(stream)
    assert stream_stats_recompute(full=True).ran
    again = stats(stream)
    for name in (
        "startup_time_median_ms",
        "startup_time_p95_ms",
        "exits_before_start",
        "playback_failure_rate",
        "rebuffer_frequency",
    ):
        assert getattr(again, name) == getattr(first, name), name
    assert (first.exits_before_start, first.playback_failure_rate) == (1, 0.5)


def test_range_rows_compute_startup_over_the_range_and_sum_the_rest(stream, send_batch, superuser):
    yesterday = T0 - timedelta(days=1)
    send_batch("c-y", [ev("play", 0, base=yesterday, extra={"startupMs": 1000})])
    send_batch("c-one", watched(2000))
    send_batch("c-two", [*watched(4000), ev("error", 31, extra={"fatal": True})])
    recompute()

    (row,) = stream_stats_list(user=superuser, date_from=DAY - timedelta(days=1), date_to=DAY)
    # Startups 1000, 2000, 4000 over both days: median 2000, p95 4000 (not a mean of days).
    assert row["startup_time_median_ms"] == 2000
    assert row["startup_time_p95_ms"] == 4000
    assert row["exits_before_start"] == 1
    assert row["playback_failure_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert row["rebuffer_frequency"] == 0


# --- Audience retention: GET /admin/analytics/streams/<key>/audience?day= ---------------

AUDIENCE = "/admin/analytics/streams/launch-party/audience"


def vod(stream, *, length: float = 600) -> None:
    """The stream's provider knows the video's length (as Bunny's `length`)."""
    provider = stream.providers.get()
    provider.config = {"length": length}
    provider.save()


def watched_to(video_seconds: float) -> list[dict]:
    """A play at 0 and heartbeats every 15 s of the video up to `video_seconds`."""
    times = [t for t in range(15, int(video_seconds) + 1, 15)]
    return [ev("play", 0), *[ev("heartbeat", t) for t in times]]


def audience(client, **params) -> dict:
    response = client.get(AUDIENCE, {"day": DAY.isoformat(), **params})
    assert response.status_code == 200, response.content
    return response.json()


def share_at(body: dict, percent: int) -> float:
    (point,) = [p for p in body["points"] if p["percent"] == percent]
    return point["share"]


def test_a_vod_watched_to_half_by_2_of_4_sessions_reads_half_at_the_50_percent_mark(
    stream, send_batch, admin_client_api
):
    vod(stream, length=600)
    send_batch("c-half-1", watched_to(300))  # 300 of 600 s: 50 %
    send_batch("c-half-2", watched_to(450))  # 75 %
    send_batch("c-quarter", watched_to(150))  # 25 %
    send_batch("c-left", [ev("play", 0)])  # 0 %
    recompute()

    body = audience(admin_client_api)
    assert body["sessions"] == 4
    assert body["duration_seconds"] == 600
    assert [p["percent"] for p in body["points"]] == list(range(101))
    assert share_at(body, 0) == 1.0
    assert share_at(body, 25) == 0.75
    assert share_at(body, 26) == 0.5
    assert share_at(body, 50) == 0.5
    assert share_at(body, 51) == 0.25
    assert share_at(body, 75) == 0.25
    assert share_at(body, 76) == 0.0
    assert share_at(body, 100) == 0.0


def test_the_duration_comes_from_extra_duration_when_the_provider_has_none(
    stream, send_batch, admin_client_api
):
    send_batch("c-all", [ev("play", 0, extra={"duration": 60}), *heartbeats(15, 30, 45, 60)])
    send_batch("c-half", [ev("play", 0, extra={"duration": 60}), *heartbeats(15, 30)])
    recompute()

    body = audience(admin_client_api)
    assert body["duration_seconds"] == 60
    assert (share_at(body, 50), share_at(body, 51), share_at(body, 100)) == (1.0, 0.5, 0.5)


def test_a_live_stream_without_a_duration_has_no_points(stream, send_batch, admin_client_api):
    send_batch("c-live", heartbeats(0, 15, 30))
    recompute()
    body = audience(admin_client_api)
    assert (body["sessions"], body["duration_seconds"], body["points"]) == (1, None, [])


def test_audience_as_csv_has_a_row_per_percent(stream, send_batch, admin_client_api):
    vod(stream, length=60)
    send_batch("c-half", [ev("play", 0), *heartbeats(15, 30)])
    recompute()
    response = admin_client_api.get(AUDIENCE, {"day": DAY.isoformat(), "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "percent,share"
    assert len(lines) == 102
    assert lines[1 + 50] == "50,1"
    assert lines[1 + 51] == "51,0"


@pytest.mark.parametrize("day", ["yesterday", "2026-13-01", "2026-02-30", "99999-01-01", "1"])
def test_a_bad_day_is_a_400_that_names_it(stream, admin_client_api, day):
    response = admin_client_api.get(AUDIENCE, {"day": day})
    assert response.status_code == 400
    assert "day" in response.json()["details"]


def test_audience_is_for_staff_who_may_see_the_stream(stream, client, staff_client):
    assert client.get(AUDIENCE, HTTP_ACCEPT="application/json").status_code in (401, 403)
    # Staff outside the stream's organizer do not see it.
    assert staff_client.get(AUDIENCE).status_code == 404
    assert staff_client.get("/admin/analytics/streams/no-such/audience").status_code == 404


def test_the_stream_page_shows_the_video_quality_figures_and_the_audience_curve(
    stream, send_batch, client, superuser
):
    vod(stream, length=60)
    send_batch("c-one", watched(1200))  # play + heartbeats to 30 s of a 60 s video
    send_batch("c-two", [*watched(3400, until=60), ev("error", 61, extra={"fatal": True})])
    send_batch("c-left", [ev("play", 0)])
    recompute()
    client.force_login(superuser)

    response = client.get(
        "/admin/analytics/streams/launch-party",
        {"from": DAY.isoformat(), "to": DAY.isoformat()},
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 200
    html = response.content.decode()
    rows = {
        name: text
        for name, text in re.findall(
            r'<tr data-vq="([a-z_0-9]+)"[^>]*><th scope="row">[^<]+</th>'
            r'<td class="stats-nowrap">([^<]+)</td>',
            html,
        )
    }
    assert rows == {
        "startup_median": "2.30 s",  # (1200 + 3400) / 2
        "startup_p95": "3.40 s",
        "exits_before_start": "1",
        "playback_failure_rate": "33.3%",  # 1 of 3 sessions
        "rebuffer_frequency": "0.00 / min",
    }
    assert "Audience retention on " + DAY.isoformat() in html
    assert 'class="stats-chart stats-chart-retention"' in html
    assert "3&nbsp;sessions" in html and "video 60&nbsp;s" in html
    # The curve's hover points: everyone at 0 %, c-one and c-two at 50 %, c-two at 100 %.
    assert "0% of the video: 100.0% of sessions" in html
    assert "50% of the video: 66.7% of sessions" in html
    assert "100% of the video: 33.3% of sessions" in html


@pytest.mark.parametrize(
    "extra",
    [
        {"startupMs": 1e308, "duration": 1e308, "fatal": 1},
        {"startupMs": {"ms": 900}, "duration": [60], "fatal": "yes"},
        {"startupMs": True, "duration": False, "fatal": None},
        {"startupMs": None, "duration": -60},
    ],
)
def test_odd_extras_read_as_missing_and_never_stop_the_aggregator(stream, send_batch, extra):
    send_batch("c-odd", [ev("play", 0, extra=extra), *heartbeats(15), ev("error", 20, extra=extra)])
    recompute()
    row = stats(stream)
    assert (row.sessions, row.startup_sessions, row.fatal_error_sessions) == (1, 0, 0)
    session = ViewerSession.objects.get(client_id="c-odd")
    assert session.video_duration in (None, 1e308)  # only a positive number is a duration
