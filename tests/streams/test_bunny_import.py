"""Bunny Stream statistics import (SPEC §4 BunnyVideoStats, §5.5 bunny-sync, §6.2 Bunny rule,
§7 Bunny import), run against a real local HTTP stand-in of the Bunny API.

Only Bunny is faked, at the HTTP boundary: `requests`, urllib3's retries and our code run
for real against a `ThreadingHTTPServer` on 127.0.0.1 that answers Bunny's response shape.
"""

from __future__ import annotations

import io
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from streams.aggregation import stream_stats_recompute
from streams.bunny import BunnyNotConfigured, bunny_stats_import
from streams.models import BunnyVideoStats, Stream, StreamProvider, StreamStats

from .conftest import MOBILE_UA, T0, heartbeats

pytestmark = pytest.mark.django_db

API_KEY = "test-access-key-5f1e"
LIBRARY_ID = "4242"
VIDEO_A = "0d4c7a52-1a3e-4f7b-b2d5-8c9e0f1a2b3c"
VIDEO_B = "7e1b9f30-55aa-4c1d-9e0b-3a2c4d5e6f70"
VIDEO_C = "c3a9d1e2-0b4f-4a6d-8e7c-1f2a3b4c5d6e"
DAY = T0.date()  # two days ago: inside the 3-day import window and the retention
SYNC_URL = "/admin/analytics/streams/bunny-sync"


def bunny_payload(day: date, *, views: int, watch: float, score: int = 55) -> dict:
    """Bunny's real response shape for one day: chart keys with and without a trailing Z."""
    return {
        "viewsChart": {f"{day.isoformat()}T00:00:00Z": views},
        "watchTimeChart": {f"{day.isoformat()}T00:00:00": watch},
        "countryViewCounts": {"US": 5, "DE": 2},
        "countryWatchTime": {"US": 1200, "DE": 300},
        "engagementScore": score,
    }


@dataclass
class SeenRequest:
    path: str
    query: dict[str, str]
    access_key: str | None


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeBunny:
    """What the stand-in answers and what it was asked.

    `figures[guid]` gives (views, watch seconds) for every day asked; `script(guid, ...)`
    queues replies that go out first, one per request for that video.
    """

    base_url: str = ""
    requests: list[SeenRequest] = field(default_factory=list)
    figures: dict[str, tuple[int, float]] = field(default_factory=dict)
    scripted: dict[str, deque[Reply]] = field(default_factory=dict)
    bodies: dict[str, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, guid: str, *replies: Reply) -> None:
        self.scripted.setdefault(guid, deque()).extend(replies)

    def requests_for(self, guid: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.query.get("videoGuid") == guid]

    def reply(self, path: str, query: dict[str, str], access_key: str | None) -> Reply:
        with self.lock:
            self.requests.append(SeenRequest(path, query, access_key))
            guid = query.get("videoGuid", "")
            queue = self.scripted.get(guid)
            if queue:
                return queue.popleft()
        if access_key != API_KEY:
            return Reply(401, b'{"Message": "Unauthorized"}')
        if guid in self.bodies:
            return Reply(200, json.dumps(self.bodies[guid]).encode())
        if guid not in self.figures:
            return Reply(404, b'{"Message": "Video not found"}')
        day = datetime.fromisoformat(query["dateFrom"].removesuffix("Z")).date()
        views, watch = self.figures[guid]
        return Reply(200, json.dumps(bunny_payload(day, views=views, watch=watch)).encode())


def ok(body: dict) -> Reply:
    return Reply(200, json.dumps(body).encode())


@pytest.fixture
def fake_bunny(settings):
    fake = FakeBunny()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 — the http.server hook's name
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            reply = fake.reply(url.path, query, self.headers.get("AccessKey"))
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.BUNNY_API_BASE_URL = fake.base_url
    settings.BUNNY_API_KEY = API_KEY
    settings.BUNNY_LIBRARY_ID = LIBRARY_ID
    settings.BUNNY_RETRY_BACKOFF = 0.01
    settings.BUNNY_RETRIES = 3
    settings.BUNNY_TIMEOUT = 5.0
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def bunny_stream(organizer, key: str, guid: str, *, config: dict | None = None) -> Stream:
    stream = Stream.objects.create(key=key, title=key.replace("-", " "), organizer=organizer)
    StreamProvider.objects.create(
        stream=stream,
        provider=StreamProvider.Provider.BUNNY_STREAM,
        external_id=guid,
        config=config or {},
        is_primary=True,
    )
    return stream


