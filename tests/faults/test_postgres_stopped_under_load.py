"""PostgreSQL stopped for some seconds under load loses nothing answered 2xx (SPEC §5,
§10): a real gunicorn with production settings on a private PostgreSQL cluster, which
the test stops (`pg_ctl stop -m fast`) and starts again while batches keep coming. The
senders retry a refused batch with the same batchId / uuids after its Retry-After, as
the SDKs do."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest

from .conftest import migrate
from .load import PLAYBACK_EVENTS, Sender
from .servers import ROOT, Gunicorn, database_create, production_env, query, wait_until

pytestmark = pytest.mark.faults

STREAM = "faults"
DOWN_FOR = 5.0  # seconds the database stays stopped


@pytest.fixture
def outage_database(private_postgres) -> str:
    """A migrated database on the private cluster, with the stream the batches name."""
    url = database_create(private_postgres.admin_url, "echonest")
    migrate(url)
    subprocess.run(
        [sys.executable, "-m", "tests.faults.jobs", "seed-stream", STREAM],
        cwd=ROOT,
        env=production_env(database_url=url),
        check=True,
        timeout=60,
    )
    return url


def test_postgres_stopped_under_load_loses_nothing_answered_2xx(
    private_postgres, outage_database, tmp_path
):
    url = outage_database
    server = Gunicorn(production_env(database_url=url), tmp_path / "gunicorn.log")
    sender = Sender(server, STREAM, threads=6, retry=True, retry_for=90)
    try:
        workers_before = server.worker_pids()
        assert len(workers_before) == 2
        sender.start()
        wait_until(lambda: len(sender.accepted) >= 30, timeout=60, what="load before the stop")

        private_postgres.stop("fast")
        stopped_at = time.monotonic()
        wait_until(
            lambda: time.monotonic() - stopped_at >= DOWN_FOR,
            timeout=DOWN_FOR + 5,
            what="the outage to last",
            every=0.2,
        )
        refused_while_down = sum(1 for a in sender.answers if a.at >= stopped_at)
        private_postgres.start()
        started_at = time.monotonic()
        first_accepted = wait_until(
            lambda: next(
                (
                    a.at
                    for a in list(sender.answers)
                    if a.at >= started_at and a.status in (200, 202)
                ),
                None,
            ),
            timeout=60,
            what="a batch accepted after the restart",
        )
        accepted_at_start = len(sender.accepted)
        wait_until(
            lambda: len(sender.accepted) >= accepted_at_start + 30,
            timeout=90,
            what="load after the restart",
        )
        sender.stop()  # lets every batch still being retried finish first
        # The same web process answers, without a restart.
        assert server.proc.poll() is None
        assert server.worker_pids() == workers_before
    finally:
        sender.stop()
        server.stop()

    statuses = Counter(a.status for a in sender.answers)
    playback = [b for b in sender.accepted if b.kind == "playback"]
    telemetry = [b for b in sender.accepted if b.kind == "telemetry"]
    sent = sender.count
    print(
        f"{sent} batches, {len(sender.answers)} posts; statuses {dict(statuses)}; "
        f"{refused_while_down} posts during the {DOWN_FOR:.0f} s outage; first 2xx "
        f"{first_accepted - started_at:.1f} s after the restart; {len(playback)} playback and "
        f"{len(telemetry)} telemetry batches accepted"
    )
    errors = [a.error for a in sender.answers if a.status is None]
    assert not errors, errors[:3]  # no reset, no refused connection, no timeout
    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[503] > 0  # the outage was seen
    assert all(a.retry_after and int(a.retry_after) > 0 for a in sender.answers if a.status == 503)
    assert not sender.given_up
    assert len(sender.accepted) == sent  # every batch got in, after its retries
    per_client = dict(
        query(url, "SELECT client_id, count(*) FROM streams_playbackevent GROUP BY client_id")
    )
    assert per_client == {f"f-{b.key}": PLAYBACK_EVENTS for b in playback}
    batch_ids = [str(b) for (b,) in query(url, "SELECT batch_id FROM streams_playbackbatch")]
    assert sorted(batch_ids) == sorted(b.key for b in playback)
    stored_uuids = [str(u) for (u,) in query(url, "SELECT uuid FROM analytics_event")]
    assert sorted(stored_uuids) == sorted(u for b in telemetry for u in b.uuids)
