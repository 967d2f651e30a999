"""Settings come from the environment (SPEC §3), and mistakes read as one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': str(s.DATABASES['default']['NAME']), 'host': s.DATABASES['default'].get('HOST'), "
    "'cache': s.CACHES['default']['BACKEND'], 'broker': s.CELERY_BROKER_URL, "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'debug': s.DEBUG, 'timeout': s.SESSION_TIMEOUT, "
    "'heartbeat': s.HEARTBEAT_INTERVAL, 'admins': s.ECHONEST_ADMIN_EMAILS, "
    "'cors': s.CORS_ALLOWED_ORIGINS, 'bunny': s.BUNNY_API_BASE_URL, "
    "'retention': s.PLAYBACK_EVENT_RETENTION_DAYS, 'hosts': s.ALLOWED_HOSTS}))"
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _PROJECT_VARS}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "echonest_analytics.settings"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def _manage(args, env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _PROJECT_VARS}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


_PROJECT_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CORS_ALLOWED_ORIGINS",
    "ECHONEST_ADMIN_EMAILS",
    "SESSION_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def settings_from(**env: str) -> dict:
    import json

    result = run_python(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_default_without_database_or_redis_url():
    s = settings_from(DEBUG="true")
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"].endswith("var/echonest.sqlite3")
    assert s["cache"].endswith("LocMemCache")
    assert s["eager"] is True
    assert s["broker"] == "memory://"
    assert s["timeout"] == 1800 and s["heartbeat"] == 15


def test_production_urls_and_values_come_from_env():
    s = settings_from(
        DEBUG="false",
        SECRET_KEY="x" * 60,
        ALLOWED_HOSTS="stats.example.com,api.example.com",
        DATABASE_URL="postgres://app:secret@db.internal:5433/echonest",
        REDIS_URL="redis://cache.internal:6379/2",
        ECHONEST_ADMIN_EMAILS="Boss@Example.com, ops@example.com",
        CORS_ALLOWED_ORIGINS="https://player.example.com",
        SESSION_TIMEOUT="600",
        HEARTBEAT_INTERVAL="10",
        PLAYBACK_EVENT_RETENTION_DAYS="30",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["name"] == "echonest" and s["host"] == "db.internal"
    assert s["cache"].endswith("RedisCache")
    assert s["broker"] == "redis://cache.internal:6379/2"
    assert s["eager"] is False and s["debug"] is False
    assert s["admins"] == ["boss@example.com", "ops@example.com"]
    assert s["cors"] == ["https://player.example.com"]
    assert s["hosts"] == ["stats.example.com", "api.example.com"]
    assert (s["timeout"], s["heartbeat"], s["retention"]) == (600, 10, 30)
    assert s["bunny"] == "https://video.bunnycdn.com"


def test_bad_database_url_is_one_clear_line_not_a_traceback():
    result = _manage(["check"], {"DEBUG": "true", "DATABASE_URL": "mongodb://somewhere/db"})
    assert result.returncode == 2
    assert "Configuration error: DATABASE_URL has an unsupported scheme 'mongodb'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_secret_key_in_production_is_a_clear_error():
    result = _manage(["check"], {"DEBUG": "false"})
    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_deploy_passes_with_production_env(tmp_path):
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "k8#Qv2!" * 10,
            "ALLOWED_HOSTS": "stats.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_manage_py_runs_with_no_environment_at_all():
    # A fresh clone: no DEBUG, no SECRET_KEY, nothing. manage.py uses the development
    # settings (echonest_analytics.settings_local).
    result = _manage(["check"], {})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key():
    clean = {k: v for k, v in os.environ.items() if k not in _PROJECT_VARS}
    clean["DJANGO_SETTINGS_MODULE"] = "echonest_analytics.settings"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr


def _env_file(name: str) -> dict[str, str]:
    values = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_the_development_env_example_works_as_it_is():
    env = _env_file(".env.example")
    assert env["DEBUG"] == "true"
    assert "DATABASE_URL" not in env  # the embedded SQLite file
    result = _manage(["migrate", "--plan"], env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_the_production_env_example_passes_check_deploy_once_secrets_are_filled(tmp_path):
    env = _env_file(".env.production.example")
    assert env["DEBUG"] == "false"
    assert env["DJANGO_SETTINGS_MODULE"] == "echonest_analytics.settings"
    env.update(
        SECRET_KEY="k8#Qv2!" * 10,
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        REDIS_URL="",
    )
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
