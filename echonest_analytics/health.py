"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .redis import get_redis

logger = logging.getLogger(__name__)


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


def _shows_details(request: HttpRequest) -> bool:
    """Only staff see why a check failed: the errors name hosts and ports."""
    try:
        user = request.user
        return bool(user.is_authenticated and user.is_staff)
    except Exception:  # noqa: BLE001 — the session store may be the database that is down
        return False


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database reachable, migrations applied, Redis reachable when configured.

    Anonymous callers (load balancers) learn which checks failed, by name only; the
    errors themselves are logged, and shown to signed-in staff.
    """
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
            logger.warning("readiness check %s failed: %s: %s", name, exc.__class__.__name__, exc)
            results[name] = f"error: {exc.__class__.__name__}: {exc}"
            failing.append(name)
        else:
            results[name] = "ok"
    if failing and not _shows_details(request):
        results = {name: "error" if name in failing else state for name, state in results.items()}
    if failing:
        response = JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": results}, status=503
        )
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "checks": results})
