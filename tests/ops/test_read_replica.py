"""Staff reads on a streaming read replica (SPEC §13): a private PostgreSQL primary, a
replica made of it with `pg_basebackup -R` on another port, and gunicorn with
production settings naming both (DATABASE_URL, DATABASE_REPLICA_URL).

The replica's replay is paused to tell the two apart: a stream created on the primary
meanwhile is missing from the staff report (it reads the replica) until replay resumes,
while ingestion and the staff's own sign-in keep working on the primary, and keep
working once the replica is down."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.faults.servers import (
    Gunicorn,
    PrivatePostgres,
    PrivateReplica,
    database_create,
    database_migrate,
    database_url,
    manage,
    production_env,
    query,
    wait_until,
)

REPORT = "/admin/analytics/streams?from=2026-01-01&to=2026-01-31"


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[PrivatePostgres, PrivateReplica]]:
    primary = PrivatePostgres()
    replica = None
    try:
        primary.start()
        replica = PrivateReplica(primary)
        replica.start()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def shell(code: str, *, env: dict[str, str]) -> str:
    """Run `code` in `manage.py shell`; its last line of output."""
    lines = manage("shell", "--no-imports", "-c", code, env=env).stdout.strip().splitlines()
    return lines[-1] if lines else ""


def stream_create(key: str, *, env: dict[str, str]) -> None:
    shell(
        "from streams.models import Organizer, Stream\n"
        "o, _ = Organizer.objects.get_or_create(slug='org', defaults={'name': 'Org'})\n"
        f"Stream.objects.create(key={key!r}, title={key!r}, organizer=o, status='live')",
        env=env,
    )


def test_staff_reports_read_the_replica_and_every_write_goes_to_the_primary(
    primary_and_replica, tmp_path
):
    primary, replica = primary_and_replica
    primary_url = database_create(primary.admin_url, "echonest")
    database_migrate(primary_url)
    replica_url = database_url(replica.admin_url, "echonest")
    env = production_env(database_url=primary_url)
    stream_create("before-pause", env=env)
    token = shell(
        "from django.contrib.auth.models import User\n"
        "from rest_framework.authtoken.models import Token\n"
        "u = User.objects.create_superuser('root', 'root@example.com', 'pw-root-123')\n"
        "print(Token.objects.create(user=u).key)",
        env=env,
    )
    # The replica follows: the migrated schema, the stream and the token are there.
    wait_until(
        lambda: query(replica_url, "SELECT count(*) FROM authtoken_token") == [(1,)],
        timeout=30,
        what="the replica to replay the primary's writes",
    )
    assert query(replica_url, "SELECT pg_is_in_recovery()") == [(True,)]

    web = Gunicorn(
        production_env(database_url=primary_url, DATABASE_REPLICA_URL=replica_url),
        tmp_path / "gunicorn.log",
        workers=1,
    )
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def report_streams() -> list[str]:
        status, _, body = web.request("GET", REPORT, headers=headers)
        assert status == 200, body[:500]
        return sorted(row["stream_id"] for row in json.loads(body)["streams"])

    try:
        assert report_streams() == ["before-pause"]

        query(replica_url, "SELECT pg_wal_replay_pause()")
        stream_create("while-paused", env=env)
        assert query(primary_url, "SELECT count(*) FROM streams_stream") == [(2,)]
        # Read from the replica, which has not replayed the new stream yet.
        assert report_streams() == ["before-pause"]

        # Writes go to the primary while the replica is paused (a write sent to the
        # read-only replica would fail): an accepted batch lands there, not on the replica.
        batch = {
            "streamId": "while-paused",
            "clientId": "c-replica",
            "batchId": str(uuid.uuid4()),
            "events": [{"type": "play", "videoTime": 0}],
        }
        status, _, body = web.post_json("/analytics/events", json.dumps(batch).encode())
        assert status == 202, body
        assert query(primary_url, "SELECT count(*) FROM streams_playbackbatch") == [(1,)]
        assert query(replica_url, "SELECT count(*) FROM streams_playbackbatch") == [(0,)]

        query(replica_url, "SELECT pg_wal_replay_resume()")
        wait_until(
            lambda: report_streams() == ["before-pause", "while-paused"],
            timeout=30,
            what="the staff report to show the replayed stream",
        )
        wait_until(
            lambda: query(replica_url, "SELECT count(*) FROM streams_playbackbatch") == [(1,)],
            timeout=30,
            what="the replica to replay the batch written on the primary",
        )

        # The replica down: its reports answer 503 with Retry-After, and the next staff
        # request on the same worker still signs in and reads on the primary.
        replica.stop("immediate")
        status, response_headers, _ = web.request("GET", REPORT, headers=headers)
        assert status == 503
        assert response_headers["retry-after"] == "5"
        status, _, body = web.request("GET", "/api/analytics/users/u-1/export", headers=headers)
        assert status == 200, body[:500]
    finally:
        web.stop()
