"""What every benchmark shares: a PostgreSQL database of its own, Django set up on it,
the machine description, and percentiles."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from urllib.parse import urlsplit, urlunsplit


def bench_database_url(default_name: str) -> str:
    url = (
        os.environ.get("BENCH_DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{default_name}"
    )
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Benchmarks run on PostgreSQL: set BENCH_DATABASE_URL=postgres://…")
    return url


def ensure_database(url: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(database_url: str, **env: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echonest_analytics.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}){mem}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; PostgreSQL {pg}"
    )


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]
