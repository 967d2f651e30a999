"""SPEC §9.2 SAM import against a real MariaDB holding SAM Broadcaster's tables."""

from __future__ import annotations

import socket
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import maybe_schedule
from django.core.management import call_command

from echonest_analytics.locks import job_lock
from echonest_analytics.schedules import CELERY_BEAT_SCHEDULE
from streams.broadcast import sam
from streams.broadcast.models import BroadcastLogEntry, Play, Song, SongRequest, Station
from streams.broadcast.sam import import_sam
from streams.broadcast.secrets import identity_hash
from streams.models import Organizer, Stream
from tests.broadcast import mariadb

# The MariaDB fixtures (a module of their own, not a conftest.py).
mariadb_server = mariadb.mariadb_server
_sam_database_session = mariadb._sam_database_session
sam_database = mariadb.sam_database

REQUESTER_IP = "203.0.113.7"


def make_station(key: str, url: str, tz: str = "Europe/Berlin") -> Station:
    organizer, _ = Organizer.objects.get_or_create(slug="wavelength", defaults={"name": "WL"})
    stream = Stream.objects.create(key=key, title=key, organizer=organizer, kind="audio")
    return Station.objects.create(
        stream=stream, timezone=tz, sam_database_url=url, plays_from_poller=False
    )


@pytest.fixture
def station(db, sam_database) -> Station:
    return make_station("night-radio", sam_database.url)


SONGS = [
    {
        "ID": 1,
        "filename": "C:\\Music\\one.mp3",
        "artist": "Ayla",
        "title": "Morning",
        "album": "Light",
        "genre": "Pop",
        "duration": 200_000,
        "songtype": "S",
    },
    {
        "ID": 2,
        "filename": "C:\\Music\\two.mp3",
        "artist": "Ayla",
        "title": "Noon",
        "album": "Light",
        "genre": "Pop",
        "duration": 180_000,
        "songtype": "S",
    },
    {
        "ID": 3,
        "filename": "C:\\Music\\three.mp3",
        "artist": "Borealis",
        "title": "Dusk",
        "album": "",
        "genre": "",
        "duration": 240_000,
        "songtype": "S",
    },
    {
        "ID": 4,
        "filename": "C:\\Jingles\\id.mp3",
        "artist": "",
        "title": "Station ID",
        "album": "",
        "genre": "",
        "duration": 8_000,
        "songtype": "I",
    },
]


def history(
    id_: int, song_id: int, local: str, duration: int, request_id: int = 0, listeners: int = 0
) -> dict:
    song = next(
        (s for s in SONGS if s["ID"] == song_id), {"artist": "Gone", "title": "Deleted song"}
    )
    return {
        "ID": id_,
        "songID": song_id,
        "date_played": local,
        "duration": duration,
        "artist": song["artist"],
        "title": song["title"],
        "listeners": listeners,
        "requestID": request_id,
        "songtype": "S",
    }


# SAM writes local wall-clock time of its machine: Europe/Berlin, CET (UTC+1) in March.
HISTORY = [
    history(101, 1, "2026-03-10 20:00:00", 200_000),  # next starts 200 s later: full play
    history(102, 2, "2026-03-10 20:03:20", 180_000, request_id=52),  # next 172 s later: 8 s fade
    history(103, 3, "2026-03-10 20:06:12", 240_000),  # next 20 s later: a skip
    history(104, 4, "2026-03-10 20:06:32", 8_000),  # the last: still on air
]
REQUESTS = [
    {
        "ID": 51,
        "songID": 1,
        "t_stamp": "2026-03-10 19:50:00",
        "host": REQUESTER_IP,
        "status": "new",
    },
    {
        "ID": 52,
        "songID": 2,
        "t_stamp": "2026-03-10 19:55:00",
        "host": REQUESTER_IP,
        "status": "played",
        "code": 200,
    },
    {
        "ID": 53,
        "songID": 3,
        "t_stamp": "2026-03-10 19:56:00",
        "host": "198.51.100.9",
        "status": "ignored",
    },
    {
        "ID": 54,
        "songID": 1,
        "t_stamp": "2026-03-10 19:57:00",
        "host": "198.51.100.9",
        "status": "pending",
    },
]


