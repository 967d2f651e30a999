"""Redis SIGKILLed during ingestion loses nothing (SPEC §10): a real gunicorn with
production settings on a database of our own and a private redis-server; playback and
telemetry batches keep coming while redis is killed and, later, started again empty.
Every batch answered 2xx is stored exactly once, and /readyz names redis while it is
down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from .load import PLAYBACK_EVENTS, Sender
from .servers import ROOT, Gunicorn, production_env, query, wait_until

pytestmark = pytest.mark.faults

STREAM = "faults"
PER_PHASE = 30  # batches answered in each phase: redis up, down, back
DOWN_AT_LEAST = 3.0  # seconds of load with redis down (longer than the breaker's cooldown)


def readiness(server: Gunicorn) -> tuple[int, dict]:
    status, _, body = server.get("/readyz")
    return status, json.loads(body)


def test_redis_killed_and_restarted_during_ingestion_loses_no_accepted_batch(
    fresh_database, private_redis, tmp_path
):
    url = fresh_database()
    # A 1 s breaker cooldown: while redis is down each process tries it again, and fails
    # again, several times.
    env = production_env(database_url=url, redis_url=private_redis.url, REDIS_BREAKER_SECONDS="1")
    subprocess.run(
        [sys.executable, "-m", "tests.faults.jobs", "seed-stream", STREAM],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    sender = Sender(server, STREAM, threads=2)
    try:
        assert readiness(server)[0] == 200
        sender.start()
        wait_until(lambda: sender.answered() >= PER_PHASE, timeout=60, what="load before the kill")

        private_redis.kill()
        killed_at, answered_at_kill = time.monotonic(), sender.answered()
        status, body = wait_until(
            lambda: (r := readiness(server))[0] == 503 and r,
            timeout=10,
            what="/readyz to report redis down",
        )
        assert body["failing"] == ["redis"]
        wait_until(
            lambda: (
                sender.answered() >= answered_at_kill + PER_PHASE
                and time.monotonic() - killed_at >= DOWN_AT_LEAST
            ),
            timeout=60,
            what="load while redis is down",
        )
        assert readiness(server)[1]["failing"] == ["redis"]  # still down, still named

        private_redis.start()  # same port, empty: counters catch up from nothing
        restarted_at = time.monotonic()
        wait_until(lambda: readiness(server)[0] == 200, timeout=20, what="/readyz 200 again")
        ready_after = time.monotonic() - restarted_at
        answered_at_restart = sender.answered()
        wait_until(
            lambda: sender.answered() >= answered_at_restart + PER_PHASE,
            timeout=60,
            what="load after redis is back",
        )
    finally:
        sender.stop()
        server.stop()

    statuses = Counter(a.status for a in sender.answers)
    errors = [a.error for a in sender.answers if a.status is None]
    down_for = restarted_at - killed_at
    playback = [b for b in sender.accepted if b.kind == "playback"]
    telemetry = [b for b in sender.accepted if b.kind == "telemetry"]
    print(
        f"{len(sender.answers)} batches sent ({len(playback)} playback, {len(telemetry)} "
        f"telemetry accepted); statuses {dict(statuses)}; redis down {down_for:.1f} s; "
        f"/readyz 200 {ready_after:.1f} s after the restart"
    )
    assert not errors, errors[:3]
    assert set(statuses) <= {200, 202}, statuses  # Redis is best effort: never refused
    # Exactly once: every accepted playback batch's clientId holds its 100 events, and
    # one batch row per batchId; every accepted telemetry uuid is stored, nothing else.
    per_client = dict(
        query(url, "SELECT client_id, count(*) FROM streams_playbackevent GROUP BY client_id")
    )
    assert per_client == {f"f-{b.key}": PLAYBACK_EVENTS for b in playback}
    batch_ids = [str(b) for (b,) in query(url, "SELECT batch_id FROM streams_playbackbatch")]
    assert sorted(batch_ids) == sorted(b.key for b in playback)
    stored_uuids = [str(u) for (u,) in query(url, "SELECT uuid FROM analytics_event")]
    assert sorted(stored_uuids) == sorted(u for b in telemetry for u in b.uuids)
