"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .redis import get_redis


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_migrations() -> None:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        raise RuntimeError(f"{len(pending)} unapplied migration(s): {names}")


def _check_redis() -> None:
    get_redis().ping()


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database reachable, migrations applied, Redis reachable when configured."""
    checks = [("database", _check_database), ("migrations", _check_migrations)]
    if settings.REDIS_URL:
        checks.append(("redis", _check_redis))
    results: dict[str, str] = {}
    failing: list[str] = []
    for name, check in checks:
        if failing and name == "migrations":
            results[name] = "skipped"
            continue
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            results[name] = f"error: {exc.__class__.__name__}: {exc}"
            failing.append(name)
        else:
            results[name] = "ok"
    if failing:
        response = JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": results}, status=503
        )
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "checks": results})
