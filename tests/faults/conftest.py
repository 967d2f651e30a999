"""Fixtures of the fault tests: a PostgreSQL server to create databases on (the shared one
named by DATABASE_URL when that is PostgreSQL, else a private cluster started for the
session), one migrated template database, and fresh databases copied from it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from .servers import (
    PrivatePostgres,
    PrivateRedis,
    database_create,
    database_drop,
    database_migrate,
    database_url,
)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The maintenance database URL of a PostgreSQL server the tests may create
    databases on."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        yield urlunsplit(urlsplit(url)._replace(path="/postgres"))
        return
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster.admin_url
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def run_tag() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def migrated_template(postgres_admin_url, run_tag) -> Iterator[str]:
    """A database with every migration applied, to copy (CREATE DATABASE … TEMPLATE)."""
    name = f"echonest_faults_{run_tag}_template"
    database_create(postgres_admin_url, name)
    try:
        database_migrate(database_url(postgres_admin_url, name))
        yield name
    finally:
        database_drop(postgres_admin_url, name)


@pytest.fixture
def fresh_database(postgres_admin_url, migrated_template, run_tag) -> Iterator[Callable]:
    """`fresh_database(template=None)` → URL of a new migrated database (a copy of
    `template` when given), dropped after the test."""
    created: list[str] = []

    def create(template: str | None = None) -> str:
        name = f"echonest_faults_{run_tag}_{len(created)}_{secrets.token_hex(2)}"
        database_create(postgres_admin_url, name, template=template or migrated_template)
        created.append(name)
        return database_url(postgres_admin_url, name)

    yield create
    for name in reversed(created):
        database_drop(postgres_admin_url, name)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own: the one a test may stop and start."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