def load_sam(sam_database) -> None:
    sam_database.insert("songlist", SONGS)
    sam_database.insert("requestlist", REQUESTS)
    sam_database.insert("historylist", HISTORY)


def plays_of(station: Station) -> list[tuple]:
    return [
        (
            p.external_ref,
            p.song.external_id,
            p.started_at,
            p.played_ms,
            p.crossfade,
            p.request.external_id if p.request else None,
        )
        for p in Play.objects.filter(station=station)
        .select_related("song", "request")
        .order_by("id")
    ]


def requests_of(station: Station) -> list[tuple]:
    return [
        (
            r.external_id,
            r.status,
            r.requested_at,
            r.played_at,
            r.song.external_id if r.song else None,
        )
        for r in SongRequest.objects.filter(station=station)
        .select_related("song")
        .order_by("external_id")
    ]


def test_first_import_reads_songs_requests_and_plays_in_station_time(station, sam_database):
    load_sam(sam_database)

    summary = import_sam(station=station)

    (result,) = summary.stations
    assert result.error == ""
    assert (result.songs, result.requests, result.plays) == (4, 4, 4)
    song = Song.objects.get(station=station, external_id="2")
    assert (song.title, song.artist, song.album, song.genre, song.duration_ms, song.song_type) == (
        "Noon",
        "Ayla",
        "Light",
        "Pop",
        180_000,
        "S",
    )
    assert plays_of(station) == [
        # 20:00 CET is 19:00 UTC
        ("101", "1", datetime(2026, 3, 10, 19, 0, 0, tzinfo=UTC), 200_000, False, None),
        ("102", "2", datetime(2026, 3, 10, 19, 3, 20, tzinfo=UTC), 172_000, True, "52"),
        ("103", "3", datetime(2026, 3, 10, 19, 6, 12, tzinfo=UTC), 20_000, False, None),
        ("104", "4", datetime(2026, 3, 10, 19, 6, 32, tzinfo=UTC), None, False, None),
    ]
    assert set(Play.objects.values_list("source", flat=True)) == {"sam"}
    assert requests_of(station) == [
        ("51", "pending", datetime(2026, 3, 10, 18, 50, tzinfo=UTC), None, "1"),
        (
            "52",
            "played",
            datetime(2026, 3, 10, 18, 55, tzinfo=UTC),
            datetime(2026, 3, 10, 19, 3, 20, tzinfo=UTC),
            "2",
        ),
        ("53", "denied", datetime(2026, 3, 10, 18, 56, tzinfo=UTC), None, "3"),
        ("54", "approved", datetime(2026, 3, 10, 18, 57, tzinfo=UTC), None, "1"),
    ]
    station.refresh_from_db()
    assert station.sam_cursor == {"songlist": 4, "requestlist": 54, "historylist": 104}


def test_requester_ip_is_hashed_never_stored(station, sam_database):
    load_sam(sam_database)
    import_sam(station=station)

    request = SongRequest.objects.get(station=station, external_id="51")
    assert request.requester == identity_hash(station=station, ip=REQUESTER_IP)
    assert len(request.requester) == 64
    stored = [str(v) for r in SongRequest.objects.values() for v in r.values()]
    assert not any(REQUESTER_IP in value for value in stored)


