"""Prometheus metrics (SPEC §13): every metric the service exports, and `/metrics`.

A scrape gathers three sources:

- Counted in the web process with prometheus-client: ingestion batches and events,
  request latency. Under gunicorn's several workers prometheus-client's multiprocess
  mode sums them over the workers (`PROMETHEUS_MULTIPROC_DIR`, which gunicorn.conf.py
  sets); without it (runserver, the embedded default) the process's own registry serves.
- Counted in Redis by whichever process did the work: job runs (Celery workers, beat's
  eager tasks, management commands) and poller failures. Those processes may run on
  other machines than the web, so a shared file directory would not reach them; Redis
  is what every process already shares. A few commands per job run, never per request.
- Computed from the database at scrape time: the age of the oldest batch not yet
  aggregated and the open alerts. They are the truth, so they need no counting.

`/metrics` is off until `METRICS_TOKEN` is set (404), and then answers only a request
carrying `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise).
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .redis import get_redis

logger = logging.getLogger(__name__)

# --- counted in the web process ---------------------------------------------------------

INGEST_BATCHES = Counter(
    "echonest_ingest_batches",
    "Ingestion batches answered, by endpoint, outcome (accepted or rejected) and reason.",
    ["endpoint", "outcome", "reason"],
)
INGEST_EVENTS = Counter(
    "echonest_ingest_events",
    "Events stored (or acknowledged again on a retried batch), by endpoint.",
    ["endpoint"],
)
REQUEST_SECONDS = Histogram(
    "echonest_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL name and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RESPONSES = Counter(
    "echonest_http_responses",
    "Responses by URL name, method and status code.",
    ["view", "method", "status"],
)

# Why a batch was refused, from the status the endpoint answered (SPEC §5).
REJECTION_REASONS = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    503: "database_unavailable",
}


@functools.cache
def _child(metric, *labels: str):
    """`metric.labels(*labels)`, kept: prometheus-client's lookup costs ~7 µs, the
    increment itself ~3 µs (multiprocess mode). The label sets are bounded (URL names,
    methods, status codes, endpoints), so the cache is too."""
    return metric.labels(*labels)


def ingest_counted(*, endpoint: str, status: int, events: int) -> None:
    """Count one answered ingestion request: two in-memory increments, nothing more."""
    if status < 300:
        _child(INGEST_BATCHES, endpoint, "accepted", "").inc()
        if events:
            _child(INGEST_EVENTS, endpoint).inc(events)
    else:
        reason = REJECTION_REASONS.get(status, "other")
        _child(INGEST_BATCHES, endpoint, "rejected", reason).inc()


class RequestMetricsMiddleware:
    """Times every request (first in MIDDLEWARE, so the time covers the others too).

    The `view` label is the URL name (`streams:stats-list`), never the raw path, so a
    scanner asking for a million paths adds one series, `unresolved`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route or "unnamed") if match else "unresolved"
        method = request.method if request.method in _METHODS else "other"
        _child(REQUEST_SECONDS, view, method).observe(time.perf_counter() - started)
        _child(RESPONSES, view, method, str(response.status_code)).inc()
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# --- counted in Redis ----------------------------------------------------------------------

# The Redis keys of the shared counters (this module is the only one that knows them).
JOBS_KEY = "metrics:jobs"
POLLER_FAILURES_KEY = "metrics:poller-failures"
JOB_OUTCOMES = ("ok", "failed", "skipped")
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def job_key(job: str) -> str:
    return f"metrics:job:{job}"


def job_run_record(*, job: str, outcome: str, seconds: float) -> None:
    """Add one run of `job` to the shared job counters; best effort (a Redis failure is
    logged, never raised: it must not fail the job it describes)."""
    key = job_key(job)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.sadd(JOBS_KEY, job)
        pipe.hincrby(key, f"runs:{outcome}", 1)
        if outcome != "skipped":
            pipe.hincrbyfloat(key, "seconds:sum", seconds)
            pipe.hincrby(key, "seconds:count", 1)
            for bound in JOB_BUCKETS:
                if seconds <= bound:
                    pipe.hincrby(key, f"seconds:le:{bound}", 1)
            pipe.hset(key, mapping={"last:seconds": seconds, f"last:{outcome}": time.time()})
        pipe.execute()
    except Exception:  # noqa: BLE001 — metrics are best effort
        logger.warning("job %s: could not record its run in the metrics", job, exc_info=True)


def poller_failures_record(failures: Iterable[tuple[str, str, str]]) -> None:
    """Count (station, encoder, failure) poll failures; best effort like the job runs."""
    failures = list(failures)
    if not failures:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for station, encoder, failure in failures:
            pipe.hincrby(POLLER_FAILURES_KEY, "\t".join((station, encoder, failure)), 1)
        pipe.execute()
    except Exception:  # noqa: BLE001 — metrics are best effort
        logger.warning("could not record %d poll failures in the metrics", len(failures))


