"""Monthly partitions of the raw event tables (SPEC §13): on PostgreSQL `PlaybackEvent`,
`Event`, `ListenerSnapshot` and `BroadcastLogEntry` are partitioned by month on their
event time, upkeep creates months ahead, rows outside every month land in a default
partition, and retention drops a whole month once all of it may go, deleting in batches
only at the edges. SQLite keeps plain tables: there the same purges give the same rows.

The purges run "at" 2026-12-01 12:00 UTC with the default 90-day retentions: the cutoff
is 2026-09-02 00:00 UTC, so July and August 2026 lie wholly before it and September is
the edge month (its first day is past retention, the rest is not).
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from analytics.models import DailyRollup, Event
from analytics.rollups import daily_rollup_recompute
from analytics.services import NewEvent, events_store
from echonest_analytics.partitions import (
    PARTITIONED_TABLES,
    default_partition_name,
    month_add,
    month_partitions,
    month_partitions_ensure,
    month_start,
    table_is_partitioned,
    table_partition_by_month,
    table_unpartition,
)
from streams.aggregation import stream_stats_recompute
from streams.broadcast.log import log_entry_write
from streams.broadcast.models import BroadcastLogEntry, ListenerSnapshot
from streams.broadcast.retention import broadcast_log_purge
from streams.models import PlaybackBatch, PlaybackEvent, Stream, ViewerSession
from streams.partition_upkeep import partition_upkeep
from streams.retention import retention_purge
from tests.broadcast.factories_push import station_with_key

from .conftest import T0, batch, heartbeats

pytestmark = pytest.mark.django_db

ON_POSTGRES = connection.vendor == "postgresql"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 9, 2, tzinfo=UTC)
JULY, AUGUST, SEPTEMBER, NOVEMBER = (datetime(2026, m, 1, tzinfo=UTC) for m in (7, 8, 9, 11))


def partition_names(table: str) -> set[str]:
    return {p.name for p in month_partitions(table)}


def partition_holding(model, pk: int) -> str | None:
    """The partition a row is stored in (None on SQLite: one plain table)."""
    if not ON_POSTGRES:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def event_keys() -> int | None:
    if not ON_POSTGRES:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_event_key")
        return cursor.fetchone()[0]


@pytest.fixture
def past_months(db) -> None:
    """The month partitions of July to November 2026 (migrate made this and next month)."""
    month_partitions_ensure(now=JULY, months_ahead=4)


# --- Partitions and the default --------------------------------------------------------


def test_migrate_makes_last_this_and_next_months_partitions_and_a_default_for_every_table():
    this_month = month_start(datetime.now(UTC))
    for table in PARTITIONED_TABLES:
        names = partition_names(table)
        if ON_POSTGRES:
            expected = {
                f"{table}_y{m.year:04d}m{m.month:02d}"
                for m in (month_add(this_month, -1), this_month, month_add(this_month, 1))
            }
            assert expected <= names, table
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT to_regclass(%s) IS NOT NULL", [default_partition_name(table)]
                )
                assert cursor.fetchone()[0] is True, table
        else:
            assert names == set(), table


def test_migrate_puts_back_a_missing_next_month():
    next_month = month_add(month_start(datetime.now(UTC)), 1)
    name = f"streams_playbackevent_y{next_month.year:04d}m{next_month.month:02d}"
    if ON_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")
    missing = name not in partition_names("streams_playbackevent")

    call_command("migrate", verbosity=0)

    assert missing is True
    assert (name in partition_names("streams_playbackevent")) is ON_POSTGRES


def test_upkeep_creates_the_months_ahead_once():
    this_month = month_start(datetime.now(UTC))
    third = month_add(this_month, 2)  # PARTITION_MONTHS_AHEAD = 2; migrate made the next one
    expected = [f"{table}_y{third.year:04d}m{third.month:02d}" for table in PARTITIONED_TABLES]

    first = partition_upkeep()
    second = partition_upkeep()

    if ON_POSTGRES:
        assert first.created == expected
        for table, name in zip(PARTITIONED_TABLES, expected, strict=True):
            assert name in partition_names(table)
    else:
        assert first.created == []
    assert second.created == []
    assert first.dropped == {} and second.dropped == {}


def test_upkeep_command_dry_run_names_the_months_and_creates_none():
    out = io.StringIO()
    call_command("partition_upkeep", "--dry-run", stdout=out)
    third = month_add(month_start(datetime.now(UTC)), 2)
    name = f"streams_playbackevent_y{third.year:04d}m{third.month:02d}"
    if ON_POSTGRES:
        assert f"would create {name}" in out.getvalue()
        assert name not in partition_names("streams_playbackevent")
    else:
        assert "nothing to do" in out.getvalue()


def test_a_row_outside_every_month_lands_in_the_default_then_moves_into_its_new_month():
    far = datetime(2031, 5, 5, 8, 0, tzinfo=UTC)
    key = uuid.uuid4()
    events_store(events=[NewEvent(uuid=key, event_type="signup", occurred_at=far)], received_at=NOW)
    stored = Event.objects.get(uuid=key)
    assert partition_holding(Event, stored.pk) == (
        "analytics_event_default" if ON_POSTGRES else None
    )

    created = month_partitions_ensure(now=far, months_ahead=0, tables=["analytics_event"])

    assert created == (["analytics_event_y2031m05"] if ON_POSTGRES else [])
    assert Event.objects.filter(uuid=key).count() == 1
    expected = "analytics_event_y2031m05" if ON_POSTGRES else None
    assert partition_holding(Event, stored.pk) == expected
    # The move kept its uuid key: the same event again is still a duplicate.
    again = events_store(
        events=[NewEvent(uuid=key, event_type="signup", occurred_at=far)], received_at=NOW
    )
    assert again == set()
    assert Event.objects.filter(uuid=key).count() == 1


def test_snapshots_and_log_entries_are_stored_in_their_month():
    station, _ = station_with_key()
    encoder = station.stream.providers.create(provider="icecast", external_id="/live.mp3")
    snapshot = ListenerSnapshot.objects.create(
        encoder=encoder, taken_at=T0, round_at=T0, listeners=12, source_up=True
    )
    entry = log_entry_write(
        station=station,
        level="info",
        category="audio",
        event="track_loaded",
        message="",
        timestamp=T0,
    )
    month = f"y{T0.year:04d}m{T0.month:02d}"
    assert partition_holding(ListenerSnapshot, snapshot.pk) == (
        f"broadcast_listenersnapshot_{month}" if ON_POSTGRES else None
    )
    assert partition_holding(BroadcastLogEntry, entry.pk) == (
        f"broadcast_broadcastlogentry_{month}" if ON_POSTGRES else None
    )
    assert ListenerSnapshot.objects.get(pk=snapshot.pk).listeners == 12


# --- Ingestion into the parent table (binary COPY) -------------------------------------


def test_playback_ingestion_copies_into_the_parent_and_rows_reach_their_month(stream, post_events):
    response = post_events(batch(stream.key, "c-1", heartbeats(0, 15, 30)))

    assert response.status_code == 202, response.content
    events = list(PlaybackEvent.objects.filter(stream=stream).order_by("occurred_at"))
    assert [e.video_time for e in events] == [0, 15, 30]
    month = f"streams_playbackevent_y{T0.year:04d}m{T0.month:02d}"
    assert {partition_holding(PlaybackEvent, e.pk) for e in events} == {
        month if ON_POSTGRES else None
    }


def test_telemetry_retry_is_stored_once_across_the_key_table(client):
    key = str(uuid.uuid4())
    body = {"events": [{"event_type": "page_view", "user_id": "u-1", "uuid": key}]}
    keys_before = event_keys()

    first = client.post("/api/analytics/event", data=body, content_type="application/json")
    retry = client.post("/api/analytics/event", data=body, content_type="application/json")

    assert first.status_code == 200 and retry.status_code == 200, (first.content, retry.content)
    assert Event.objects.filter(uuid=key).count() == 1
    assert event_keys() == (keys_before + 1 if ON_POSTGRES else None)
    # Deleting the event forgets its key (as a unique column would), so it may come again.
    Event.objects.filter(uuid=key).delete()
    assert event_keys() == (keys_before if ON_POSTGRES else None)
    client.post("/api/analytics/event", data=body, content_type="application/json")
    assert Event.objects.filter(uuid=key).count() == 1


# --- Retention: whole months dropped, edges deleted in batches --------------------------


def log_entries(station, start: datetime, count: int) -> None:
    for n in range(count):
        log_entry_write(
            station=station,
            level="info",
            category="audio",
            event="track_loaded",
            message="",
            timestamp=start + timedelta(hours=n),
        )


def test_log_retention_drops_whole_old_months_and_batch_deletes_the_edge(past_months):
    station, _ = station_with_key()
    log_entries(station, JULY + timedelta(days=3), 5)
    log_entries(station, AUGUST + timedelta(days=10), 7)
    log_entries(station, SEPTEMBER + timedelta(hours=10), 2)  # before the cutoff
    log_entries(station, SEPTEMBER + timedelta(days=4), 3)  # after it
    log_entries(station, NOVEMBER + timedelta(days=1), 4)
    assert BroadcastLogEntry.objects.count() == 21

    result = broadcast_log_purge(now=NOW, batch_size=1)

    assert result.deleted == {"broadcast.BroadcastLogEntry": 14}
    assert BroadcastLogEntry.objects.count() == 7
    assert not BroadcastLogEntry.objects.filter(timestamp__lt=CUTOFF).exists()
    names = partition_names("broadcast_broadcastlogentry")
    if ON_POSTGRES:
        assert "broadcast_broadcastlogentry_y2026m07" not in names
        assert "broadcast_broadcastlogentry_y2026m08" not in names
        assert {
            "broadcast_broadcastlogentry_y2026m09",
            "broadcast_broadcastlogentry_y2026m11",
        } <= names


def playback_received(stream: Stream, client_id: str, start: datetime) -> None:
    """Four heartbeats 15 s apart and their pending batch, as ingestion stores them."""
    times = [start + timedelta(seconds=15 * n) for n in range(4)]
    PlaybackEvent.objects.bulk_create(
        PlaybackEvent(
            stream=stream,
            client_id=client_id,
            type="heartbeat",
            video_time=15.0 * n,
            occurred_at=t,
            received_at=t,
            device="desktop",
        )
        for n, t in enumerate(times)
    )
    PlaybackBatch.objects.create(
        stream=stream,
        client_id=client_id,
        event_count=4,
        first_event_at=times[0],
        last_event_at=times[-1],
        received_at=times[-1],
    )


def product_events(day: date, count: int) -> None:
    for n in range(count):
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=n)
        Event.objects.create(event_type="page_view", user_id="u-1", occurred_at=at, received_at=at)


def test_retention_drops_the_months_all_aggregated_and_batch_deletes_the_rest(stream, past_months):
    playback_received(stream, "c-july", JULY + timedelta(days=9, hours=10))
    playback_received(stream, "c-august", AUGUST + timedelta(days=4, hours=10))
    playback_received(stream, "c-august-open", AUGUST + timedelta(days=5, hours=10))
    playback_received(stream, "c-edge", SEPTEMBER + timedelta(hours=10))
    playback_received(stream, "c-recent", NOVEMBER + timedelta(days=20, hours=10))
    stream_stats_recompute()
    ViewerSession.objects.filter(client_id="c-august-open").update(finalized=False)

    product_events(date(2026, 7, 14), 6)
    product_events(date(2026, 7, 15), 2)
    product_events(date(2026, 8, 3), 3)  # rolled up
    product_events(date(2026, 8, 4), 2)  # never rolled up: holds August's partition
    product_events(date(2026, 9, 1), 1)  # the edge month, rolled up
    for day in (date(2026, 7, 14), date(2026, 7, 15), date(2026, 8, 3), date(2026, 9, 1)):
        daily_rollup_recompute(day=day)
    assert (PlaybackEvent.objects.count(), Event.objects.count()) == (20, 14)
    keys_before = event_keys()

    dry = retention_purge(now=NOW, dry_run=True)
    result = retention_purge(now=NOW, batch_size=2)

    # July's 4 (dropped whole), c-august's 4 and c-edge's 4 (in batches); c-august-open's
    # session is not final, so its events and August's partition stay.
    expected = {"streams.PlaybackEvent": 12, "analytics.Event": 12}
    assert {k: v for k, v in dry.deleted.items() if k in expected} == expected
    assert {k: v for k, v in result.deleted.items() if k in expected} == expected
    assert set(PlaybackEvent.objects.values_list("client_id", flat=True)) == {
        "c-august-open",
        "c-recent",
    }
    assert PlaybackEvent.objects.count() == 8
    assert list(Event.objects.values_list("occurred_at__date", flat=True)) == [date(2026, 8, 4)] * 2
    assert DailyRollup.objects.filter(day=date(2026, 7, 14)).exists()  # aggregates stay
    playback_months = partition_names("streams_playbackevent")
    product_months = partition_names("analytics_event")
    if ON_POSTGRES:
        assert "streams_playbackevent_y2026m07" not in playback_months
        assert {
            "streams_playbackevent_y2026m08",
            "streams_playbackevent_y2026m09",
        } <= playback_months
        assert "analytics_event_y2026m07" not in product_months
        assert {"analytics_event_y2026m08", "analytics_event_y2026m09"} <= product_months
        # The dropped month's uuid keys went with it, and the batched deletes' with theirs.
        assert event_keys() == keys_before - 12


def test_upkeep_drops_the_expired_months_the_purge_would_and_no_other(stream, past_months):
    playback_received(stream, "c-july", JULY + timedelta(days=9, hours=10))
    stream_stats_recompute()
    station, _ = station_with_key()
    log_entries(station, AUGUST + timedelta(days=1), 3)
    log_entries(station, SEPTEMBER + timedelta(hours=1), 2)  # edge month: left to the purge

    result = partition_upkeep(now=NOW)

    if ON_POSTGRES:
        assert result.dropped == {"streams.PlaybackEvent": 4, "broadcast.BroadcastLogEntry": 3}
        assert (PlaybackEvent.objects.count(), BroadcastLogEntry.objects.count()) == (0, 2)
    else:
        assert result.dropped == {}
        assert (PlaybackEvent.objects.count(), BroadcastLogEntry.objects.count()) == (4, 5)


# --- The migration's conversion, both ways, on a table with rows -------------------------


def test_the_conversion_keeps_every_row_id_and_the_sequence_both_ways():
    station, _ = station_with_key()
    log_entries(station, JULY + timedelta(days=2), 3)
    log_entries(station, NOVEMBER + timedelta(days=2), 2)
    table = "broadcast_broadcastlogentry"
    before = list(BroadcastLogEntry.objects.order_by("pk").values_list("pk", "timestamp"))
    if ON_POSTGRES:
        with connection.cursor() as cursor:  # the rows' deferred key checks, before the DDL
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    # What a migration's RunPython is handed (the functions need only its connection).
    editor = connection.schema_editor()
    table_unpartition(editor, table=table)
    plain = table_is_partitioned(table)
    after_unpartition = list(
        BroadcastLogEntry.objects.order_by("pk").values_list("pk", "timestamp")
    )
    table_partition_by_month(editor, table=table, now=NOW)
    partitioned = table_is_partitioned(table)
    after = list(BroadcastLogEntry.objects.order_by("pk").values_list("pk", "timestamp"))
    log_entries(station, NOVEMBER + timedelta(days=3), 1)

    assert after_unpartition == before and after == before
    assert plain is False
    assert partitioned is ON_POSTGRES
    assert BroadcastLogEntry.objects.order_by("-pk").first().pk == before[-1][0] + 1
    if ON_POSTGRES:
        # Months from the oldest row (July) to the month after NOW, and the default.
        months = partition_names(table)
        assert {f"{table}_y2026m{m:02d}" for m in range(7, 13)} | {f"{table}_y2027m01"} == months
        assert partition_holding(BroadcastLogEntry, before[0][0]) == f"{table}_y2026m07"