def test_rerun_imports_nothing_twice_and_then_only_the_new_rows(station, sam_database):
    load_sam(sam_database)
    import_sam(station=station)
    before = plays_of(station)

    again = import_sam(station=station).stations[0]
    assert (again.songs, again.requests, again.plays) == (0, 0, 0)
    assert plays_of(station) == before

    sam_database.insert(
        "songlist",
        [
            {
                "ID": 5,
                "filename": "five.mp3",
                "title": "Night",
                "artist": "Cyan",
                "duration": 210_000,
            }
        ],
    )
    sam_database.insert("historylist", [history(105, 5, "2026-03-10 20:06:40", 210_000)])
    third = import_sam(station=station).stations[0]

    assert (third.songs, third.plays) == (1, 1)
    assert Play.objects.filter(station=station).count() == 5
    assert Song.objects.filter(station=station).count() == 5
    # The jingle that was on air is closed now that the next item started 8 s later.
    assert plays_of(station)[3] == (
        "104",
        "4",
        datetime(2026, 3, 10, 19, 6, 32, tzinfo=UTC),
        8_000,
        False,
        None,
    )
    assert plays_of(station)[4][3] is None


def test_a_song_missing_from_songlist_is_made_from_the_history_row(station, sam_database):
    sam_database.insert("historylist", [history(201, 999, "2026-03-10 21:00:00", 100_000)])

    import_sam(station=station)

    song = Song.objects.get(station=station, external_id="999")
    assert (song.title, song.artist, song.duration_ms) == ("Deleted song", "Gone", 100_000)
    assert Play.objects.get(station=station).song == song


def test_a_request_status_changed_in_sam_is_updated(station, sam_database):
    """SAM changes a request in place (new → pending → played): open requests of the last
    BROADCAST_REQUEST_EXPIRY_HOURS are read again on every run."""
    an_hour_ago = datetime.now(ZoneInfo("Europe/Berlin")).replace(
        tzinfo=None, microsecond=0
    ) - timedelta(hours=1)
    sam_database.insert("songlist", SONGS)
    sam_database.insert(
        "requestlist", [{"ID": 61, "songID": 1, "t_stamp": an_hour_ago, "host": REQUESTER_IP}]
    )
    import_sam(station=station)
    assert SongRequest.objects.get(external_id="61").status == "pending"

    sam_database.execute("UPDATE requestlist SET status = 'pending' WHERE ID = 61")
    result = import_sam(station=station).stations[0]

    assert (result.requests, result.requests_updated) == (0, 1)
    assert SongRequest.objects.get(external_id="61").status == "approved"
    assert SongRequest.objects.filter(station=station).count() == 1


def many_rows(sam_database, count: int = 9) -> None:
    sam_database.insert("songlist", SONGS)
    rows = []
    for i in range(count):
        minute, second = divmod(i * 150, 60)
        rows.append(
            history(
                300 + i, SONGS[i % 4]["ID"], f"2026-03-10 22:{minute:02d}:{second:02d}", 180_000
            )
        )
    sam_database.insert("historylist", rows)


