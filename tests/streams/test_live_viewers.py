"""SPEC §6.5 live viewers now: sessions with an event in the last 2 × HEARTBEAT_INTERVAL
(2 × 15 s = 30 s), kept in Redis by ingestion, best effort (§6.3, §10), at
`GET /admin/analytics/streams/<key>/live` (staff, organizer boundary of §5.5) and over
all matching streams at `GET /admin/analytics/live` (the dashboard's figure).

Batches go in over HTTP like a player sends them; an event's time is `ts` corrected by
`sentAt`, so `ts = sentAt - 10 s` is an event 10 s before the batch arrived.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from echonest_analytics.redis import get_redis, redis_breaker
from streams.live_apis import LiveViewersOverviewApi, StreamLiveViewersApi
from streams.live_viewers import live_viewers_count, live_viewers_key
from streams.models import PlaybackEvent, Stream
from tests.core.test_output_serializers import assert_described
from tests.core.test_redis_faults import (  # noqa: F401 (private_redis is a fixture)
    TIMEOUT,
    free_port,
    point_redis_at,
    private_redis,
)

from .conftest import BOT_UA, DESKTOP_UA, batch

pytestmark = pytest.mark.django_db

WINDOW = 30  # 2 × HEARTBEAT_INTERVAL (15 s)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@pytest.fixture
def seen(client, django_capture_on_commit_callbacks):
    """POST one batch for `client_id` whose newest event is `ago` seconds old; the
    after-commit Redis write runs as it does in production."""

    def post(client_id: str, ago: float, *, stream_key: str = "launch-party", ua=DESKTOP_UA):
        now = datetime.now(UTC)
        events = [
            {"type": "play", "videoTime": 0, "ts": iso(now - timedelta(seconds=ago + 5))},
            {"type": "heartbeat", "videoTime": 5, "ts": iso(now - timedelta(seconds=ago))},
        ]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/analytics/events",
                json.dumps(batch(stream_key, client_id, events, sentAt=iso(now))),
                content_type="application/json",
                HTTP_USER_AGENT=ua,
            )
        assert response.status_code == 202, response.content
        return response

    return post


def live(api, key: str = "launch-party") -> dict:
    response = api.get(f"/admin/analytics/streams/{key}/live", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_client_seen_10_s_ago_counts_one_seen_2x_interval_plus_1_s_ago_does_not(
    seen, stream, admin_client_api
):
    seen("c-recent", 10)
    seen("c-gone", WINDOW + 1)
    body = live(admin_client_api)
    assert body["viewers"] == 1
    assert body["window_seconds"] == WINDOW
    assert body["stream_id"] == "launch-party"
    as_of = datetime.fromisoformat(body["as_of"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - as_of).total_seconds()) < 5


def test_two_clients_on_one_stream_are_2_and_another_stream_is_counted_apart(
    seen, stream, second_stream, admin_client_api
):
    seen("c-1", 3)
    seen("c-2", 12)
    seen("c-3", 5, stream_key="after-party")
    assert live(admin_client_api)["viewers"] == 2
    assert live(admin_client_api, "after-party")["viewers"] == 1


def test_one_client_sending_many_batches_is_one_viewer(seen, stream, admin_client_api):
    for ago in (20, 12, 4):
        seen("c-1", ago)
    assert live(admin_client_api)["viewers"] == 1


def test_a_late_batch_never_moves_a_client_back_out_of_the_window(
    seen, stream, admin_client_api, redis_client
):
    seen("c-1", 2)
    seen("c-1", 600)  # a batch that waited offline for ten minutes arrives after
    assert live(admin_client_api)["viewers"] == 1
    score = redis_client.zscore(live_viewers_key(stream.id), "c-1")
    assert datetime.now(UTC).timestamp() - score < 10


def test_a_batch_older_than_the_window_asks_redis_nothing_and_changes_no_figure(
    client, stream, admin_client_api, redis_client, django_capture_on_commit_callbacks
):
    def post(ago: float) -> list:
        now = datetime.now(UTC)
        events = [{"type": "heartbeat", "videoTime": 5, "ts": iso(now - timedelta(seconds=ago))}]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(
                "/analytics/events",
                json.dumps(batch("launch-party", "c-late", events, sentAt=iso(now))),
                content_type="application/json",
                HTTP_USER_AGENT=DESKTOP_UA,
            )
        assert response.status_code == 202, response.content
        return callbacks

    assert post(WINDOW + 5) == []  # its newest event is already out of the window
    assert PlaybackEvent.objects.filter(client_id="c-late").count() == 1
    assert not redis_client.exists(live_viewers_key(stream.id))
    assert live(admin_client_api)["viewers"] == 0
    assert len(post(WINDOW - 5)) == 1  # a fresh batch is noted as before
    assert live(admin_client_api)["viewers"] == 1


def test_bots_never_count(seen, stream, admin_client_api):
    seen("c-bot", 2, ua=BOT_UA)
    assert PlaybackEvent.objects.filter(client_id="c-bot").count() == 2
    assert live(admin_client_api)["viewers"] == 0


def test_the_window_follows_the_clock_and_the_heartbeat_interval(seen, stream, settings):
    seen("c-1", 10)
    now = datetime.now(UTC)
    assert live_viewers_count(stream_ids=[stream.id], now=now) == {stream.id: 1}
    # 19 s later it is 29 s old: still watching; 21 s later, 31 s old: gone.
    assert live_viewers_count(stream_ids=[stream.id], now=now + timedelta(seconds=19)) == {
        stream.id: 1
    }
    assert live_viewers_count(stream_ids=[stream.id], now=now + timedelta(seconds=21)) == {
        stream.id: 0
    }
    settings.HEARTBEAT_INTERVAL = 4  # window 8 s: an event 10 s old is no longer live
    assert live_viewers_count(stream_ids=[stream.id], now=now) == {stream.id: 0}


def test_the_key_expires_once_nobody_is_watching(seen, stream, redis_client):
    seen("c-1", 1)
    ttl = redis_client.ttl(live_viewers_key(stream.id))
    assert 0 < ttl <= WINDOW + 1
    seen("c-2", 1)
    # Members older than the window are trimmed by the next write.
    redis_client.zadd(live_viewers_key(stream.id), {"c-old": 1000.0})
    seen("c-3", 1)
    assert set(redis_client.zrange(live_viewers_key(stream.id), 0, -1)) == {"c-1", "c-2", "c-3"}


def test_a_retried_batch_is_answered_again_and_changes_nothing(
    client, stream, admin_client_api, django_capture_on_commit_callbacks
):
    now = datetime.now(UTC)
    body = json.dumps(
        batch(
            "launch-party",
            "c-1",
            [{"type": "heartbeat", "videoTime": 1, "ts": iso(now - timedelta(seconds=5))}],
            sentAt=iso(now),
            batchId="5b0c2a6e-3f1d-4c8e-9a51-0d2f7c1e9b44",
        )
    )
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(
                "/analytics/events",
                body,
                content_type="application/json",
                HTTP_USER_AGENT=DESKTOP_UA,
            )
        assert response.status_code == 202
    assert len(callbacks) == 0  # the retry stored nothing and noted nothing
    assert live(admin_client_api)["viewers"] == 1


# --- Redis down: ingestion goes on, the figure is unknown ------------------------------


def test_with_redis_down_ingestion_still_stores_and_the_figure_reads_unknown(
    seen, stream, settings, admin_client_api, caplog
):
    point_redis_at(settings, free_port())  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="streams.live_viewers"):
        seen("c-1", 2)
    assert PlaybackEvent.objects.filter(stream=stream).count() == 2
    assert "live viewers: Redis failed" in caplog.text
    assert not redis_breaker.available()
    # While the breaker is open Redis is not asked again; the API says "unknown".
    seen("c-2", 2)
    assert PlaybackEvent.objects.filter(stream=stream).count() == 4
    assert live(admin_client_api)["viewers"] is None


def test_once_redis_is_back_viewers_count_again(seen, stream, settings, admin_client_api):
    url = settings.REDIS_URL
    point_redis_at(settings, free_port())
    seen("c-1", 2)
    settings.REDIS_URL = url
    get_redis.cache_clear()
    redis_breaker.reset()
    seen("c-2", 2)
    assert live(admin_client_api)["viewers"] == 1  # c-1 went in while Redis was away


# --- who may read it ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/analytics/streams/launch-party/live", "/admin/analytics/live"]
)
def test_anonymous_gets_401_and_a_user_who_is_not_staff_403(path, stream, django_user_model):
    assert APIClient().get(path).status_code in (401, 403)
    assert APIClient().get(path, HTTP_AUTHORIZATION="Token nope").status_code == 401
    user = django_user_model.objects.create_user("fan", "fan@example.com", "pw-fan-123")
    fan = APIClient()
    fan.force_authenticate(user)
    response = fan.get(path)
    assert response.status_code == 403
    assert "viewers" not in response.json()


def test_an_unknown_stream_is_404(admin_client_api, stream):
    response = admin_client_api.get("/admin/analytics/streams/no-such-stream/live")
    assert response.status_code == 404
    assert "no-such-stream" in response.json()["detail"]


def test_staff_of_another_organizer_get_404_and_see_none_of_its_viewers(
    seen, stream, other_organizer, django_user_model
):
    other = Stream.objects.create(key="other-show", title="Other show", organizer=other_organizer)
    seen("c-1", 2)
    seen("c-2", 2, stream_key="other-show")
    member = django_user_model.objects.create_user("b", "b@example.com", "pw", is_staff=True)
    other_organizer.members.add(member)
    api = APIClient()
    api.force_authenticate(member)
    assert api.get("/admin/analytics/streams/launch-party/live").status_code == 404
    assert live(api, other.key)["viewers"] == 1
    overview = api.get("/admin/analytics/live").json()
    assert overview["viewers"] == 1
    assert [s["stream_id"] for s in overview["streams"]] == ["other-show"]


# --- the dashboard's figure over all matching streams ---------------------------------


def test_overview_adds_up_the_streams_most_watched_first_and_filters_by_organizer(
    seen, stream, second_stream, other_organizer, admin_client_api
):
    Stream.objects.create(key="other-show", title="Other show", organizer=other_organizer)
    Stream.objects.create(key="quiet", title="Quiet", organizer=other_organizer)
    seen("c-1", 2)
    seen("c-2", 2, stream_key="after-party")
    seen("c-3", 2, stream_key="after-party")
    seen("c-4", 2, stream_key="other-show")
    seen("c-5", WINDOW + 5, stream_key="quiet")
    body = admin_client_api.get("/admin/analytics/live").json()
    assert body["viewers"] == 4
    assert body["organizer"] is None
    assert body["streams"] == [
        {"stream_id": "after-party", "title": "After party", "viewers": 2},
        {"stream_id": "launch-party", "title": "Launch party", "viewers": 1},
        {"stream_id": "other-show", "title": "Other show", "viewers": 1},
    ]
    nightjar = admin_client_api.get("/admin/analytics/live", {"organizer": "nightjar"}).json()
    assert nightjar["viewers"] == 3
    assert [s["stream_id"] for s in nightjar["streams"]] == ["after-party", "launch-party"]


@pytest.mark.parametrize("organizer", ["no such slug", "x" * 101, "nul\x00"])
def test_overview_bad_organizer_is_400_naming_it(admin_client_api, organizer):
    response = admin_client_api.get("/admin/analytics/live", {"organizer": organizer})
    assert response.status_code == 400
    assert "organizer" in response.json()["details"]


def test_overview_empty_organizer_is_every_stream_as_on_the_dashboard(admin_client_api):
    response = admin_client_api.get("/admin/analytics/live", {"organizer": ""})
    assert response.status_code == 200
    assert response.json()["organizer"] is None


def test_csv_of_both(seen, stream, admin_client_api):
    seen("c-1", 2)
    one = admin_client_api.get("/admin/analytics/streams/launch-party/live", {"format": "csv"})
    assert one.status_code == 200
    rows = list(csv.reader(io.StringIO(one.content.decode())))
    assert rows[0] == ["stream_id", "viewers", "as_of", "window_seconds"]
    assert rows[1][:2] == ["launch-party", "1"] and rows[1][3] == "30"
    assert 'filename="stream-launch-party-live.csv"' in one["Content-Disposition"]
    every = admin_client_api.get("/admin/analytics/live", {"format": "csv"})
    assert list(csv.reader(io.StringIO(every.content.decode()))) == [
        ["stream_id", "title", "viewers"],
        ["launch-party", "Launch party", "1"],
    ]


def test_output_serializers_describe_the_answers(seen, stream, admin_client_api):
    seen("c-1", 2)
    assert_described(StreamLiveViewersApi.OutputSerializer, live(admin_client_api))
    assert_described(
        LiveViewersOverviewApi.OutputSerializer,
        admin_client_api.get("/admin/analytics/live").json(),
    )


def test_schema_documents_both_endpoints(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    one = schema["paths"]["/admin/analytics/streams/{key}/live"]["get"]
    assert {"200", "401", "403", "404"} <= set(one["responses"])
    fields = schema["components"]["schemas"]["StreamLiveViewers"]["properties"]
    assert {"viewers", "as_of"} <= set(fields)
    assert fields["viewers"]["nullable"] is True
    assert "2 × HEARTBEAT_INTERVAL" in fields["viewers"]["description"]
    assert "/admin/analytics/live" in schema["paths"]


# --- on the pages -------------------------------------------------------------------


def test_stream_page_and_dashboard_show_the_figure_with_its_refresh(
    seen, stream, second_stream, client, superuser
):
    seen("c-1", 2)
    seen("c-2", 2, stream_key="after-party")
    seen("c-3", 2, stream_key="after-party")
    client.force_login(superuser)
    page = client.get("/admin/analytics/streams/launch-party", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-live-url="/admin/analytics/streams/launch-party/live"' in html
    assert 'data-refresh-seconds="15"' in html
    assert '<strong class="live-value" data-live="viewers">1</strong>' in html
    assert "streams/live-viewers.js" in html
    dashboard = client.get("/admin/analytics/streams", HTTP_ACCEPT="text/html").content.decode()
    assert 'data-live-url="/admin/analytics/live"' in dashboard
    assert '<strong class="live-value" data-live="viewers">3</strong>' in dashboard
    assert dashboard.index('After party</a> <span class="live-count">2') < dashboard.index(
        'Launch party</a> <span class="live-count">1'
    )
    filtered = client.get(
        "/admin/analytics/streams", {"organizer": "nightjar"}, HTTP_ACCEPT="text/html"
    ).content.decode()
    assert 'data-live-url="/admin/analytics/live?organizer=nightjar"' in filtered


def test_pages_still_render_with_redis_down(stream, client, superuser, settings):
    point_redis_at(settings, free_port())
    client.force_login(superuser)
    page = client.get("/admin/analytics/streams/launch-party", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert "live figures unavailable (Redis)" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_hung_redis_costs_players_a_few_timeouts_not_one_per_batch(
    client,
    stream,
    settings,
    private_redis,  # noqa: F811 (the fixture imported above)
):
    proc, port = private_redis
    point_redis_at(settings, port)
    settings.REDIS_BREAKER_SECONDS = 60  # every post below falls in one cooldown
    assert get_redis().ping()
    proc.send_signal(signal.SIGSTOP)
    now = datetime.now(UTC)
    started = time.monotonic()
    statuses = [
        client.post(
            "/analytics/events",
            json.dumps(
                batch(
                    "launch-party",
                    f"c-{n}",
                    [{"type": "heartbeat", "videoTime": 1, "ts": iso(now)}],
                    sentAt=iso(now),
                )
            ),
            content_type="application/json",
            HTTP_USER_AGENT=DESKTOP_UA,
        ).status_code
        for n in range(20)
    ]
    elapsed = time.monotonic() - started
    assert statuses == [202] * 20
    assert PlaybackEvent.objects.filter(stream=stream).count() == 20
    # The first batch waits out one socket timeout (0.5 s); the breaker spares the rest.
    assert elapsed < 6 * TIMEOUT, f"20 posts took {elapsed:.1f} s"
    proc.send_signal(signal.SIGCONT)
    redis_breaker.reset()
    # Only the first batch asked Redis (its command may run once Redis wakes up).
    assert live_viewers_count(stream_ids=[stream.id])[stream.id] <= 1
