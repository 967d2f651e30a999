"""Demo broadcast data for `manage.py seed_demo`: a radio station in Europe/Berlin with two
Icecast encoders and a week of listeners, listening sessions, plays, requests, event log,
health snapshots and alerts — deterministic (seeded) and written with bulk_create.

The encoders point at 127.0.0.1 ports nothing listens on and the station does not take
plays from the poller, so a running poller records the encoders as down and never
invents plays.
"""

from __future__ import annotations

import bisect
import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction

from streams.models import Organizer, Stream, StreamProvider

from .models import (
    Alert,
    BroadcastLogEntry,
    HealthSnapshot,
    ListenerSession,
    ListenerSnapshot,
    LogCategory,
    LogLevel,
    Play,
    Song,
    SongRequest,
    Station,
)
from .secrets import identity_hash

DEMO_SEED = 2026
DEMO_STATION_KEY = "wavelength-fm"
DEMO_TIMEZONE = "Europe/Berlin"
DEMO_DAYS = 7
POLL_SECONDS = 30
ENCODERS = [  # mount, share of the audience, dead local port
    ("/live.mp3", 0.7, 9),
    ("/live.aac", 0.3, 9),
]
SONG_COUNT = 300
LISTENER_POOL = 400
SESSION_COUNT = 1500
REQUEST_COUNT = 240
BATCH = 2000

ARTISTS = [
    "Ayla Moon",
    "Borealis",
    "Cyan Kite",
    "Delta Ferns",
    "Echo Harbour",
    "Fjord Lights",
    "Glass Orchard",
    "Hollow Pines",
    "Indigo Vale",
    "Juniper Drive",
    "Kestrel Bay",
    "Lumen Tide",
    "Marble Sky",
    "Northern Rooms",
    "Opal Static",
    "Paper Lanterns",
]
WORDS = [
    "Morning",
    "Static",
    "Harbour",
    "Neon",
    "Paper",
    "Silver",
    "Evening",
    "River",
    "Glass",
    "Summer",
    "Echo",
    "Window",
    "Velvet",
    "Signal",
    "Distant",
    "Golden",
    "Quiet",
    "Wires",
]
GENRES = ["Pop", "Indie", "Electronic", "Jazz", "Rock", "Ambient", "Soul", ""]


def _demo_stream() -> Stream:
    organizer, _ = Organizer.objects.get_or_create(
        slug="wavelength", defaults={"name": "Wavelength Radio"}
    )
    stream, _ = Stream.objects.get_or_create(
        key=DEMO_STATION_KEY,
        defaults={
            "title": "Wavelength FM",
            "organizer": organizer,
            "kind": Stream.Kind.AUDIO,
            "status": Stream.Status.LIVE,
        },
    )
    return stream


def _audience(local_hour: float) -> float:
    """Listeners of the whole station by local hour: lowest near 04:00, highest near 17:00."""
    return 15 + 110 * (0.5 - 0.5 * math.cos(2 * math.pi * (local_hour - 4) / 24)) ** 1.5


def seed_broadcast_demo(*, reset: bool = False) -> str:
    stream = _demo_stream()
    if reset:
        stream.delete()
        stream = _demo_stream()
    station = Station.objects.filter(stream=stream).first()
    if station is not None and Play.objects.filter(station=station).exists():
        return f"station {DEMO_STATION_KEY} (broadcast data already loaded)"
    with transaction.atomic():
        summary = _seed(stream=stream, station=station)
    # The play figures read precomputed caches (refreshed hourly): fill them now.
    from .play_stats import broadcast_stats_refresh

    broadcast_stats_refresh(station=Station.objects.get(stream=stream))
    return summary


