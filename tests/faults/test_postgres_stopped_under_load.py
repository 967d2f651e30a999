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

from .load import PLAYBACK_EVENTS, Sender
from .servers import (
    ROOT,
    Gunicorn,
    database_create,
    database_migrate,
    production_env,
    query,
    wait_until,
)

pytestmark = pytest.mark.faults

STREAM = "faults"
DOWN_FOR = 5.0  # seconds the database stays stopped


@pytest.fixture
def outage_database(private_postgres) -> str:
    """A migrated database on the private cluster, with the stream the batches name."""
    url = database_create(private_postgres.admin_url, "echonest")
    database_migrate(url)
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
        # Both workers are forked (the first may answer /healthz before the second exists).
        wait_until(lambda: len(server.worker_pids()) == 2, timeout=30, what="two gunicorn workers")
        workers_before = server.worker_pids()
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


WATCHED = "faults-watch"
TRACKED = 30  # telemetry events the page tracks while the database is down
PLAYER_ERRORS = 20  # player events (besides play and pause) tracked meanwhile


def poll(page, expression: str, *, timeout: float, what: str):
    """Evaluate `expression` in the page until truthy (page.evaluate: the CSP forbids the
    eval that wait_for_function needs)."""
    return wait_until(lambda: page.evaluate(expression), timeout=timeout, what=what, every=0.2)


def test_the_sdks_deliver_what_was_refused_while_postgres_was_stopped(
    private_postgres, outage_database, tmp_path
):
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.e2e.test_player_tracking import FAKE_PLAYERJS

    url = outage_database
    subprocess.run(
        [sys.executable, "-m", "tests.faults.jobs", "seed-stream", WATCHED, "bunny_stream"],
        cwd=ROOT,
        env=production_env(database_url=url),
        check=True,
        timeout=60,
    )
    # DEBUG serves the SDKs from the source tree (no collectstatic into the worktree).
    server = Gunicorn(production_env(database_url=url, DEBUG="true"), tmp_path / "gunicorn.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context()
            # The Bunny embed needs the internet: answer its host with an empty page, and
            # player.js with the stand-in the browser tests use.
            context.route(
                "**/static/vendor/player.js/**",
                lambda route: route.fulfill(
                    content_type="application/javascript", body=FAKE_PLAYERJS
                ),
            )
            context.route(
                "https://iframe.mediadelivery.net/**",
                lambda route: route.fulfill(status=200, content_type="text/html", body=""),
            )
            demo = context.new_page()
            demo.add_init_script(
                "window.EchoPilotConfig = {debounceMs: 200, retryBaseMs: 500, retryMaxMs: 3000};"
            )
            demo.goto(f"{server.base_url}/analytics/demo")
            wait_until(
                lambda: query(url, "SELECT count(*) FROM analytics_event")[0][0] == 1,
                timeout=30,
                what="the demo's page view",
            )
            watch = context.new_page()
            watch.goto(f"{server.base_url}/streams/{WATCHED}/watch")
            poll(
                watch,
                "document.getElementById('player').dataset.ready",
                timeout=30,
                what="the watch page's player",
            )

            private_postgres.stop("fast")
            stopped_at = time.monotonic()
            uuids = demo.evaluate(
                "n => Array.from({length: n}, (_, i) => EchoPilot.track('outage', 'faults', {seq: i}))",
                TRACKED,
            )
            watch.evaluate(
                """n => echoNestWatch.then(w => {
                    w.tracker.play();
                    for (let i = 0; i < n; i++) w.tracker.error({code: "OUTAGE", seq: i});
                    w.tracker.pause();
                    w.tracker.flush();
                })""",
                PLAYER_ERRORS,
            )
            # Both SDKs were refused (503) and hold their events for a retry.
            poll(
                demo,
                "EchoPilot.stats().failures > 0 && EchoPilot.pending() > 0",
                timeout=20,
                what="telemetry.js to be refused",
            )
            poll(
                watch,
                "echoNestWatch.then(w => w.tracker.stats().retries > 0)",
                timeout=20,
                what="the player tracker to be refused",
            )
            wait_until(
                lambda: time.monotonic() - stopped_at >= DOWN_FOR,
                timeout=DOWN_FOR + 5,
                what="the outage to last",
                every=0.2,
            )
            private_postgres.start()
            started_at = time.monotonic()
            poll(demo, "EchoPilot.pending() === 0", timeout=60, what="telemetry.js to deliver")
            poll(
                watch,
                "echoNestWatch.then(w => w.tracker.pendingBatches() === 0)",
                timeout=60,
                what="the player tracker to deliver",
            )
            delivered_after = time.monotonic() - started_at
            player = watch.evaluate("echoNestWatch.then(w => w.tracker.stats())")
            telemetry = demo.evaluate("EchoPilot.stats()")
            client_id = watch.evaluate("echoNestWatch.then(w => w.tracker.config.clientId)")
            browser.close()
    finally:
        server.stop()

    stored = sorted(
        str(u)
        for (u,) in query(url, "SELECT uuid FROM analytics_event WHERE event_type = 'outage'")
    )
    assert stored == sorted(uuids)
    events = query(
        url,
        "SELECT e.type, count(*) FROM streams_playbackevent e JOIN streams_stream s "
        "ON s.id = e.stream_id WHERE s.key = %s AND e.client_id = %s GROUP BY e.type",
        [WATCHED, client_id],
    )
    batches = query(
        url,
        "SELECT count(*), count(DISTINCT batch_id), coalesce(sum(event_count), 0) "
        "FROM streams_playbackbatch WHERE client_id = %s",
        [client_id],
    )[0]
    print(
        f"telemetry.js: {TRACKED} tracked, {telemetry['retried']} retried sends; player: "
        f"{player['events']} events tracked in {batches[0]} batches, {player['retries']} "
        f"retries; everything delivered {delivered_after:.1f} s after the restart"
    )
    by_type = dict(events)
    assert by_type.get("error") == PLAYER_ERRORS and by_type.get("play") == 1
    assert sum(by_type.values()) == player["events"]  # every tracked event, once
    assert batches[0] == batches[1]  # one row per batchId
    assert batches[2] == player["events"]
