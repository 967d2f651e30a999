"""/metrics across processes (SPEC §13): gunicorn's workers each count the batches they
answer, and a Celery worker runs the aggregation; one scrape, answered by any worker,
shows them all. Production settings, a database and a redis-server of the test's own."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.servers import (
    ROOT,
    Gunicorn,
    database_create,
    database_migrate,
    kill_group,
    production_env,
    wait_until,
)

TOKEN = "metrics-token-for-tests"  # noqa: S105
BATCHES = 40
EVENTS_PER_BATCH = 3


def scrape(web: Gunicorn) -> dict[tuple[str, tuple], float]:
    status, _, body = web.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body[:500]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def batch(stream: str) -> bytes:
    return json.dumps(
        {
            "streamId": stream,
            "clientId": f"c-{uuid.uuid4().hex[:8]}",
            "batchId": str(uuid.uuid4()),
            "events": [
                {"type": "heartbeat", "videoTime": 15.0 * i} for i in range(EVENTS_PER_BATCH)
            ],
        }
    ).encode()


def test_one_scrape_sums_every_gunicorn_worker_and_sees_the_celery_workers_job_runs(
    private_postgres, private_redis, tmp_path
):
    url = database_create(private_postgres.admin_url, "echonest")
    database_migrate(url)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = production_env(
        database_url=url,
        redis_url=private_redis.url,
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    subprocess.run(
        [sys.executable, "-m", "tests.faults.jobs", "seed-stream", "metrics"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    web = Gunicorn(env, tmp_path / "gunicorn.log", workers=2)
    worker = None
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda body: web.post_json("/analytics/events", body)[0],
                    [batch("metrics") for _ in range(BATCHES)] + [b"{bad"] * 4,
                )
            )
        assert answers == [202] * BATCHES + [400] * 4
        # Both workers answered some: each wrote its own counter file.
        pids = web.worker_pids()
        assert len(pids) == 2
        assert {f"counter_{pid}.db" for pid in pids} <= {p.name for p in metrics_dir.iterdir()}
        # Whichever worker answers the scrape, it reports both workers' counts.
        for _ in range(6):
            samples = scrape(web)
            accepted = {"endpoint": "playback", "outcome": "accepted", "reason": ""}
            rejected = {"endpoint": "playback", "outcome": "rejected", "reason": "invalid"}
            assert value(samples, "echonest_ingest_batches_total", **accepted) == BATCHES
            assert value(samples, "echonest_ingest_batches_total", **rejected) == 4
            assert (
                value(samples, "echonest_ingest_events_total", endpoint="playback")
                == BATCHES * EVENTS_PER_BATCH
            )
            assert value(samples, "echonest_pending_batches") == BATCHES
        assert value(samples, "echonest_job_runs_total", job_name="streams.aggregation") == 0

        # A Celery worker, another process (here the same machine, but it shares only
        # Redis and the database with the web), runs the aggregation.
        log = tmp_path / "worker.log"
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "echonest_analytics",
                    "worker",
                    "--pool=solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env={**env, "LOG_LEVEL": "INFO"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        Celery(broker=private_redis.url).send_task("streams.aggregate_streams")

        def aggregated() -> dict | None:
            assert worker.poll() is None, log.read_text()[-3000:]
            samples = scrape(web)
            ok = {"job_name": "streams.aggregation", "outcome": "ok"}
            return samples if value(samples, "echonest_job_runs_total", **ok) == 1 else None

        samples = wait_until(aggregated, timeout=60, what="the worker's run to reach /metrics")
        assert value(samples, "echonest_pending_batches") == 0
        assert value(samples, "echonest_aggregation_lag_seconds") == 0
        assert (
            value(samples, "echonest_job_duration_seconds_count", job_name="streams.aggregation")
            == 1
        )
        # The worker logs through Django's LOGGING: a JSON line for the run.
        lines = [json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]
        runs = [line for line in lines if line.get("job") == "streams.aggregation"]
        assert len(runs) == 1, log.read_text()[-3000:]
        assert runs[0]["outcome"] == "ok"
        assert runs[0]["duration_seconds"] >= 0

        # A source down costs its own metrics, never the scrape: Redis killed, then
        # PostgreSQL stopped, and /metrics still answers 200 with what it can read.
        kill_group(worker)
        private_redis.kill()
        samples = scrape(web)
        assert value(samples, "echonest_metrics_source_up", source="redis") == 0
        assert value(samples, "echonest_metrics_source_up", source="database") == 1
        assert not any(name == "echonest_job_runs_total" for name, _ in samples)
        assert value(samples, "echonest_ingest_batches_total", **accepted) == BATCHES
        private_postgres.stop()
        samples = scrape(web)
        assert value(samples, "echonest_metrics_source_up", source="database") == 0
        assert not any(name == "echonest_pending_batches" for name, _ in samples)
        assert value(samples, "echonest_ingest_batches_total", **accepted) == BATCHES
    finally:
        if worker is not None:
            kill_group(worker)
        web.stop()
