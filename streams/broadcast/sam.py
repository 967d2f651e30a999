"""SAM Broadcaster import (SPEC §9.2): songs, plays and requests read from SAM's own
MySQL/MariaDB tables (`songlist`, `historylist`, `requestlist`; SAM 4 layout, columns as
SAM names them: `ID`, `songID`, `date_played`, `t_stamp`, …).

Incremental and resumable: each table is read in chunks ordered by `ID`, starting after
the last ID imported (`Station.sam_cursor`); a chunk and the cursor move commit together,
so a crash loses at most the chunk in flight and a rerun picks up there. Rows carry their
SAM ID (`Song.external_id`, `Play.external_ref` with source `sam`, `SongRequest.external_id`)
under unique constraints, so nothing is imported twice.

SAM writes local wall-clock times of its machine; they are read as the station's
timezone. An unreachable SAM database is a `database`/`sam_sync_error` log entry and a
failed station in the summary, never an exception out of the job.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import asdict, dataclass, field
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from echonest_analytics.locks import job_lock

from .log import log_entry_write
from .models import LogCategory, LogLevel, Play, Song, SongRequest, Station
from .play_stats import broadcast_stats_refresh_after_import
from .secrets import identity_hash
from .selectors import listeners_at_starts, station_timezone

logger = logging.getLogger(__name__)

SAM_IMPORT_LOCK = "broadcast.import-sam"
CHUNK_SIZE = 500
CONNECT_TIMEOUT = 5  # seconds
READ_TIMEOUT = 60  # seconds per query
# The next item starting up to this long before the outgoing one's end is a crossfade;
# earlier than that it was cut short (a skip when under 30 s played).
CROSSFADE_MAX_MS = 15_000
# date_played has whole seconds: an overlap of a second or less is rounding, not a fade.
CROSSFADE_MIN_MS = 1_000

URL_SCHEMES = ("mysql", "mariadb", "mysql+pymysql")

# SAM's request status → ours. SAM puts an accepted request in the queue as `pending`
# and marks it `played` when it airs; `ignored` is the DJ turning it down.
REQUEST_STATUS = {
    "new": SongRequest.Status.PENDING,
    "pending": SongRequest.Status.APPROVED,
    "ignored": SongRequest.Status.DENIED,
    "played": SongRequest.Status.PLAYED,
}
REQUEST_CODE_OK = (0, 200)  # any other code is SAM refusing the request

SONG_COLUMNS = "ID, filename, songtype, duration, artist, title, album, genre"
HISTORY_COLUMNS = (
    "ID, songID, filename, date_played, duration, artist, title, album, songtype, "
    "listeners, requestID"
)
REQUEST_COLUMNS = "ID, songID, t_stamp, host, code, status"


class SamUrlError(ValueError):
    """The station's SAM database URL is not a mysql:// URL."""


@dataclass
class StationSamImport:
    station: str
    songs: int = 0
    plays: int = 0
    requests: int = 0
    requests_updated: int = 0
    error: str = ""


@dataclass
class SamImportSummary:
    stations: list[StationSamImport] = field(default_factory=list)
    skipped: str = ""

    @property
    def failures(self) -> list[StationSamImport]:
        return [s for s in self.stations if s.error]

    def as_dict(self) -> dict:
        return {"stations": [asdict(s) for s in self.stations], "skipped": self.skipped}


# ---------------------------------------------------------------------------------------
# Connection