def test_crash_between_chunks_then_rerun_gives_the_clean_result(db, sam_database, monkeypatch):
    many_rows(sam_database)
    crashed = make_station("crashed", sam_database.url)
    clean = make_station("clean", sam_database.url)
    original = sam._history_chunk_write
    calls = {"n": 0}

    def failing_on_the_third_chunk(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return original(**kwargs)

    monkeypatch.setattr(sam, "_history_chunk_write", failing_on_the_third_chunk)
    with pytest.raises(RuntimeError):
        import_sam(station=crashed, chunk_size=2)
    # Two chunks of two committed, with the cursor; the third chunk left nothing behind.
    assert Play.objects.filter(station=crashed).count() == 4
    crashed.refresh_from_db()
    assert crashed.sam_cursor["historylist"] == 303
    monkeypatch.setattr(sam, "_history_chunk_write", original)

    import_sam(station=crashed, chunk_size=2)
    import_sam(station=clean, chunk_size=500)

    assert Play.objects.filter(station=crashed).count() == 9
    assert [row[:5] for row in plays_of(crashed)] == [row[:5] for row in plays_of(clean)]
    assert [row[3] for row in plays_of(clean)] == [150_000] * 8 + [None]


def test_sam_connection_killed_mid_import_then_rerun_gives_the_clean_result(
    db, sam_database, monkeypatch
):
    many_rows(sam_database)
    cut = make_station("cut", sam_database.url)
    clean = make_station("clean", sam_database.url)
    original = sam._fetch
    calls = {"n": 0}

    def kill_before_the_third_history_read(connection, sql, params):
        if "FROM historylist WHERE ID >" in sql:  # the chunk reads
            calls["n"] += 1
            if calls["n"] == 3:
                with closing(sam_database.server.connect()) as admin, admin.cursor() as cursor:
                    cursor.execute(f"KILL CONNECTION {connection.thread_id()}")
        return original(connection, sql, params)

    monkeypatch.setattr(sam, "_fetch", kill_before_the_third_history_read)
    result = import_sam(station=cut, chunk_size=2).stations[0]

    assert result.error
    entry = BroadcastLogEntry.objects.get(station=cut)
    assert (entry.level, entry.category, entry.event) == ("error", "database", "sam_sync_error")
    assert Play.objects.filter(station=cut).count() == 4
    monkeypatch.setattr(sam, "_fetch", original)

    assert import_sam(station=cut, chunk_size=2).stations[0].error == ""
    import_sam(station=clean)
    assert [row[:5] for row in plays_of(cut)] == [row[:5] for row in plays_of(clean)]


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_sam_database_is_a_log_entry_without_the_password(db):
    station = make_station("offline", f"mysql://sam:s3cret-pw@127.0.0.1:{free_port()}/SAMDB")

    summary = import_sam()

    (result,) = summary.stations
    assert result.station == "offline"
    assert "s3cret-pw" not in result.error
    assert "mysql://sam:***@127.0.0.1" in result.error
    entry = BroadcastLogEntry.objects.get(station=station)
    assert (entry.level, entry.category, entry.event) == ("error", "database", "sam_sync_error")
    assert "s3cret-pw" not in entry.message + str(entry.metadata)
    assert Play.objects.count() == 0


def test_a_refused_login_is_a_log_entry_without_the_password(db, sam_database):
    server = sam_database.server
    station = make_station(
        "refused", f"mysql://nobody:wr0ng-pw@{server.host}:{server.port}/no_such_sam_db"
    )

    result = import_sam(station=station).stations[0]

    assert result.error
    assert "wr0ng-pw" not in result.error
    assert BroadcastLogEntry.objects.filter(station=station, event="sam_sync_error").count() == 1


def test_only_stations_with_a_sam_url_are_imported(db, sam_database):
    load_sam(sam_database)
    with_sam = make_station("with-sam", sam_database.url)
    make_station("without-sam", "")

    summary = import_sam()

    assert [s.station for s in summary.stations] == ["with-sam"]
    assert Play.objects.filter(station=with_sam).count() == 4


def test_a_second_import_skips_while_one_runs(station, sam_database):
    load_sam(sam_database)
    with job_lock("broadcast.import-sam") as acquired:
        assert acquired
        summary = import_sam(station=station)
    assert summary.skipped
    assert Play.objects.count() == 0


def test_manage_py_import_sam_for_one_station(station, sam_database, capsys):
    load_sam(sam_database)

    call_command("import_sam", "--station", "night-radio")

    assert "night-radio: 4 songs, 4 plays, 4 requests" in capsys.readouterr().out
    assert Play.objects.filter(station=station).count() == 4


def test_the_beat_runs_the_sam_import_every_5_minutes():
    entry = CELERY_BEAT_SCHEDULE["broadcast-import-sam"]
    assert entry["task"] == "broadcast.import_sam"
    assert maybe_schedule(entry["schedule"]).run_every.total_seconds() == 300
    assert entry["options"]["expires"] == 290


def test_the_celery_task_imports_every_sam_station(db, sam_database):
    from streams.broadcast.tasks import import_sam as import_sam_task

    load_sam(sam_database)
    station = make_station("task-radio", sam_database.url)

    result = import_sam_task.apply().get()

    assert result["stations"][0]["station"] == "task-radio"
    assert Play.objects.filter(station=station).count() == 4
