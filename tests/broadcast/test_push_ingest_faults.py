"""Push API with the database down (SPEC §5, §9.2): 503 with Retry-After, nothing
half-written, and the retry of the same batch is stored once the database is back.

The outage is real: the connection points where no database listens."""

from __future__ import annotations

import pytest

from streams.broadcast.models import BroadcastBatch, BroadcastLogEntry, Play
from tests.core.test_database_outage import database_down

from .factories_push import log_item, play_item, push, push_batch, station_with_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_push_while_the_database_is_down_is_503_and_the_retry_is_stored_once(client):
    _, key = station_with_key()
    batch = push_batch(log=[log_item()], plays=[play_item()])

    with database_down():
        response = push(client, "nightjar-fm", key, batch)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Database unavailable" in response.json()["error"]
    assert BroadcastBatch.objects.count() == 0
    retry = push(client, "nightjar-fm", key, batch)
    assert retry.status_code == 202
    assert push(client, "nightjar-fm", key, batch).json() == retry.json()
    assert (BroadcastLogEntry.objects.count(), Play.objects.count()) == (1, 1)