def sam_connection_params(url: str) -> dict:
    """PyMySQL connect() arguments of `mysql://user:password@host:port/database`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise SamUrlError("the SAM database URL must look like mysql://user:pass@host:3306/db")
    database = parts.path.lstrip("/")
    if not database:
        raise SamUrlError("the SAM database URL names no database (mysql://…/SAMDB)")
    try:
        port = parts.port or 3306
    except ValueError:
        raise SamUrlError("the SAM database URL has an invalid port") from None
    return {
        "host": parts.hostname,
        "port": port,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": unquote(database),
    }


def sam_url_redacted(url: str) -> str:
    """The URL with its password replaced, fit for logs and messages."""
    try:
        params = sam_connection_params(url)
    except SamUrlError:
        return "(invalid SAM database URL)"
    user = f"{params['user']}:***@" if params["user"] else ""
    return f"mysql://{user}{params['host']}:{params['port']}/{params['database']}"


def _connect(params: dict) -> pymysql.connections.Connection:
    return pymysql.connect(
        **params,
        charset="utf8mb4",
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        write_timeout=READ_TIMEOUT,
        cursorclass=pymysql.cursors.DictCursor,
        autocommit=True,
    )


def _fetch(connection, sql: str, params: tuple | list) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# ---------------------------------------------------------------------------------------
# Row conversion


def _local_instant(value, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """SAM's naive local datetime as an aware UTC instant; None for SAM's zero dates
    (which PyMySQL hands back as strings) and NULLs."""
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=zone).astimezone(dt.UTC)


def _text(value, limit: int) -> str:
    return ("" if value is None else str(value)).strip()[:limit]


def _duration_ms(value) -> int | None:
    try:
        ms = int(value or 0)
    except (TypeError, ValueError):
        return None
    return ms if ms > 0 else None


def _played(
    *, duration_ms: int | None, started_at: dt.datetime, next_started_at: dt.datetime
) -> tuple[int, bool]:
    """(played_ms, crossfade) of an item SAM logged, from when the next item started."""
    gap_ms = int((next_started_at - started_at).total_seconds() * 1000)
    if duration_ms is None:
        return max(gap_ms, 0), False
    if gap_ms < 0:  # the SAM machine's clock went back
        return duration_ms, False
    overlap_ms = duration_ms - gap_ms
    crossfade = CROSSFADE_MIN_MS < overlap_ms <= CROSSFADE_MAX_MS
    return min(duration_ms, gap_ms), crossfade


# ---------------------------------------------------------------------------------------
# The import


def _cursor_get(station: Station, table: str) -> int:
    return int((station.sam_cursor or {}).get(table, 0))


def _cursor_set(station: Station, table: str, last_id: int) -> None:
    station.sam_cursor = {**(station.sam_cursor or {}), table: last_id}
    Station.objects.filter(pk=station.pk).update(sam_cursor=station.sam_cursor)


def _songs_chunk_write(*, station: Station, rows: list[dict]) -> None:
    songs = [
        Song(
            station=station,
            external_id=str(row["ID"]),
            title=_text(row.get("title"), 500) or _text(row.get("filename"), 500),
            artist=_text(row.get("artist"), 500),
            album=_text(row.get("album"), 500),
            genre=_text(row.get("genre"), 200),
            duration_ms=_duration_ms(row.get("duration")),
            song_type=_text(row.get("songtype"), 16),
        )
        for row in rows
    ]
    Song.objects.bulk_create(
        songs,
        update_conflicts=True,
        unique_fields=["station", "external_id"],
        update_fields=["title", "artist", "album", "genre", "duration_ms", "song_type"],
    )


def _song_ids(*, station: Station, external_ids: set[str]) -> dict[str, int]:
    return dict(
        Song.objects.filter(station=station, external_id__in=external_ids).values_list(
            "external_id", "pk"
        )
    )


def _request_status(row: dict) -> str:
    code = row.get("code") or 0
    if code not in REQUEST_CODE_OK:
        return SongRequest.Status.DENIED
    return REQUEST_STATUS.get(str(row.get("status") or "new"), SongRequest.Status.PENDING)


def _requests_write(*, station: Station, rows: list[dict], zone: zoneinfo.ZoneInfo) -> int:
    """Upsert requests by their SAM ID; returns how many changed status."""
    song_ids = _song_ids(station=station, external_ids={str(r["songID"]) for r in rows})
    before = dict(
        SongRequest.objects.filter(
            station=station, external_id__in=[str(r["ID"]) for r in rows]
        ).values_list("external_id", "status")
    )
    requests = []
    for row in rows:
        requested_at = _local_instant(row.get("t_stamp"), zone)
        host = _text(row.get("host"), 255)
        requests.append(
            SongRequest(
                station=station,
                external_id=str(row["ID"]),
                song_id=song_ids.get(str(row["songID"])),
                requested_at=requested_at or timezone.now(),
                # The requester's IP is hashed here and never stored (SPEC §10).
                requester=identity_hash(station=station, ip=host) if host else "",
                status=_request_status(row),
            )
        )
    SongRequest.objects.bulk_create(
        requests,
        update_conflicts=True,
        unique_fields=["station", "external_id"],
        update_fields=["song", "requested_at", "requester", "status"],
    )
    # A request we saw air (historylist) stays played whatever SAM's row says meanwhile.
    SongRequest.objects.filter(
        station=station, external_id__in=[r.external_id for r in requests], played_at__isnull=False
    ).exclude(status=SongRequest.Status.PLAYED).update(status=SongRequest.Status.PLAYED)
    return sum(1 for r in requests if r.external_id in before and before[r.external_id] != r.status)


def _history_chunk_write(
    *,
    station: Station,
    rows: list[dict],
    previous_row: dict | None,
    zone: zoneinfo.ZoneInfo,
) -> int:
    """Plays of one chunk of historylist rows (ID order); returns how many were new.

    An item's played_ms is known once the next item starts: the last play of a chunk
    stays open (played_ms empty) until the next chunk or run closes it."""
    items = []
    for row in rows:
        started_at = _local_instant(row.get("date_played"), zone)
        if started_at is not None:
            items.append((row, started_at))
    if not items:
        return 0
    if previous_row is not None:
        _previous_play_close(
            station=station, previous_row=previous_row, next_started_at=items[0][1], zone=zone
        )
    song_ids = _song_ids(station=station, external_ids={str(r["songID"]) for r, _ in items})
    missing = {str(r["songID"]): r for r, _ in items if str(r["songID"]) not in song_ids}
    if missing:
        # A song gone from songlist (or not imported yet): historylist carries its tags.
        _songs_chunk_write(
            station=station, rows=[{**row, "ID": key} for key, row in missing.items()]
        )
        song_ids = _song_ids(station=station, external_ids={str(r["songID"]) for r, _ in items})
    request_ids = {str(r["requestID"]) for r, _ in items if r.get("requestID")}
    requests = {
        r.external_id: r
        for r in SongRequest.objects.filter(station=station, external_id__in=request_ids)
    }
    existing = set(
        Play.objects.filter(
            station=station,
            source=Play.Source.SAM,
            external_ref__in=[str(r["ID"]) for r, _ in items],
        ).values_list("external_ref", flat=True)
    )
    listeners = listeners_at_starts(station=station, instants=[at for _, at in items])
    plays = []
    aired = []
    for i, (row, started_at) in enumerate(items):
        duration_ms = _duration_ms(row.get("duration"))
        played_ms, crossfade = (
            _played(duration_ms=duration_ms, started_at=started_at, next_started_at=items[i + 1][1])
            if i + 1 < len(items)
            else (None, False)
        )
        request = requests.get(str(row.get("requestID") or ""))
        if request is not None and request.played_at is None:
            request.played_at = started_at
            request.status = SongRequest.Status.PLAYED
            aired.append(request)
        if str(row["ID"]) in existing:
            continue
        at_start = listeners[started_at]
        plays.append(
            Play(
                station=station,
                song_id=song_ids[str(row["songID"])],
                started_at=started_at,
                played_ms=played_ms,
                crossfade=crossfade,
                # Our own poll rounds first (SPEC §9.3); SAM's own count without them.
                listeners_at_start=at_start if at_start is not None else row.get("listeners"),
                request=request,
                source=Play.Source.SAM,
                external_ref=str(row["ID"]),
            )
        )
    Play.objects.bulk_create(plays, ignore_conflicts=True)
    SongRequest.objects.bulk_update(aired, ["played_at", "status"])
    return len(plays)


def _previous_play_close(
    *, station: Station, previous_row: dict, next_started_at: dt.datetime, zone
) -> None:
    """Close the play the previous chunk left open, now that the next item started. Its
    own historylist row gives its duration, so the result never depends on where a chunk
    ended."""
    started_at = _local_instant(previous_row.get("date_played"), zone)
    if started_at is None:
        return
    played_ms, crossfade = _played(
        duration_ms=_duration_ms(previous_row.get("duration")),
        started_at=started_at,
        next_started_at=next_started_at,
    )
    Play.objects.filter(
        station=station,
        source=Play.Source.SAM,
        external_ref=str(previous_row["ID"]),
        played_ms__isnull=True,
    ).update(played_ms=played_ms, crossfade=crossfade)


def _table_import(
    *, sam, station: Station, table: str, columns: str, chunk_size: int, write
) -> int:
    """Read `table` after the station's cursor in ID order, one transaction per chunk
    (the rows and the cursor move together). Returns the rows read."""
    total = 0
    while True:
        last_id = _cursor_get(station, table)
        rows = _fetch(
            sam,
            f"SELECT {columns} FROM {table} WHERE ID > %s ORDER BY ID LIMIT %s",
            (last_id, chunk_size),
        )
        if not rows:
            return total
        with transaction.atomic():
            write(rows, last_id)
            _cursor_set(station, table, int(rows[-1]["ID"]))
        total += len(rows)
        if len(rows) < chunk_size:
            return total


def _open_requests_refresh(
    *, sam, station: Station, zone: zoneinfo.ZoneInfo, chunk_size: int
) -> int:
    """Re-read the requests still pending or approved within the expiry window: SAM
    changes a request's status in place, after its ID was imported."""
    since = timezone.now() - dt.timedelta(hours=settings.BROADCAST_REQUEST_EXPIRY_HOURS)
    open_ids = sorted(
        int(external_id)
        for external_id in SongRequest.objects.filter(
            station=station,
            status__in=[SongRequest.Status.PENDING, SongRequest.Status.APPROVED],
            requested_at__gte=since,
        ).values_list("external_id", flat=True)
        if external_id.isdigit()
    )
    changed = 0
    for start in range(0, len(open_ids), chunk_size):
        ids = open_ids[start : start + chunk_size]
        placeholders = ", ".join(["%s"] * len(ids))
        rows = _fetch(
            sam, f"SELECT {REQUEST_COLUMNS} FROM requestlist WHERE ID IN ({placeholders})", ids
        )
        if rows:
            with transaction.atomic():
                changed += _requests_write(station=station, rows=rows, zone=zone)
    return changed


