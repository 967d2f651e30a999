"""The replica router without a replica (the default, and the embedded SQLite): every
read and write stays on `default`, and migrations only ever run there."""

from __future__ import annotations

import pytest
from django.conf import settings

from echonest_analytics.db_router import StaffReadsReplicaRouter
from streams.models import Stream

router = StaffReadsReplicaRouter()


def test_without_database_replica_url_there_is_no_replica_alias():
    assert "replica" not in settings.DATABASES
    assert settings.DATABASE_ROUTERS == ["echonest_analytics.db_router.StaffReadsReplicaRouter"]


@pytest.mark.django_db
def test_a_staff_report_reads_the_default_database_when_no_replica_is_set(staff_client):
    response = staff_client.get("/admin/analytics/streams", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert router.db_for_read(Stream) == "default"


def test_writes_and_migrations_only_go_to_the_primary():
    assert router.db_for_write(Stream) == "default"
    assert router.allow_migrate("default", "streams")
    assert not router.allow_migrate("replica", "streams")
