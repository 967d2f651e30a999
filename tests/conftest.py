"""Shared fixtures. Tests use the real database and Redis named by DATABASE_URL / REDIS_URL
(the embedded SQLite and in-process Redis when those are unset)."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from echonest_analytics.redis import get_redis, redis_breaker


@pytest.fixture(autouse=True)
def _clean_redis():
    """Every test starts with an empty Redis database (a dedicated db number in CI)."""
    get_redis.cache_clear()
    redis_breaker.reset()
    client = get_redis()
    client.flushdb()
    yield
    get_redis.cache_clear()
    redis_breaker.reset()


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def redis_client():
    return get_redis()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "staffer", "staffer@example.com", "pw-staff-123", is_staff=True
    )


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def admin_client_api(superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(items):
    """Browser tests run last: their session-wide Playwright keeps an event loop running
    in the main thread, and every Django ORM call after it would count as async code."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