@pytest.fixture
def launch(stream):
    """The conftest's `launch-party` stream, served by Bunny Stream (video A, library 4242)."""
    StreamProvider.objects.filter(stream=stream).update(is_primary=False)
    StreamProvider.objects.create(
        stream=stream,
        provider=StreamProvider.Provider.BUNNY_STREAM,
        external_id=VIDEO_A,
        is_primary=True,
    )
    return stream


def import_one_day(**kwargs):
    return bunny_stats_import(days=1, today=DAY, **kwargs)


# --- The request -----------------------------------------------------------------------


def test_request_asks_one_utc_day_of_one_video_with_the_access_key(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    summary = import_one_day()

    assert summary.as_dict() == {"videos": 1, "days_imported": 1, "failed": 0, "failures": []}
    assert len(fake_bunny.requests) == 1
    seen = fake_bunny.requests[0]
    assert seen.path == f"/library/{LIBRARY_ID}/statistics"
    assert seen.access_key == API_KEY
    assert seen.query == {
        "dateFrom": f"{DAY.isoformat()}T00:00:00Z",
        "dateTo": f"{DAY.isoformat()}T23:59:59Z",
        "videoGuid": VIDEO_A,
        "hourly": "false",
    }


def test_import_asks_each_of_the_last_three_days_once_per_video(fake_bunny, launch, organizer):
    bunny_stream(organizer, "after-show", VIDEO_B)
    fake_bunny.figures.update({VIDEO_A: (1, 10), VIDEO_B: (2, 20)})
    today = DAY + timedelta(days=2)

    summary = bunny_stats_import(today=today)

    assert summary.days_imported == 6
    asked = sorted((r.query["videoGuid"], r.query["dateFrom"][:10]) for r in fake_bunny.requests)
    days = [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert asked == sorted((guid, day) for guid in (VIDEO_A, VIDEO_B) for day in days)
    assert BunnyVideoStats.objects.count() == 6


def test_library_id_in_the_provider_config_overrides_the_setting(fake_bunny, organizer):
    bunny_stream(organizer, "own-library", VIDEO_A, config={"library_id": "777"})
    bunny_stream(organizer, "default-library", VIDEO_B)
    fake_bunny.figures.update({VIDEO_A: (1, 10), VIDEO_B: (2, 20)})

    import_one_day()

    paths = {r.query["videoGuid"]: r.path for r in fake_bunny.requests}
    assert paths == {
        VIDEO_A: "/library/777/statistics",
        VIDEO_B: f"/library/{LIBRARY_ID}/statistics",
    }
    assert set(BunnyVideoStats.objects.values_list("library_id", "video_guid")) == {
        ("777", VIDEO_A),
        (LIBRARY_ID, VIDEO_B),
    }


def test_streams_of_other_providers_are_not_asked(fake_bunny, stream):
    summary = import_one_day()  # `stream` is an HLS stream

    assert fake_bunny.requests == []
    assert summary.videos == 0 and summary.days_imported == 0


# --- What is stored --------------------------------------------------------------------


def test_one_row_per_library_video_day_with_every_figure_and_the_raw_payload(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    import_one_day()

    row = BunnyVideoStats.objects.get()
    assert (row.library_id, row.video_guid, row.day) == (LIBRARY_ID, VIDEO_A, DAY)
    assert row.views == 12
    assert row.watch_time_seconds == 3600
    assert row.country_views == {"US": 5, "DE": 2}
    assert row.country_watch_time == {"US": 1200, "DE": 300}
    assert row.engagement_score == 55
    assert row.raw_payload == bunny_payload(DAY, views=12, watch=3600)
    assert row.fetched_at is not None


def test_chart_points_count_with_and_without_a_trailing_z_and_only_on_their_day(fake_bunny, launch):
    day = DAY.isoformat()
    next_day = (DAY + timedelta(days=1)).isoformat()
    fake_bunny.bodies[VIDEO_A] = {
        "viewsChart": {f"{day}T00:00:00Z": 7, f"{day}T12:00:00": 5, f"{next_day}T00:00:00Z": 100},
        "watchTimeChart": {f"{day}T00:00:00": 600, f"{day}T18:00:00Z": 300.5},
        "countryViewCounts": {},
        "countryWatchTime": {},
        "engagementScore": 40,
    }

    import_one_day()

    row = BunnyVideoStats.objects.get()
    assert row.views == 12  # 7 (Z) + 5 (no Z); the next day's 100 is not this day's
    assert row.watch_time_seconds == 900.5  # 600 (no Z) + 300.5 (Z)


def test_rerun_updates_the_same_rows_without_duplicates(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (12, 3600)
    bunny_stats_import(days=3, today=DAY)
    first_fetch = BunnyVideoStats.objects.get(day=DAY).fetched_at
    fake_bunny.figures[VIDEO_A] = (20, 5400)

    bunny_stats_import(days=3, today=DAY)

    assert BunnyVideoStats.objects.count() == 3
    row = BunnyVideoStats.objects.get(day=DAY)
    assert (row.views, row.watch_time_seconds) == (20, 5400)
    assert row.fetched_at > first_fetch
    assert StreamStats.objects.filter(stream=launch).count() == 3


# --- SPEC §6.2: a Bunny stream's day counts the larger watch time -------------------------


@pytest.fixture
def tracked_60s(launch, send_batch):
    """One viewer, heartbeats at 0/15/30/45 s on DAY: tracked total 60 s (§6.2 reference)."""
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    stream_stats_recompute()
    stats = StreamStats.objects.get(stream=launch, day=DAY)
    assert (stats.total_watch_seconds, stats.unique_viewers) == (60, 1)
    return launch


def test_bunny_watch_time_above_the_tracked_one_becomes_the_day_total(fake_bunny, tracked_60s):
    fake_bunny.figures[VIDEO_A] = (3, 600)

    import_one_day()

    stats = StreamStats.objects.get(stream=tracked_60s, day=DAY)
    assert stats.total_watch_seconds == 600
    assert stats.avg_watch_seconds == 600  # total / 1 unique viewer
    assert stats.tracked_watch_seconds == 60  # our own figure is kept alongside


def test_bunny_watch_time_below_the_tracked_one_leaves_the_tracked_total(fake_bunny, tracked_60s):
    fake_bunny.figures[VIDEO_A] = (1, 10)

    import_one_day()

    stats = StreamStats.objects.get(stream=tracked_60s, day=DAY)
    assert stats.total_watch_seconds == 60
    assert stats.avg_watch_seconds == 60
    assert BunnyVideoStats.objects.get().watch_time_seconds == 10


def test_a_later_aggregation_run_keeps_the_bunny_max(fake_bunny, tracked_60s, send_batch):
    fake_bunny.figures[VIDEO_A] = (3, 600)
    import_one_day()
    send_batch("c-2", heartbeats(0, 15, 30, 45), ua=MOBILE_UA)  # tracked becomes 120 s

    stream_stats_recompute()

    stats = StreamStats.objects.get(stream=tracked_60s, day=DAY)
    assert stats.tracked_watch_seconds == 120
    assert stats.unique_viewers == 2
    assert stats.total_watch_seconds == 600
    assert stats.avg_watch_seconds == 300  # 600 / 2 viewers

    stream_stats_recompute(full=True)

    assert StreamStats.objects.get(stream=tracked_60s, day=DAY).total_watch_seconds == 600


def test_a_bunny_day_without_tracked_events_gets_bunny_watch_time(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (4, 900)

    import_one_day()

    stats = StreamStats.objects.get(stream=launch, day=DAY)
    assert (stats.total_watch_seconds, stats.tracked_watch_seconds) == (900, 0)
    assert stats.unique_viewers == 0 and stats.avg_watch_seconds == 0


# --- Retries and failures ----------------------------------------------------------------


def test_429_with_retry_after_is_retried_and_the_import_succeeds(fake_bunny, launch):
    fake_bunny.script(VIDEO_A, Reply(429, b'{"Message": "slow down"}', {"Retry-After": "0"}))
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    summary = import_one_day()

    assert len(fake_bunny.requests) == 2
    assert summary.as_dict()["failed"] == 0 and summary.days_imported == 1
    assert BunnyVideoStats.objects.get().watch_time_seconds == 3600


def test_503_is_retried_and_the_import_succeeds(fake_bunny, launch):
    fake_bunny.script(VIDEO_A, Reply(503, b"Service Unavailable"))
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    summary = import_one_day()

    assert len(fake_bunny.requests) == 2
    assert summary.failures == [] and summary.days_imported == 1
    assert BunnyVideoStats.objects.get().views == 12


def test_a_5xx_that_persists_gives_up_after_the_configured_retries(fake_bunny, launch):
    fake_bunny.script(VIDEO_A, *[Reply(502, b"Bad Gateway")] * 10)

    summary = import_one_day()

    assert len(fake_bunny.requests) == 1 + 3  # BUNNY_RETRIES = 3
    assert summary.failures == [
        {"stream": "launch-party", "video": VIDEO_A, "day": DAY.isoformat(), "error": "HTTP 502"}
    ]
    assert BunnyVideoStats.objects.count() == 0


def test_401_is_not_retried_and_is_reported_in_the_summary(fake_bunny, launch, settings):
    settings.BUNNY_API_KEY = "a-revoked-key"

    summary = import_one_day()

    assert len(fake_bunny.requests) == 1
    assert fake_bunny.requests[0].access_key == "a-revoked-key"
    assert summary.as_dict() == {
        "videos": 1,
        "days_imported": 0,
        "failed": 1,
        "failures": [
            {
                "stream": "launch-party",
                "video": VIDEO_A,
                "day": DAY.isoformat(),
                "error": "HTTP 401",
            }
        ],
    }
    assert BunnyVideoStats.objects.count() == 0
    assert StreamStats.objects.count() == 0


@pytest.mark.parametrize(
    ("bad_reply", "error"),
    [
        (Reply(401, b'{"Message": "Unauthorized"}'), "HTTP 401"),
        (Reply(404, b'{"Message": "Video not found"}'), "HTTP 404"),
        (Reply(200, b"<html>maintenance</html>"), "response is not JSON"),
        (Reply(200, b"[1, 2, 3]"), "response is not a JSON object"),
    ],
)
def test_one_bad_video_does_not_stop_the_good_ones(fake_bunny, launch, organizer, bad_reply, error):
    bunny_stream(organizer, "bad-video", VIDEO_B)
    bunny_stream(organizer, "after-show", VIDEO_C)
    fake_bunny.figures.update({VIDEO_A: (12, 3600), VIDEO_B: (1, 1), VIDEO_C: (8, 1800)})
    fake_bunny.script(VIDEO_B, bad_reply)

    summary = import_one_day()

    assert summary.videos == 3
    assert summary.days_imported == 2
    assert summary.failures == [
        {"stream": "bad-video", "video": VIDEO_B, "day": DAY.isoformat(), "error": error}
    ]
    assert len(fake_bunny.requests_for(VIDEO_B)) == 1  # none of these is retried
    stored = dict(BunnyVideoStats.objects.values_list("video_guid", "watch_time_seconds"))
    assert stored == {VIDEO_A: 3600, VIDEO_C: 1800}


def test_a_failed_day_does_not_stop_the_other_days_of_that_video(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (12, 3600)
    fake_bunny.script(VIDEO_A, Reply(404, b"{}"))  # the first day asked (today)

    summary = bunny_stats_import(days=3, today=DAY)

    assert summary.days_imported == 2
    assert [f["day"] for f in summary.failures] == [DAY.isoformat()]
    assert set(BunnyVideoStats.objects.values_list("day", flat=True)) == {
        DAY - timedelta(days=1),
        DAY - timedelta(days=2),
    }


def test_unreachable_bunny_is_reported_not_raised(settings, launch):
    settings.BUNNY_API_KEY = API_KEY
    settings.BUNNY_LIBRARY_ID = LIBRARY_ID
    settings.BUNNY_API_BASE_URL = "http://127.0.0.1:9"  # discard port: connection refused
    settings.BUNNY_RETRIES = 1
    settings.BUNNY_RETRY_BACKOFF = 0.01

    summary = import_one_day()

    assert summary.days_imported == 0
    assert len(summary.failures) == 1
    assert summary.failures[0]["error"].startswith("unreachable")


def test_import_without_an_api_key_refuses_to_run(settings, launch):
    settings.BUNNY_API_KEY = ""

    with pytest.raises(BunnyNotConfigured, match="BUNNY_API_KEY"):
        import_one_day()


# --- POST /admin/analytics/streams/bunny-sync (SPEC §5.5) ----------------------------------


def test_sync_answers_501_with_a_message_when_bunny_is_not_configured(
    fake_bunny, launch, staff_client, settings
):
    settings.BUNNY_API_KEY = ""

    response = staff_client.post(SYNC_URL)

    assert response.status_code == 501
    assert "BUNNY_API_KEY" in response.json()["error"]
    assert fake_bunny.requests == []


def test_sync_imports_and_answers_the_summary_for_staff(fake_bunny, launch, staff_client):
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    response = staff_client.post(f"{SYNC_URL}?days=2")

    assert response.status_code == 200
    assert response.json() == {"videos": 1, "days_imported": 2, "failed": 0, "failures": []}
    assert len(fake_bunny.requests) == 2
    assert BunnyVideoStats.objects.count() == 2


def test_sync_reports_a_failing_video_in_its_answer(fake_bunny, launch, staff_client):
    fake_bunny.script(VIDEO_A, Reply(401, b"{}"))
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    response = staff_client.post(f"{SYNC_URL}?days=1")

    assert response.status_code == 200
    body = response.json()
    assert body["failed"] == 1 and body["days_imported"] == 0
    assert body["failures"][0]["error"] == "HTTP 401"


def test_sync_refuses_anonymous_callers_and_asks_bunny_nothing(fake_bunny, launch, api_client):
    fake_bunny.figures[VIDEO_A] = (12, 3600)

    response = api_client.post(SYNC_URL)

    assert response.status_code in (401, 403)
    assert fake_bunny.requests == []
    assert BunnyVideoStats.objects.count() == 0


def test_sync_refuses_logged_in_users_who_are_not_staff(
    fake_bunny, launch, api_client, django_user_model
):
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw-12345")
    api_client.force_authenticate(user)

    response = api_client.post(SYNC_URL)

    assert response.status_code == 403
    assert fake_bunny.requests == []


@pytest.mark.parametrize("days", ["0", "31", "three"])
def test_sync_rejects_days_outside_1_to_30(fake_bunny, launch, staff_client, days):
    response = staff_client.post(f"{SYNC_URL}?days={days}")

    assert response.status_code == 400
    assert "days" in response.json()["details"]
    assert fake_bunny.requests == []


# --- manage.py import_bunny_stats ----------------------------------------------------------


def test_command_imports_and_prints_a_summary(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (12, 3600)
    out, err = io.StringIO(), io.StringIO()

    call_command("import_bunny_stats", "--days", "2", stdout=out, stderr=err)

    assert "Imported 2 video-days for 1 videos; 0 failures." in out.getvalue()
    assert err.getvalue() == ""
    assert BunnyVideoStats.objects.count() == 2


def test_command_lists_each_failure(fake_bunny, launch):
    fake_bunny.script(VIDEO_A, Reply(404, b"{}"))
    fake_bunny.figures[VIDEO_A] = (12, 3600)
    out, err = io.StringIO(), io.StringIO()

    call_command("import_bunny_stats", "--days", "1", stdout=out, stderr=err)

    assert "1 failures" in out.getvalue()
    assert "HTTP 404" in err.getvalue() and VIDEO_A in err.getvalue()


def test_command_fails_clearly_when_bunny_is_not_configured(settings, launch):
    settings.BUNNY_API_KEY = ""

    with pytest.raises(CommandError, match="BUNNY_API_KEY"):
        call_command("import_bunny_stats", stdout=io.StringIO())


def test_command_rejects_days_out_of_range(fake_bunny, launch):
    with pytest.raises(CommandError, match="--days"):
        call_command("import_bunny_stats", "--days", "0", stdout=io.StringIO())
    assert fake_bunny.requests == []


def test_fetched_at_is_an_aware_utc_time(fake_bunny, launch):
    fake_bunny.figures[VIDEO_A] = (1, 1)
    before = datetime.now(UTC)

    import_one_day()

    fetched = BunnyVideoStats.objects.get().fetched_at
    assert before <= fetched <= datetime.now(UTC)
