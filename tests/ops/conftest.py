"""Fixtures of the operations tests: the fault tests' private servers (a PostgreSQL
cluster, a redis-server), reused as they are."""

from tests.faults.conftest import private_postgres, private_redis  # noqa: F401 - fixtures