def _failure_message(station: Station, exc: Exception, password: str) -> str:
    detail = str(exc)
    if password:
        detail = detail.replace(password, "***")
    return (
        f"SAM database {sam_url_redacted(station.sam_database_url)} could not be read: "
        f"{type(exc).__name__}: {detail}"
    )


def station_sam_import(*, station: Station, chunk_size: int = CHUNK_SIZE) -> StationSamImport:
    """Import one station's new SAM rows: songs, then requests (so plays can point at
    them), then plays."""
    result = StationSamImport(station=station.key)
    station.refresh_from_db(fields=["sam_cursor", "timezone"])
    zone = station_timezone(station=station)
    password = ""
    try:
        params = sam_connection_params(station.sam_database_url)
        password = params["password"]
        sam = _connect(params)
    except (SamUrlError, pymysql.MySQLError, OSError) as exc:
        return _failed(station=station, result=result, exc=exc, password=password)
    try:
        with sam:
            result.songs = _table_import(
                sam=sam,
                station=station,
                table="songlist",
                columns=SONG_COLUMNS,
                chunk_size=chunk_size,
                write=lambda rows, last_id: _songs_chunk_write(station=station, rows=rows),
            )

            def requests_write(rows, last_id):
                _requests_write(station=station, rows=rows, zone=zone)

            result.requests = _table_import(
                sam=sam,
                station=station,
                table="requestlist",
                columns=REQUEST_COLUMNS,
                chunk_size=chunk_size,
                write=requests_write,
            )
            result.requests_updated = _open_requests_refresh(
                sam=sam, station=station, zone=zone, chunk_size=chunk_size
            )
            plays = 0

            def history_write(rows, last_id):
                nonlocal plays
                previous = (
                    _fetch(
                        sam, f"SELECT {HISTORY_COLUMNS} FROM historylist WHERE ID = %s", (last_id,)
                    )
                    if last_id
                    else []
                )
                plays += _history_chunk_write(
                    station=station,
                    rows=rows,
                    previous_row=previous[0] if previous else None,
                    zone=zone,
                )

            _table_import(
                sam=sam,
                station=station,
                table="historylist",
                columns=HISTORY_COLUMNS,
                chunk_size=chunk_size,
                write=history_write,
            )
            result.plays = plays
    except (pymysql.MySQLError, OSError) as exc:
        return _failed(station=station, result=result, exc=exc, password=password)
    return result


