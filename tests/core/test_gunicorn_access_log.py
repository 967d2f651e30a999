"""The gunicorn access log, when enabled, records requests but never client addresses
(SPEC §10: the raw client IP is never stored). Checked through a real gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_access_log_lines_carry_no_client_address(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "access.log"
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(
        DEBUG="true",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_ACCESSLOG=str(log),
        WEB_CONCURRENCY="1",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "echonest_analytics.wsgi:application",
            "-c",
            "gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/healthz",
                    headers={"X-Forwarded-For": "203.0.113.7", "User-Agent": "probe/1"},
                )
                with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "/healthz" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)
    line = next(line for line in log.read_text().splitlines() if "/healthz" in line)
    assert '"GET /healthz HTTP/1.1" 200' in line
    assert "probe/1" in line
    assert "127.0.0.1" not in line
    assert "203.0.113.7" not in line
