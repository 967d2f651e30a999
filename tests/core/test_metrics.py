"""/metrics (SPEC §13): not public, the Prometheus text format, and each listed metric
counted where it happens: ingestion, requests, job runs, poller failures, the
aggregation lag and the open alerts."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from echonest_analytics.locks import job_lock
from streams.aggregation import LOCK_NAME, stream_stats_recompute
from streams.broadcast.models import Alert
from streams.broadcast.poller import POLL_LOCK, listeners_poll
from streams.models import Organizer, PlaybackBatch, Stream, StreamProvider

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"  # noqa: S105


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def stream_make(key: str = "launch-party") -> Stream:
    organizer, _ = Organizer.objects.get_or_create(slug="org", defaults={"name": "Org"})
    return Stream.objects.create(key=key, title=key, organizer=organizer, status="live")


def playback_batch(key: str, events: int) -> bytes:
    now = timezone.now()
    return json.dumps(
        {
            "streamId": key,
            "clientId": "c-metrics",
            "batchId": str(uuid.uuid4()),
            "events": [
                {
                    "type": "heartbeat",
                    "videoTime": 15.0 * i,
                    "ts": (now - timedelta(seconds=15 * (events - i))).isoformat(),
                }
                for i in range(events)
            ],
        }
    ).encode()


# --- not public ---------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_refuse_a_request_without_the_token(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"echonest_" not in response.content


def test_metrics_refuse_a_wrong_token(client):
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401


def test_metrics_answer_only_get(client):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- ingestion and requests ---------------------------------------------------------------


def test_ingestion_counts_batches_and_events_accepted_and_batches_rejected_by_reason(client):
    stream_make()
    before = scrape(client)
    accepted = client.post(
        "/analytics/events", playback_batch("launch-party", 3), content_type="application/json"
    )
    assert accepted.status_code == 202
    assert (
        client.post("/analytics/events", b"{not json", content_type="application/json").status_code
        == 400
    )
    assert (
        client.post(
            "/analytics/events", playback_batch("nope", 1), content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        client.post("/analytics/events", b"<xml/>", content_type="application/xml").status_code
        == 415
    )
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    batches = "echonest_ingest_batches_total"
    assert delta(batches, endpoint="playback", outcome="accepted", reason="") == 1
    assert delta(batches, endpoint="playback", outcome="rejected", reason="invalid") == 2
    assert (
        delta(batches, endpoint="playback", outcome="rejected", reason="unsupported_media_type")
        == 1
    )
    assert delta("echonest_ingest_events_total", endpoint="playback") == 3


def test_telemetry_ingestion_counts_the_events_it_logged(client):
    before = scrape(client)
    body = {"events": [{"event_type": "page_view", "user_id": "u1"}] * 2}
    response = client.post("/api/analytics/event", body, content_type="application/json")
    assert response.status_code == 200
    after = scrape(client)
    name = "echonest_ingest_events_total"
    assert value(after, name, endpoint="telemetry") - value(before, name, endpoint="telemetry") == 2


def test_request_latency_is_a_histogram_by_url_name(client, staff_client):
    before = scrape(client)
    assert staff_client.get("/api/analytics/usage?days=7").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)
    name = "echonest_http_request_duration_seconds_count"
    usage = {"view": "analytics-usage", "method": "GET"}
    assert value(after, name, **usage) - value(before, name, **usage) == 1
    unresolved = {"view": "unresolved", "method": "GET"}
    assert value(after, name, **unresolved) - value(before, name, **unresolved) == 1
    buckets = [
        v
        for (n, labels), v in after.items()
        if n == "echonest_http_request_duration_seconds_bucket"
        and dict(labels).get("view") == "analytics-usage"
    ]
    assert len(buckets) == 13  # 12 bounds and +Inf
    responses = "echonest_http_responses_total"
    assert value(after, responses, **usage, status="200") >= 1


# --- jobs -----------------------------------------------------------------------------------


def test_each_job_run_is_counted_by_outcome_with_its_duration(client):
    stream_stats_recompute()
    stream_stats_recompute()
    with pytest.raises(RuntimeError), job_lock("tests.failing-job"):
        raise RuntimeError("boom")
    with job_lock(LOCK_NAME) as first:
        assert first
        with job_lock(LOCK_NAME) as second:
            assert not second
    samples = scrape(client)
    runs = "echonest_job_runs_total"
    assert value(samples, runs, job_name=LOCK_NAME, outcome="ok") == 3
    assert value(samples, runs, job_name=LOCK_NAME, outcome="skipped") == 1
    assert value(samples, runs, job_name=LOCK_NAME, outcome="failed") == 0
    assert value(samples, runs, job_name="tests.failing-job", outcome="failed") == 1
    assert value(samples, "echonest_job_duration_seconds_count", job_name=LOCK_NAME) == 3
    assert (
        value(samples, "echonest_job_duration_seconds_bucket", job_name=LOCK_NAME, le="+Inf") == 3
    )
    assert value(samples, "echonest_job_duration_seconds_sum", job_name=LOCK_NAME) > 0
    assert value(samples, "echonest_job_last_success_timestamp_seconds", job_name=LOCK_NAME) > (
        timezone.now().timestamp() - 60
    )
    assert (
        "echonest_job_last_success_timestamp_seconds",
        (("job_name", "tests.failing-job"),),
    ) not in (samples)


def test_a_job_run_logs_its_job_outcome_and_duration(caplog):
    with caplog.at_level(logging.INFO, logger="echonest_analytics.locks"):
        stream_stats_recompute()
        with pytest.raises(ValueError), job_lock("tests.failing-job"):
            raise ValueError("bad input")
    runs = [r for r in caplog.records if hasattr(r, "outcome")]
    assert [(r.job, r.outcome) for r in runs] == [
        (LOCK_NAME, "ok"),
        ("tests.failing-job", "failed"),
    ]
    assert all(r.duration_seconds >= 0 for r in runs)
    assert runs[1].levelno == logging.ERROR
    assert runs[1].error == "ValueError: bad input"


def test_job_runs_in_json_logs_carry_job_outcome_and_duration(caplog, settings):
    from pythonjsonlogger.json import JsonFormatter

    formatter_config = dict(settings.LOGGING["formatters"]["json"])
    formatter_config.pop("()")
    formatter = JsonFormatter(**formatter_config)
    with caplog.at_level(logging.INFO, logger="echonest_analytics.locks"):
        with job_lock(LOCK_NAME):
            pass
    (record,) = [r for r in caplog.records if hasattr(r, "outcome")]
    line = json.loads(formatter.format(record))
    assert line["job"] == LOCK_NAME
    assert line["outcome"] == "ok"
    assert isinstance(line["duration_seconds"], float)
    assert line["level"] == "INFO"


# --- poller, lag, alerts ---------------------------------------------------------------------


def test_poller_failures_are_counted_per_encoder(client):
    from streams.broadcast.models import Station

    from ..broadcast.poller_support import closed_port_url

    stream = stream_make("radio-metrics")
    stream.kind = "audio"
    stream.save()
    station = Station.objects.create(stream=stream)
    StreamProvider.objects.create(
        stream=stream,
        provider="icecast",
        external_id="/live.mp3",
        config={"url": closed_port_url()},
    )
    listeners_poll()
    listeners_poll(now=timezone.now() + timedelta(seconds=30))
    samples = scrape(client)
    labels = {"station": station.key, "encoder": "/live.mp3", "failure": "server_unreachable"}
    assert value(samples, "echonest_poller_failures_total", **labels) == 2
    assert value(samples, "echonest_job_runs_total", job_name=POLL_LOCK, outcome="ok") == 2


def test_aggregation_lag_is_the_age_of_the_oldest_batch_not_yet_aggregated(client):
    stream_make()
    assert value(scrape(client), "echonest_aggregation_lag_seconds") == 0
    for _ in range(2):
        response = client.post(
            "/analytics/events", playback_batch("launch-party", 2), content_type="application/json"
        )
        assert response.status_code == 202
    oldest = PlaybackBatch.objects.order_by("id").first()
    PlaybackBatch.objects.filter(pk=oldest.pk).update(
        received_at=timezone.now() - timedelta(minutes=10)
    )
    samples = scrape(client)
    assert 600 <= value(samples, "echonest_aggregation_lag_seconds") < 660
    assert value(samples, "echonest_pending_batches") == 2
    stream_stats_recompute()
    samples = scrape(client)
    assert value(samples, "echonest_aggregation_lag_seconds") == 0
    assert value(samples, "echonest_pending_batches") == 0


def test_open_alerts_are_counted_by_kind(client):
    from streams.broadcast.models import Station

    station = Station.objects.create(stream=stream_make("radio-alerts"))
    now = timezone.now()
    for subject in ("/a.mp3", "/b.mp3"):
        Alert.objects.create(
            station=station, kind="stream_down", subject=subject, opened_at=now, message="down"
        )
    Alert.objects.create(
        station=station,
        kind="disk_low",
        subject="C:",
        opened_at=now - timedelta(hours=2),
        resolved_at=now - timedelta(hours=1),
        message="resolved",
    )
    samples = scrape(client)
    assert value(samples, "echonest_open_alerts", kind="stream_down") == 2
    assert value(samples, "echonest_open_alerts", kind="disk_low") == 0
    assert ("echonest_open_alerts", (("kind", "buffer_underrun"),)) in samples
    assert value(samples, "echonest_metrics_source_up", source="database") == 1
    assert value(samples, "echonest_metrics_source_up", source="redis") == 1