# --- read at scrape time ------------------------------------------------------------------


class ScrapeTimeCollector(Collector):
    """The metrics read when Prometheus asks: shared Redis counters and database gauges.

    A source that fails is left out of that scrape and `echonest_metrics_source_up`
    says so; the scrape itself still answers.
    """

    def describe(self) -> list:
        return []  # computed per scrape; nothing to register up front

    def collect(self) -> Iterator:
        up = GaugeMetricFamily(
            "echonest_metrics_source_up",
            "1 when this scrape could read the source (redis, database), else 0.",
            labels=["source"],
        )
        for source, collect in (("redis", self._from_redis), ("database", self._from_database)):
            try:
                families = list(collect())
            except Exception:  # noqa: BLE001 — one source down must not fail the scrape
                logger.warning("metrics: could not read %s", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _from_redis(self) -> Iterator:
        client = get_redis()
        jobs = sorted(client.smembers(JOBS_KEY))
        pipe = client.pipeline(transaction=False)
        for job in jobs:
            pipe.hgetall(job_key(job))
        stats = dict(zip(jobs, pipe.execute(), strict=True))
        # `job_name`, not `job`: Prometheus gives every series its scrape `job` label.
        runs = CounterMetricFamily(
            "echonest_job_runs",
            "Scheduled job runs by job and outcome (ok, failed, or skipped: another run held "
            "the job's lock).",
            labels=["job_name", "outcome"],
        )
        duration = HistogramMetricFamily(
            "echonest_job_duration_seconds",
            "How long job runs took (ok and failed), by job.",
            labels=["job_name"],
        )
        last_seconds = GaugeMetricFamily(
            "echonest_job_last_duration_seconds",
            "How long the latest run of each job took.",
            labels=["job_name"],
        )
        last_ok = GaugeMetricFamily(
            "echonest_job_last_success_timestamp_seconds",
            "When the latest successful run of each job ended (Unix time).",
            labels=["job_name"],
        )
        for job, fields in stats.items():
            for outcome in JOB_OUTCOMES:
                runs.add_metric([job, outcome], int(fields.get(f"runs:{outcome}", 0)))
            count = int(fields.get("seconds:count", 0))
            if count:
                buckets = [
                    (str(bound), int(fields.get(f"seconds:le:{bound}", 0))) for bound in JOB_BUCKETS
                ]
                duration.add_metric(
                    [job], [*buckets, ("+Inf", count)], float(fields.get("seconds:sum", 0))
                )
                last_seconds.add_metric([job], float(fields.get("last:seconds", 0)))
            if "last:ok" in fields:
                last_ok.add_metric([job], float(fields["last:ok"]))
        poller = CounterMetricFamily(
            "echonest_poller_failures",
            "Listener poll rounds in which an encoder did not answer (server_unreachable) or "
            "gave an answer the poller cannot read (malformed_answer), by station and encoder.",
            labels=["station", "encoder", "failure"],
        )
        for labels, count in sorted(client.hgetall(POLLER_FAILURES_KEY).items()):
            poller.add_metric(labels.split("\t"), int(count))
        yield from (runs, duration, last_seconds, last_ok, poller)

    def _from_database(self) -> Iterator:
        from streams.broadcast.models import Alert
        from streams.models import PlaybackBatch

        pending = PlaybackBatch.objects.filter(pending=True).aggregate(
            oldest=Min("received_at"), count=Count("id")
        )
        lag = GaugeMetricFamily(
            "echonest_aggregation_lag_seconds",
            "Age of the oldest playback batch the aggregator has not yet seen (0 when none).",
        )
        oldest = pending["oldest"]
        lag.add_metric([], max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0)
        waiting = GaugeMetricFamily(
            "echonest_pending_batches", "Playback batches the aggregator has not yet seen."
        )
        waiting.add_metric([], pending["count"])
        open_counts = dict(
            Alert.objects.filter(resolved_at__isnull=True)
            .values_list("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
        alerts = GaugeMetricFamily(
            "echonest_open_alerts", "Broadcast alerts open now, by kind.", labels=["kind"]
        )
        for kind in Alert.Kind.values:
            alerts.add_metric([kind], open_counts.get(kind, 0))
        yield from (lag, waiting, alerts)


_SCRAPE_TIME = ScrapeTimeCollector()
_registered = threading.Lock()
_in_default_registry = False


def metrics_registry() -> CollectorRegistry:
    """The registry a scrape reads: every worker's files in multiprocess mode, else this
    process's own metrics; the scrape-time collector in both."""
    global _in_default_registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_SCRAPE_TIME)
        return registry
    with _registered:
        if not _in_default_registry:
            REGISTRY.register(_SCRAPE_TIME)
            _in_default_registry = True
    return REGISTRY


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics — the Prometheus text format, for a scraper holding METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: METRICS_TOKEN is not set.")
    if not _authorized(request, token):
        response = HttpResponse(
            "Unauthorized: send Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
