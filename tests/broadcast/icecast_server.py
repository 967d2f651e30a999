"""A real Icecast 2.4 for the poller tests (SPEC §12: the outside world is faked with a
real local server where possible): Debian's icecast2 on a free port, from a config in a
temporary directory, run as `nobody` (Icecast refuses root), fed by ffmpeg sources and
listened to by real HTTP connections. Every process here is started and ended by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ICECAST = "/usr/bin/icecast2"
SOURCE_PASSWORD = "src-pw-6c1e"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "adm-pw-93fa"
DEADLINE = 20.0  # seconds any awaited condition may take

CONFIG = """<icecast>
  <location>test</location><admin>test@localhost</admin>
  <limits>
    <clients>100</clients><sources>10</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>{source_password}</source-password>
    <relay-password>{source_password}</relay-password>
    <admin-user>{admin_user}</admin-user><admin-password>{admin_password}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>{base}</basedir><logdir>{base}</logdir><pidfile>{base}/icecast.pid</pidfile>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>3</loglevel><logsize>10000</logsize>
  </logging>
  <security><chroot>0</chroot></security>
</icecast>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], *, what: str, deadline: float = DEADLINE):
    """Poll `condition` until it returns something truthy; fail after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        try:
            value = condition()
        except requests.RequestException:
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Listener:
    """One real listener: a GET of the mount kept open in a thread, reading audio."""

    def __init__(self, url: str, user_agent: str) -> None:
        self._stop = threading.Event()
        self._response = requests.get(
            url, stream=True, timeout=10, headers={"User-Agent": user_agent}
        )
        self._response.raise_for_status()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for _chunk in self._response.iter_content(4096):
                if self._stop.is_set():
                    break
        except (requests.RequestException, OSError, AttributeError):
            pass

    def close(self) -> None:
        self._stop.set()
        self._response.close()
        self._thread.join(timeout=5)


class IcecastServer:
    def __init__(self) -> None:
        if not os.path.exists(ICECAST):
            raise RuntimeError(
                "icecast2 is missing: `make test` installs it (scripts/system-packages.sh)"
            )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="icecast-"))
        self.sources: dict[str, subprocess.Popen] = {}
        self.listeners: list[Listener] = []
        self.process: subprocess.Popen | None = None

    # --- server ----------------------------------------------------------------
    def start(self) -> IcecastServer:
        config = self.dir / "icecast.xml"
        config.write_text(
            CONFIG.format(
                port=self.port,
                base=self.dir,
                source_password=SOURCE_PASSWORD,
                admin_user=ADMIN_USER,
                admin_password=ADMIN_PASSWORD,
            )
        )
        shutil.chown(self.dir, user="nobody", group="nogroup")
        for path in self.dir.iterdir():
            shutil.chown(path, user="nobody", group="nogroup")
        self.dir.chmod(0o700)
        self.process = subprocess.Popen(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                ICECAST,
                "-c",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, what="icecast to answer")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"icecast exited: {self.error_log()}")
        # Right after start Icecast 2.4.4 answers status-json.xsl before its global stats
        # exist, as JSON missing its opening brace (a malformed answer the poller copes
        # with); the server is ready once the answer parses.
        try:
            return "server_id" in self.status()["icestats"]
        except ValueError:
            return False

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        self.listeners_close()
        for mount in list(self.sources):
            self.source_stop(mount)
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- what icecast reports ----------------------------------------------------
    def status(self) -> dict:
        return requests.get(f"{self.base_url}/status-json.xsl", timeout=2).json()

    def mount_status(self, mount: str) -> dict | None:
        source = self.status()["icestats"].get("source")
        sources = source if isinstance(source, list) else [source] if source else []
        for s in sources:
            if s.get("listenurl", "").endswith(mount):
                return s
        return None

    # --- sources -----------------------------------------------------------------
    def source_start(self, mount: str) -> None:
        """A real source: ffmpeg encoding a sine tone to MP3 in real time."""
        self.sources[mount] = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "64k",
                "-f",
                "mp3",
                "-content_type",
                "audio/mpeg",
                f"icecast://source:{SOURCE_PASSWORD}@127.0.0.1:{self.port}{mount}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.mount_status(mount), what=f"source {mount} to appear")

    def source_stop(self, mount: str) -> None:
        _stop(self.sources.pop(mount))
        wait_until(lambda: self.mount_status(mount) is None, what=f"source {mount} to vanish")

    def title_set(self, mount: str, song: str) -> None:
        response = requests.get(
            f"{self.base_url}/admin/metadata",
            params={"mount": mount, "mode": "updinfo", "song": song, "charset": "UTF-8"},
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            timeout=5,
        )
        response.raise_for_status()
        wait_until(
            lambda: (self.mount_status(mount) or {}).get("title") == song,
            what=f"title {song!r} on {mount}",
        )

    # --- listeners -----------------------------------------------------------------
    def listeners_open(self, mount: str, count: int, *, user_agent: str = "TestPlayer") -> None:
        for i in range(count):
            self.listeners.append(Listener(f"{self.base_url}{mount}", f"{user_agent}/{i}"))
        self.listeners_await(mount, len(self.listeners))

    def listeners_close(self) -> None:
        while self.listeners:
            self.listeners.pop().close()

    def listeners_await(self, mount: str, count: int) -> None:
        wait_until(
            lambda: (self.mount_status(mount) or {}).get("listeners") == count,
            what=f"{count} listeners on {mount}",
        )