def _seed(*, stream: Stream, station: Station | None) -> str:
    rng = random.Random(DEMO_SEED)
    zone = ZoneInfo(DEMO_TIMEZONE)
    if station is None:
        station = Station.objects.create(
            stream=stream, timezone=DEMO_TIMEZONE, plays_from_poller=False
        )
    encoders = []
    for i, (mount, share, port) in enumerate(ENCODERS):
        encoder, _ = StreamProvider.objects.get_or_create(
            stream=stream,
            provider=StreamProvider.Provider.ICECAST,
            external_id=mount,
            # Nothing serves these ports: the demo's week is seeded, not polled.
            defaults={
                "config": {"url": f"http://127.0.0.1:{port}", "poll": False},
                "is_primary": i == 0,
            },
        )
        encoders.append((encoder, share))

    end = datetime.now(UTC).replace(microsecond=0)
    end -= timedelta(seconds=end.second % POLL_SECONDS)
    start = end - timedelta(days=DEMO_DAYS)
    rounds = int((end - start).total_seconds() // POLL_SECONDS)
    # One outage of the AAC encoder, a little over 3 minutes, two days ago at 21:00 local.
    outage_local = (end.astimezone(zone) - timedelta(days=2)).replace(hour=21, minute=0, second=0)
    outage_start = outage_local.astimezone(UTC)
    outage_end = outage_start + timedelta(seconds=200)

    snapshots, round_times, round_totals = [], [], []
    for r in range(rounds):
        round_at = start + timedelta(seconds=r * POLL_SECONDS)
        local = round_at.astimezone(zone)
        audience = _audience(local.hour + local.minute / 60)
        total = 0
        for n, (encoder, share) in enumerate(encoders):
            up = not (n == 1 and outage_start <= round_at < outage_end)
            listeners = max(0, round(audience * share + rng.gauss(0, 2))) if up else 0
            total += listeners
            snapshots.append(
                ListenerSnapshot(
                    encoder=encoder,
                    taken_at=round_at + timedelta(milliseconds=150 + 200 * n),
                    round_at=round_at,
                    listeners=listeners,
                    server_peak=None,
                    source_up=up,
                    bitrate=128 if n == 0 else 64,
                )
            )
        round_times.append(round_at)
        round_totals.append(total)
    ListenerSnapshot.objects.bulk_create(snapshots, batch_size=BATCH)

    listeners = [
        identity_hash(station=station, ip=f"198.51.{i // 250}.{i % 250 + 1}", user_agent="demo")
        for i in range(LISTENER_POOL)
    ]
    sessions = []
    span = (end - start).total_seconds()
    while len(sessions) < SESSION_COUNT:
        began = start + timedelta(seconds=rng.uniform(0, span - 60))
        local = began.astimezone(zone)
        if rng.random() * 125 > _audience(local.hour + local.minute / 60):
            continue  # fewer sessions start at night
        seconds = min(rng.lognormvariate(6.8, 1.2), 4 * 3600)  # median ~15 min, some < 60 s
        encoder = encoders[0][0] if rng.random() < 0.7 else encoders[1][0]
        sessions.append(
            ListenerSession(
                encoder=encoder,
                listener=rng.choice(listeners),
                client_ref=str(len(sessions) + 1),
                started_at=began,
                last_seen_at=min(began + timedelta(seconds=seconds), end),
            )
        )
    ListenerSession.objects.bulk_create(sessions, batch_size=BATCH)

    songs = Song.objects.bulk_create(
        [
            Song(
                station=station,
                external_id=str(1000 + i),
                title=f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                artist=rng.choice(ARTISTS),
                album=f"{rng.choice(WORDS)} Sessions",
                genre=rng.choice(GENRES),
                duration_ms=rng.randint(150, 330) * 1000,
                song_type="S",
            )
            for i in range(SONG_COUNT)
        ],
        batch_size=BATCH,
    )

    statuses = ["played"] * 5 + ["approved"] * 2 + ["denied"] * 2 + ["pending"]
    requests = []
    for i in range(REQUEST_COUNT):
        requested_at = start + timedelta(seconds=rng.uniform(0, span - 3600))
        status = rng.choice(statuses)
        if requested_at > end - timedelta(hours=2):
            status = "pending"
        decided = requested_at + timedelta(seconds=rng.randint(20, 600))
        requests.append(
            SongRequest(
                station=station,
                external_id=str(5000 + i),
                song=rng.choice(songs),
                requested_at=requested_at,
                requester=rng.choice(listeners[:60]),
                status=status,
                decided_at=decided if status != "pending" else None,
                played_at=(
                    decided + timedelta(seconds=rng.randint(60, 2400))
                    if status == "played"
                    else None
                ),
            )
        )
    requests = SongRequest.objects.bulk_create(requests, batch_size=BATCH)
    played_requests = sorted(
        (r for r in requests if r.status == "played"), key=lambda r: r.played_at
    )

    plays, log = [], []
    at = start
    pending_requests = list(played_requests)
    while at < end:
        if pending_requests and pending_requests[0].played_at <= at:
            request = pending_requests.pop(0)
            song = request.song
        else:
            request, song = None, rng.choice(songs)
        roll = rng.random()
        if roll < 0.06:  # a skip
            played_ms, crossfade = rng.randint(4, 25) * 1000, False
        elif roll < 0.40:  # crossfaded into the next
            played_ms, crossfade = song.duration_ms - rng.randint(3, 10) * 1000, True
        else:
            played_ms, crossfade = song.duration_ms, False
        i = bisect.bisect_right(round_times, at) - 1
        at_start = (
            round_totals[i] if i >= 0 and (at - round_times[i]).total_seconds() < 60 else None
        )
        plays.append(
            Play(
                station=station,
                song=song,
                started_at=at,
                played_ms=played_ms if at + timedelta(milliseconds=played_ms) < end else None,
                crossfade=crossfade,
                listeners_at_start=at_start,
                request=request,
                source=Play.Source.PUSH,
                external_ref=f"demo-{len(plays) + 1}",
            )
        )
        if rng.random() < 0.15:
            log.append(
                _log(
                    station,
                    at,
                    LogLevel.INFO,
                    LogCategory.AUDIO,
                    "track_loaded",
                    f"Loaded {song}",
                    deck=rng.choice(["A", "B"]),
                    song=song.external_id,
                )
            )
        if crossfade and rng.random() < 0.1:
            log.append(
                _log(
                    station,
                    at + timedelta(milliseconds=played_ms),
                    LogLevel.DEBUG,
                    LogCategory.AUDIO,
                    "crossfade_started",
                    "Crossfade started",
                    deck="A",
                )
            )
        at += timedelta(milliseconds=played_ms)
    Play.objects.bulk_create(plays, batch_size=BATCH)

    aac = ENCODERS[1][0]
    log += [
        _log(
            station,
            outage_start,
            LogLevel.ERROR,
            LogCategory.STREAM,
            "stream_disconnected",
            f"Encoder {aac} lost its connection to Icecast",
            encoder=aac,
        ),
        _log(
            station,
            outage_end,
            LogLevel.INFO,
            LogCategory.STREAM,
            "stream_connected",
            f"Encoder {aac} reconnected",
            encoder=aac,
        ),
    ]
    for day in range(DEMO_DAYS):
        morning = (start + timedelta(days=day)).astimezone(zone).replace(hour=6, minute=0, second=0)
        log += [
            _log(
                station,
                morning,
                LogLevel.INFO,
                LogCategory.SCHEDULER,
                "show_started",
                "Show 'Early Wave' started",
                metadata={"show": "Early Wave"},
            ),
            _log(
                station,
                morning + timedelta(hours=3),
                LogLevel.INFO,
                LogCategory.SCHEDULER,
                "show_ended",
                "Show 'Early Wave' ended",
                metadata={"show": "Early Wave"},
            ),
            _log(
                station,
                morning + timedelta(hours=12),
                LogLevel.INFO,
                LogCategory.GATEWAY,
                "remote_dj_joined",
                "Remote DJ joined",
                metadata={"dj": "dj-nova"},
            ),
            _log(
                station,
                morning + timedelta(hours=14),
                LogLevel.INFO,
                LogCategory.GATEWAY,
                "remote_dj_left",
                "Remote DJ left",
                metadata={"dj": "dj-nova"},
            ),
            _log(
                station,
                morning + timedelta(hours=1),
                LogLevel.DEBUG,
                LogCategory.SCRIPTING,
                "script_triggered",
                "Hourly ID script triggered",
            ),
            _log(
                station,
                morning + timedelta(hours=17),
                LogLevel.WARN,
                LogCategory.BUFFER,
                "ring_buffer_low",
                "Ring buffer of deck B at 18 %",
                deck="B",
            ),
        ]
    log += [
        _log(
            station,
            start + timedelta(hours=30),
            LogLevel.ERROR,
            LogCategory.SCRIPTING,
            "script_error",
            "Script 'weather' failed: timeout",
        ),
        _log(
            station,
            start + timedelta(hours=50),
            LogLevel.WARN,
            LogCategory.DATABASE,
            "mysql_disconnected",
            "SAM database connection lost",
        ),
        _log(
            station,
            start + timedelta(hours=50, minutes=2),
            LogLevel.INFO,
            LogCategory.DATABASE,
            "mysql_connected",
            "SAM database connection restored",
        ),
        _log(
            station,
            end - timedelta(hours=5),
            LogLevel.WARN,
            LogCategory.DATABASE,
            "alert_disk_low",
            "Recording disk space low: 812 MB free",
            metadata={"alert": "disk_low", "subject": "recordings"},
        ),
    ]
    BroadcastLogEntry.objects.bulk_create(log, batch_size=BATCH)

    health = []
    for minute in range(DEMO_DAYS * 24 * 60):
        taken_at = start + timedelta(minutes=minute)
        down = outage_start <= taken_at < outage_end
        disk = 4096 - 3300 * minute / (DEMO_DAYS * 24 * 60)  # the recordings fill the disk
        health.append(
            HealthSnapshot(
                station=station,
                taken_at=taken_at,
                cpu_pct=round(8 + 6 * rng.random(), 1),
                memory_mb=round(240 + 20 * rng.random(), 1),
                ring_buffer_fill_deck_a=round(0.8 + 0.19 * rng.random(), 3),
                ring_buffer_fill_deck_b=round(0.75 + 0.24 * rng.random(), 3),
                decoder_latency_ms=round(2 + 3 * rng.random(), 2),
                stream_connected=not down,
                db_connected=True,
                active_encoders=1 if down else 2,
                disk_free_mb=round(disk, 1),
            )
        )
    HealthSnapshot.objects.bulk_create(health, batch_size=BATCH)

    Alert.objects.bulk_create(
        [
            Alert(
                station=station,
                kind=Alert.Kind.STREAM_DOWN,
                subject=aac,
                opened_at=outage_start + timedelta(seconds=30),
                resolved_at=outage_end,
                message=f"Icecast stream down: {aac}",
            ),
            Alert(
                station=station,
                kind=Alert.Kind.DISK_LOW,
                subject="recordings",
                opened_at=end - timedelta(hours=5),
                message="Recording disk space low: 812 MB free",
            ),
        ]
    )
    return (
        f"station {DEMO_STATION_KEY}: {len(snapshots)} listener snapshots, {len(sessions)} "
        f"sessions, {len(plays)} plays of {len(songs)} songs, {len(requests)} requests, "
        f"{len(log)} log entries, {len(health)} health snapshots, 2 alerts"
    )


def _log(
    station: Station,
    timestamp: datetime,
    level: str,
    category: str,
    event: str,
    message: str,
    *,
    metadata: dict | None = None,
    deck: str = "",
    song: str = "",
    encoder: str = "",
) -> BroadcastLogEntry:
    return BroadcastLogEntry(
        station=station,
        timestamp=timestamp,
        level=level,
        category=category,
        event=event,
        message=message,
        metadata=metadata or {},
        deck=deck,
        song_external_id=song,
        encoder=encoder,
    )
