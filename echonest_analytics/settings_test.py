"""Test settings: the real settings, with a fast password hasher (cookiecutter-django habit)."""

from .settings_local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A WAL file rather than shared-cache memory: in the browser tests the live server
    # writes while the test thread reads, and a memory database locks whole tables (a
    # write then fails at once instead of waiting its turn).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_echonest.sqlite3")}  # noqa: F405
