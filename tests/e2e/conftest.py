"""Real-browser tests: Debian's Chromium driven by Playwright against pytest-django's
live server. Chromium comes from the distribution (`.ci/run` installs it); these tests
fail rather than skip when it is missing."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test thread; the ORM calls the
    tests (and the database teardown after them) make there are ordinary synchronous
    calls. Set for this package only, and undone after its last test."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(django_db_setup):
    # The test database exists before Playwright starts its event loop in this thread.
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, django_db_blocker):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()
    _live_requests_finish(django_db_blocker)


def _live_requests_finish(django_db_blocker, *, timeout: float = 10.0) -> None:
    """Wait until no live-server request still works in the test database. A closing
    page sends its last batch as a beacon; a request still writing while the test's
    flush truncates every table can deadlock with it (PostgreSQL then fails the flush)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    busy = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
    )
    deadline = time.monotonic() + timeout
    quiet = 0
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        while quiet < 3 and time.monotonic() < deadline:  # quiet over 0.3 s: nothing left
            time.sleep(0.1)
            cursor.execute(busy)
            quiet = quiet + 1 if cursor.fetchone()[0] == 0 else 0


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under var/screenshots/ (looked at by a person)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def staff_login(page, live_server, django_user_model):
    """Log a superuser in through the real admin login form."""

    def login(username: str = "e2e-admin", password: str = "e2e-pass-123", superuser=True):
        if not django_user_model.objects.filter(username=username).exists():
            maker = (
                django_user_model.objects.create_superuser
                if superuser
                else django_user_model.objects.create_user
            )
            user = maker(username, f"{username}@example.com", password)
            if not superuser:
                user.is_staff = True
                user.save()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        return page

    return login


# --- Browser SDK tests: a real HLS video, a DB poller --------------------------

E2E_HLS_PREFIX = "e2e/hls"


@pytest.fixture(scope="session")
def hls_video_dir(tmp_path_factory):
    """A 5-second HLS VOD (1 s segments) made by ffmpeg with the same code as seed_demo."""
    from streams.demo import demo_hls_generate

    assert shutil.which("ffmpeg"), "ffmpeg not found: apt-get install ffmpeg"
    directory = tmp_path_factory.mktemp("hls")
    demo_hls_generate(directory=directory, seconds=5, segment_seconds=1)
    return directory


@pytest.fixture
def hls_video_url(settings, hls_video_dir) -> str:
    """Serve the fixture video as static files, the way seed_demo's video is served."""
    settings.STATICFILES_DIRS = [*settings.STATICFILES_DIRS, (E2E_HLS_PREFIX, hls_video_dir)]
    return f"/{settings.STATIC_URL.strip('/')}/{E2E_HLS_PREFIX}/stream.m3u8"


@pytest.fixture
def wait_until(page):
    """Poll `predicate` until it returns something truthy (and return that), or fail.

    It waits with the page's wait_for_timeout, not time.sleep, so Playwright keeps
    dispatching meanwhile (page.route handlers run only while Playwright is called)."""
    import time

    from django.db import OperationalError

    def wait(predicate, *, timeout=15.0, interval=0.1, message="", on=None):
        """`on`: the page to keep pumping when the test's `page` has been closed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except OperationalError as exc:
                # SQLite's shared in-memory test database locks a table while the live
                # server writes to it; PostgreSQL never gets here.
                if "locked" not in str(exc):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(message or f"condition not met within {timeout} s")
            (on or page).wait_for_timeout(interval * 1000)

    return wait


# navigator.sendBeacon, called through, with each call noted in localStorage: Playwright
# does not report beacon requests, and the page that sent them is gone afterwards.
_BEACON_SPY = """
(() => {
  if (!navigator.sendBeacon) return;
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = function (url, data) {
    const queued = send(url, data);
    try {
      const log = JSON.parse(localStorage.getItem("e2e.beacons") || "[]");
      log.push({url: String(url), queued: queued});
      localStorage.setItem("e2e.beacons", JSON.stringify(log));
    } catch (e) {}
    return queued;
  };
})();
"""


@pytest.fixture
def beacon_log(page, live_server):
    """Returns a reader of the sendBeacon calls the pages of this test made; reading it
    opens a page of the live server's origin (where the log is kept)."""
    page.add_init_script(_BEACON_SPY)

    def read() -> list[dict]:
        page.goto(f"{live_server.url}/healthz")
        return page.evaluate("JSON.parse(localStorage.getItem('e2e.beacons') || '[]')")

    return read


def wait_for_js(page, expression: str, *, timeout: float = 15000) -> None:
    """Poll a JavaScript expression until it is truthy.

    Not `page.wait_for_function`: once it has to poll, Playwright compiles the
    expression inside the page with `new Function`, which the pages' Content-Security-
    Policy (no 'unsafe-eval') refuses; `page.evaluate` runs it through DevTools instead.
    """
    import time

    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression!r} not true within {timeout / 1000:.0f} s")
        page.wait_for_timeout(50)
