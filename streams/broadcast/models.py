"""Broadcast analytics data (SPEC §9.1).

A `Station` is an audio `Stream` with a timezone and its secrets; its encoders are the
stream's `StreamProvider`s of provider `icecast` or `shoutcast`. `ListenerSnapshot` and
`BroadcastLogEntry` are raw, append-only tables that nothing points to, so they can be
partitioned by month later.
"""

from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from streams.models import Stream, StreamProvider


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not an IANA timezone name (e.g. Europe/Berlin)."
        ) from None


class Station(models.Model):
    """An internet radio station: one-to-one with an audio stream."""

    stream = models.OneToOneField(Stream, on_delete=models.CASCADE, related_name="station")
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA name; days, hours and reports are in this timezone.",
    )
    ingest_key_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="SHA-256 of the push API key."
    )
    ingest_key_prefix = models.CharField(
        max_length=12, blank=True, default="", help_text="First characters, to tell keys apart."
    )
    sam_database_url = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="mysql://user:password@host:3306/SAMDB — SAM Broadcaster's database.",
    )
    listener_secret = models.CharField(
        max_length=128, blank=True, default="", help_text="Key of the listener identity hashes."
    )
    plays_from_poller = models.BooleanField(
        default=True,
        help_text="Record plays from title changes seen by the listener poller "
        "(off when the playout pushes plays or SAM is imported).",
    )
    sam_cursor = models.JSONField(
        default=dict, blank=True, help_text="Last imported SAM ids per table."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stream__title"]

    def __str__(self) -> str:
        return self.stream.title

    @property
    def key(self) -> str:
        return self.stream.key


ENCODER_PROVIDERS = (StreamProvider.Provider.ICECAST, StreamProvider.Provider.SHOUTCAST)


class BroadcastBatch(models.Model):
    """One accepted push batch: the exactly-once ledger of the push API."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.UUIDField()
    received_at = models.DateTimeField()
    item_count = models.PositiveIntegerField()
    ingested = models.JSONField(
        default=dict, blank=True, help_text="Items stored per part: the answer a retry gets again."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["station", "batch_id"], name="one_broadcast_batch")
        ]

    def __str__(self) -> str:
        return f"{self.batch_id} ({self.item_count} items)"


class ListenerSnapshot(models.Model):
    """One encoder's answer to one poll round."""

    encoder = models.ForeignKey(
        StreamProvider, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    taken_at = models.DateTimeField()
    round_at = models.DateTimeField(help_text="Start of the poll round; shared by its encoders.")
    listeners = models.PositiveIntegerField(default=0)
    server_peak = models.PositiveIntegerField(null=True, blank=True)
    source_up = models.BooleanField(default=False)
    bitrate = models.PositiveIntegerField(null=True, blank=True, help_text="kbit/s")
    title = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-taken_at"]
        indexes = [
            models.Index(fields=["encoder", "taken_at"], name="snapshot_encoder_time"),
            # The station totals group by poll round: a range on round_at per encoder.
            models.Index(fields=["encoder", "round_at"], name="snapshot_encoder_round"),
        ]

    def __str__(self) -> str:
        return f"{self.encoder_id} @ {self.taken_at:%Y-%m-%d %H:%M:%S}: {self.listeners}"


class ListenerHour(models.Model):
    """Listener figures of one station-local hour, rolled up from the snapshots once the
    hour is over (SPEC §9.3): per encoder, and (encoder empty) the station total per poll
    round. The daily figures read these rows instead of the raw snapshots, so they keep
    their answer after the snapshots behind them are purged.

    A row per encoder holds only when a snapshot's count held in the hour; the station
    row is written for every rolled-up hour, empty ones included, and marks it done."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+", db_index=False)
    encoder = models.ForeignKey(
        StreamProvider,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the station total per poll round.",
    )
    start = models.DateTimeField(help_text="Start of the local hour (stored in UTC).")
    end = models.DateTimeField(help_text="Its end: one hour later, or earlier at a DST shift.")
    observed_seconds = models.FloatField(help_text="Seconds a snapshot's count held.")
    listener_seconds = models.FloatField(help_text="Count × seconds it held, summed.")
    peak = models.PositiveIntegerField(
        null=True, blank=True, help_text="Largest count taken in the hour."
    )

    class Meta:
        ordering = ["station", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "start", "encoder"],
                condition=Q(encoder__isnull=False),
                name="one_listener_hour_per_encoder",
            ),
            models.UniqueConstraint(
                fields=["station", "start"],
                condition=Q(encoder__isnull=True),
                name="one_listener_hour_per_station",
            ),
        ]
        indexes = [models.Index(fields=["station", "start"], name="listener_hour_station")]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} {self.encoder_id or 'total'}: {self.peak}"


class ListenerSession(models.Model):
    """One listener's connection to one encoder, from the server's client list."""

    encoder = models.ForeignKey(
        StreamProvider, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    listener = models.CharField(max_length=64, help_text="HMAC-SHA256 of IP|User-Agent.")
    client_ref = models.CharField(
        max_length=64, blank=True, default="", help_text="The server's id of the connection."
    )
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["encoder", "listener", "last_seen_at"], name="lsession_open"),
            models.Index(fields=["encoder", "started_at"], name="lsession_encoder_start"),
            # Sessions overlapping a window end after its start: a range on last_seen_at.
            models.Index(fields=["encoder", "last_seen_at"], name="lsession_encoder_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.listener[:12]}… on {self.encoder_id} from {self.started_at:%Y-%m-%d %H:%M}"


class Song(models.Model):
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="songs")
    external_id = models.CharField(max_length=100, help_text="The playout's or SAM's song id.")
    title = models.CharField(max_length=500, blank=True, default="")
    artist = models.CharField(max_length=500, blank=True, default="")
    album = models.CharField(max_length=500, blank=True, default="")
    genre = models.CharField(max_length=200, blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    song_type = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["artist", "title"]
        constraints = [
            models.UniqueConstraint(fields=["station", "external_id"], name="one_song_per_id")
        ]

    def __str__(self) -> str:
        return f"{self.artist} – {self.title}" if self.artist else self.title


class SongRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        PLAYED = "played"

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="requests")
    external_id = models.CharField(max_length=100)
    song = models.ForeignKey(Song, on_delete=models.SET_NULL, null=True, blank=True)
    requested_at = models.DateTimeField()
    requester = models.CharField(
        max_length=64, blank=True, default="", help_text="HMAC-SHA256 of who asked."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    played_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(fields=["station", "external_id"], name="one_request_per_id")
        ]
        indexes = [models.Index(fields=["station", "requested_at"], name="request_station_time")]

    def __str__(self) -> str:
        return f"request {self.external_id} ({self.status})"


class Play(models.Model):
    class Source(models.TextChoices):
        PUSH = "push"
        ICECAST = "icecast"
        SHOUTCAST = "shoutcast"
        SAM = "sam"

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="plays")
    song = models.ForeignKey(Song, on_delete=models.CASCADE, related_name="plays")
    started_at = models.DateTimeField()
    played_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty while a play seen by the poller is on air."
    )
    crossfade = models.BooleanField(default=False)
    listeners_at_start = models.PositiveIntegerField(null=True, blank=True)
    request = models.ForeignKey(SongRequest, on_delete=models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    encoder = models.ForeignKey(
        StreamProvider,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The encoder whose title change started it (poller plays).",
    )
    external_ref = models.CharField(
        max_length=100, blank=True, default="", help_text="SAM historylist ID."
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["station", "started_at"], name="play_station_time"),
            models.Index(fields=["song", "started_at"], name="play_song_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "source", "external_ref"],
                condition=~Q(external_ref=""),
                name="one_play_per_external_ref",
            )
        ]

    def __str__(self) -> str:
        return f"{self.song} @ {self.started_at:%Y-%m-%d %H:%M}"


class LogLevel(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class LogCategory(models.TextChoices):
    AUDIO = "audio"
    STREAM = "stream"
    SCHEDULER = "scheduler"
    GATEWAY = "gateway"
    SCRIPTING = "scripting"
    DATABASE = "database"
    BUFFER = "buffer"


class BroadcastLogEntry(models.Model):
    """The station's event log: pushed by the playout and written by the poller and alerts."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+", db_index=False)
    timestamp = models.DateTimeField()
    level = models.CharField(max_length=5, choices=LogLevel.choices)
    category = models.CharField(max_length=10, choices=LogCategory.choices)
    event = models.CharField(max_length=100)
    message = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    deck = models.CharField(max_length=16, blank=True, default="")
    song_external_id = models.CharField(max_length=100, blank=True, default="")
    encoder = models.CharField(
        max_length=200, blank=True, default="", help_text="Mount or sid of the encoder."
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "broadcast log entries"
        indexes = [
            models.Index(fields=["station", "-timestamp"], name="log_station_time"),
            models.Index(fields=["station", "level", "-timestamp"], name="log_station_level"),
            models.Index(fields=["station", "category", "-timestamp"], name="log_station_cat"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.level} {self.event}"


class HealthSnapshot(models.Model):
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="health")
    taken_at = models.DateTimeField()
    cpu_pct = models.FloatField()
    memory_mb = models.FloatField()
    ring_buffer_fill_deck_a = models.FloatField(help_text="0–1")
    ring_buffer_fill_deck_b = models.FloatField(help_text="0–1")
    decoder_latency_ms = models.FloatField()
    stream_connected = models.BooleanField()
    db_connected = models.BooleanField()
    active_encoders = models.PositiveIntegerField()
    disk_free_mb = models.FloatField()

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["station", "taken_at"], name="health_station_time")]

    def __str__(self) -> str:
        return f"health @ {self.taken_at:%Y-%m-%d %H:%M:%S}"


class Alert(models.Model):
    class Kind(models.TextChoices):
        STREAM_DOWN = "stream_down"
        DATABASE_LOST = "database_lost"
        DISK_LOW = "disk_low"
        BUFFER_UNDERRUN = "buffer_underrun"

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=200, help_text="The encoder, deck or disk concerned.")
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "kind", "subject"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}" + ("" if self.resolved_at else " (open)")


