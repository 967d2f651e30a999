"""Fixtures of the operations tests: the fault tests' real servers (private PostgreSQL
clusters, redis-server, gunicorn, Celery), reused as they are."""

from tests.faults.conftest import (  # noqa: F401 - fixtures
    fresh_database,
    migrated_template,
    postgres_admin_url,
    private_postgres,
    private_redis,
    run_tag,
)
