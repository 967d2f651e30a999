"""A job SIGKILLed halfway leaves no partial stats: rerun, its figures equal one clean
run's (SPEC §10, §7). Real `manage.py` processes on a database of our own, killed while
they work; the clean run goes over a copy of the same data (CREATE DATABASE … TEMPLATE).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.streams.test_bunny_import import bunny_payload

from .figures import aggregation_figures, table_figures
from .jobs import BUNNY_VIDEOS
from .servers import (
    ROOT,
    kill_group,
    manage,
    manage_popen,
    production_env,
    query,
    wait_until,
)

pytestmark = pytest.mark.faults

EVENTS = 200_000


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def seed(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tests.faults.jobs", *args],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )


def other_backends(url: str) -> int:
    return query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )[0][0]


def test_aggregation_killed_mid_transaction_then_rerun_equals_a_clean_run(fresh_database, tmp_path):
    url = fresh_database()
    env = production_env(database_url=url)  # no REDIS_URL: the lock is per process
    seed(env, "seed-playback", str(EVENTS))
    clean_url = fresh_database(template=database_name(url))
    clean_env = production_env(database_url=clean_url)

    started = time.monotonic()
    manage("aggregate_streams", "--all", env=clean_env)
    clean_seconds = time.monotonic() - started
    clean = aggregation_figures(clean_url)
    assert clean["stream_stats"] and clean["viewer_sessions"]
    # Every session is stale already: a later run cannot finalize more (jobs.seed_playback).
    assert query(clean_url, "SELECT count(*) FROM streams_viewersession WHERE NOT finalized") == [
        (0,)
    ]

    run = manage_popen("aggregate_streams", "--all", env=env, log=tmp_path / "killed.log")
    run_started = time.monotonic()
    try:
        # Killed once its transaction has written something (it holds a transaction id).
        wait_until(
            lambda: (
                run.poll() is None
                and query(
                    url,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_xid IS NOT NULL AND state = 'active'",
                )[0][0]
            ),
            timeout=60,
            what="the aggregation run to start writing",
            every=0.02,
        )
        killed_after = time.monotonic() - run_started
    finally:
        kill_group(run)
    assert run.returncode == -signal.SIGKILL
    # The server rolls the dead client's transaction back: nothing half-written stays.
    wait_until(lambda: other_backends(url) == 0, timeout=60, what="the killed run's backend")
    assert query(url, "SELECT count(*) FROM streams_streamstats") == [(0,)]
    assert query(url, "SELECT count(*) FROM streams_viewersession") == [(0,)]

    manage("aggregate_streams", "--all", env=env)
    rerun = aggregation_figures(url)
    print(
        f"{EVENTS} events; clean run {clean_seconds:.1f} s; killed {killed_after:.1f} s in; "
        f"{len(rerun['stream_stats'])} StreamStats, {len(rerun['viewer_sessions'])} sessions"
    )
    assert rerun == clean


class StallingBunny:
    """Bunny's statistics API on loopback, in its real response shape; while `stall_on` is
    set, a request for that video hangs until `release` is set."""

    def __init__(self) -> None:
        self.stall_on: str | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        # (views, watch seconds) per day: above our own tracked watch time for some.
        self.figures = {
            guid: (10 * (n + 1), 600.0 * n + 100) for n, guid in enumerate(BUNNY_VIDEOS)
        }
        bunny = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 — the http.server hook's name
                query_args = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                guid = query_args.get("videoGuid", "")
                if guid == bunny.stall_on:
                    bunny.stalled.set()
                    bunny.release.wait(timeout=60)
                    return  # its client was killed meanwhile: nobody to answer
                day = datetime.fromisoformat(query_args["dateFrom"].removesuffix("Z")).date()
                views, watch = bunny.figures[guid]
                body = json.dumps(bunny_payload(day, views=views, watch=watch)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def stalling_bunny():
    bunny = StallingBunny()
    yield bunny
    bunny.close()


def bunny_figures(url: str) -> dict[str, list[tuple]]:
    return {
        "bunny_video_stats": table_figures(url, "streams_bunnyvideostats"),
        "stream_stats": table_figures(url, "streams_streamstats"),
    }


def test_bunny_import_killed_mid_run_then_rerun_equals_a_clean_run(
    fresh_database, stalling_bunny, tmp_path
):
    bunny_env = {
        "BUNNY_API_KEY": "test-access-key-5f1e",
        "BUNNY_LIBRARY_ID": "4242",
        "BUNNY_API_BASE_URL": stalling_bunny.base_url,
        "BUNNY_TIMEOUT": "30",
        "BUNNY_RETRIES": "0",
    }
    url = fresh_database()
    env = production_env(database_url=url, **bunny_env)
    seed(env, "seed-bunny")
    before = bunny_figures(url)
    clean_url = fresh_database(template=database_name(url))

    manage("import_bunny_stats", env=production_env(database_url=clean_url, **bunny_env))
    clean = bunny_figures(clean_url)
    assert len(clean["bunny_video_stats"]) == 3 * len(BUNNY_VIDEOS)
    assert clean["stream_stats"] != before["stream_stats"]  # Bunny's watch time counted

    stalling_bunny.stall_on = BUNNY_VIDEOS[2]
    run = manage_popen("import_bunny_stats", env=env, log=tmp_path / "killed.log")
    try:
        wait_until(
            lambda: stalling_bunny.stalled.is_set() or run.poll() is not None,
            timeout=60,
            what="the import to reach the third video",
        )
        assert run.poll() is None, (tmp_path / "killed.log").read_text()
    finally:
        kill_group(run)
    assert run.returncode == -signal.SIGKILL
    stalling_bunny.stall_on = None
    stalling_bunny.release.set()
    wait_until(lambda: other_backends(url) == 0, timeout=60, what="the killed run's backend")
    # Killed halfway: two videos' days imported, the rest not.
    killed = bunny_figures(url)
    assert len(killed["bunny_video_stats"]) == 3 * 2
    assert killed["stream_stats"] != clean["stream_stats"]

    manage("import_bunny_stats", env=env)
    rerun = bunny_figures(url)
    print(
        f"Bunny import killed after {len(killed['bunny_video_stats'])} of "
        f"{len(clean['bunny_video_stats'])} video-days; rerun equals the clean run"
    )
    assert rerun == clean