class PlayStatsCache(models.Model):
    """Per song and period, precomputed from plays (refreshed hourly, SPEC §9.4)."""

    class Period(models.TextChoices):
        ALL = "all"
        D7 = "7d"
        D30 = "30d"
        D90 = "90d"

    station = models.ForeignKey(
        Station,
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        help_text="The song's station, kept here so a station's ranking reads one index.",
    )
    song = models.ForeignKey(Song, on_delete=models.CASCADE, related_name="stats")
    period = models.CharField(max_length=3, choices=Period.choices)
    play_count = models.PositiveIntegerField(default=0)
    total_played_ms = models.BigIntegerField(default=0)
    last_played_at = models.DateTimeField(null=True, blank=True)
    skip_count = models.PositiveIntegerField(default=0)
    crossfade_count = models.PositiveIntegerField(default=0)
    measured_count = models.PositiveIntegerField(
        default=0, help_text="Plays whose played_ms is known (the divisor of avg_played_ms)."
    )
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["song", "period"], name="one_stats_row_per_period")
        ]
        indexes = [
            models.Index(
                fields=["station", "period", "-play_count", "-total_played_ms"],
                name="stats_station_rank",
            )
        ]

    def __str__(self) -> str:
        return f"{self.song_id} {self.period}: {self.play_count}"


class HourlyPlayCount(models.Model):
    """Plays starting in each station-local hour (the heatmap), precomputed."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    date = models.DateField(help_text="Station-local date.")
    hour = models.PositiveSmallIntegerField(help_text="Station-local hour, 0–23.")
    fold = models.PositiveSmallIntegerField(
        default=0, help_text="1 for the second pass of an hour repeated when DST ends."
    )
    play_count = models.PositiveIntegerField(default=0)
    unique_songs = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["station", "date", "hour", "fold"], name="one_hour_row")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.hour:02d}h: {self.play_count}"