def _failed(
    *, station: Station, result: StationSamImport, exc: Exception, password: str
) -> StationSamImport:
    result.error = _failure_message(station, exc, password)
    logger.warning("SAM import of station %s failed: %s", station.key, result.error)
    log_entry_write(
        station=station,
        level=LogLevel.ERROR,
        category=LogCategory.DATABASE,
        event="sam_sync_error",
        message=result.error,
        metadata={
            "error": type(exc).__name__,
            "songs": result.songs,
            "plays": result.plays,
            "requests": result.requests,
        },
    )
    return result


def import_sam(*, station: Station | None = None, chunk_size: int = CHUNK_SIZE) -> SamImportSummary:
    """Import new SAM rows for `station`, or every station with a SAM database URL. Skips
    while another import runs."""
    with job_lock(SAM_IMPORT_LOCK) as acquired:
        if not acquired:
            return SamImportSummary(skipped="another SAM import holds the lock")
        stations = (
            [station]
            if station is not None
            else list(Station.objects.exclude(sam_database_url="").select_related("stream"))
        )
        summary = SamImportSummary(
            stations=[station_sam_import(station=s, chunk_size=chunk_size) for s in stations]
        )
    # After the lock is released: the play caches of stations that got plays (SPEC §9.4).
    broadcast_stats_refresh_after_import(
        station_keys=[s.station for s in summary.stations if s.plays]
    )
    return summary
