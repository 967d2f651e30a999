"""`make run` shares one Redis between its processes (scripts/run-dev.sh): what the seed
step counts in its own process shows on /admin/stats in the web process, and it is still
there after Redis restarts. This starts a private redis-server the way run-dev.sh does
(a Unix socket, saved to a file in its directory) and kills only that, by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from echonest_analytics.redis import get_redis

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def _start_redis(directory: Path) -> subprocess.Popen:
    socket = directory / "redis.sock"
    server = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
            "--dir", str(directory), "--dbfilename", "redis.rdb", "--save", "60 1",
            "--appendonly", "no", "--loglevel", "warning",
        ],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not socket.exists():
        assert time.monotonic() < deadline, "redis-server did not open its socket"
        assert server.poll() is None, "redis-server exited"
        time.sleep(0.05)
    return server


@pytest.fixture
def private_redis(tmp_path):
    directory = tmp_path / "var"
    directory.mkdir()
    servers = [_start_redis(directory)]
    url = f"unix://{directory / 'redis.sock'}?db=0"

    def restart() -> None:
        servers[-1].send_signal(signal.SIGTERM)  # a clean shutdown saves the counters
        servers[-1].wait(timeout=10)
        (directory / "redis.sock").unlink(missing_ok=True)
        servers.append(_start_redis(directory))

    yield url, restart
    for server in servers:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


def _count_in_another_process(url: str, users: int) -> None:
    code = (
        "import django; django.setup(); "
        "from analytics.live_counters import track; "
        "from echonest_analytics.redis import get_redis; "
        f"assert all(track(get_redis(), 'login', f'fan{{i}}@example.com') for i in range({users}))"
    )
    env = {
        **os.environ,
        "REDIS_URL": url,
        "DJANGO_SETTINGS_MODULE": "echonest_analytics.settings_local",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _glance(client) -> dict[str, int]:
    response = client.get("/admin/stats")
    assert response.status_code == 200
    return {item["label"]: item["value"] for item in response.context["glance"]}


def test_the_stats_page_shows_what_another_process_counted_and_keeps_it_across_a_restart(
    client, superuser, settings, private_redis
):
    url, restart = private_redis
    _count_in_another_process(url, users=7)  # like make run's seed step, in its own process
    settings.REDIS_URL = url
    get_redis.cache_clear()
    client.force_login(superuser)

    assert _glance(client)["Daily active users"] == 7

    restart()
    get_redis.cache_clear()
    assert _glance(client)["Daily active users"] == 7
