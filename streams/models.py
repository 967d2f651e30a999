"""Streams, their providers, raw playback events, viewer sessions and daily stream stats.

Raw events (`PlaybackEvent`) are append-only and nothing has a foreign key to
them, so the table can be partitioned by month later without touching the rest.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Organizer(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="organizers"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Stream(models.Model):
    class Kind(models.TextChoices):
        VIDEO = "video"
        AUDIO = "audio"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        ENDED = "ended"

    key = models.SlugField(
        max_length=100, unique=True, help_text="URL-safe id players send as streamId."
    )
    title = models.CharField(max_length=200)
    organizer = models.ForeignKey(Organizer, on_delete=models.PROTECT, related_name="streams")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.VIDEO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.key})"


class StreamProvider(models.Model):
    class Provider(models.TextChoices):
        BUNNY_STREAM = "bunny_stream", "Bunny Stream"
        YOUTUBE = "youtube", "YouTube"
        HLS = "hls", "HLS"
        ICECAST = "icecast", "Icecast"
        SHOUTCAST = "shoutcast", "Shoutcast"

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="providers")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    external_id = models.CharField(
        max_length=500, help_text="Bunny video GUID, YouTube video id, HLS URL or mount."
    )
    config = models.JSONField(default=dict, blank=True, help_text='e.g. {"library_id": "12345"}')
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream"], condition=Q(is_primary=True), name="one_primary_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.external_id}"


class PlaybackEventType(models.TextChoices):
    PLAY = "play"
    PAUSE = "pause"
    HEARTBEAT = "heartbeat"
    ENDED = "ended"
    ERROR = "error"
    BUFFER_START = "buffer_start"
    BUFFER_END = "buffer_end"


class Device(models.TextChoices):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    TV = "tv"
    BOT = "bot"
    OTHER = "other"


class ViewerSession(models.Model):
    """One client's run of events on one stream (SPEC §6.1).

    Ingestion keeps the figures provisional; the aggregator rebuilds them exactly.
    """

    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="viewer_sessions", db_index=False
    )
    client_id = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    watch_seconds = models.FloatField(default=0)
    playing_seconds = models.FloatField(default=0)
    buffer_seconds = models.FloatField(default=0)
    buffer_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    country = models.CharField(max_length=2, blank=True, default="")
    device = models.CharField(max_length=8, choices=Device.choices, default=Device.OTHER)
    player_state = models.CharField(
        max_length=10, blank=True, default="", help_text="Player state after the last event."
    )
    finalized = models.BooleanField(default=False)
    # Video quality (SPEC §6.5), set by the aggregator from the session's events; the
    # database defaults cover the sessions ingestion opens before the aggregator has run.
    play_count = models.PositiveIntegerField(default=0, db_default=0)
    fatal_error_count = models.PositiveIntegerField(default=0, db_default=0)
    startup_ms = models.FloatField(
        null=True, blank=True, help_text="extra.startupMs of the session's first play that has one."
    )
    furthest_video_time = models.FloatField(
        null=True, blank=True, help_text="Largest videoTime of the session's events (seconds)."
    )
    video_duration = models.FloatField(
        null=True, blank=True, help_text="Largest extra.duration its events reported (seconds)."
    )

    class Meta:
        ordering = ["-started_at"]
        # No index holds last_event_at (or any figure a batch changes): ingestion's
        # update of a session is then a HOT update on PostgreSQL, which writes no index
        # entry (migration 0007, which also leaves room for it with a fillfactor).
        indexes = [
            models.Index(
                fields=["stream", "client_id", "started_at"], name="session_client_start_idx"
            ),
            models.Index(fields=["stream", "started_at"], name="session_stream_start_idx"),
            models.Index(
                fields=["started_at"], condition=Q(finalized=False), name="session_open_start_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} on {self.stream_id} at {self.started_at:%Y-%m-%d %H:%M}"


class PlaybackEvent(models.Model):
    """A raw player event as received (append-only). Never holds the client IP."""

    id = models.BigAutoField(primary_key=True)
    # No database constraint: it would check the stream of every event (100 lookups per
    # batch at commit). Ingestion writes an event only beside its batch's PlaybackBatch
    # row, in one transaction, and that row's constraint checks (and key-share locks) the
    # same stream, so no event is stored for a missing stream. Deleting a stream deletes
    # its events (on_delete, done by Django).
    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    client_id = models.CharField(max_length=64)
    # The session ingestion attached the event to. Raw rows are never rewritten: when the
    # aggregator later merges or splits sessions it keeps session ids where it can, and the
    # authoritative session is the one of the same stream and client whose
    # [started_at, last_event_at] holds occurred_at. Hence no database constraint.
    session = models.ForeignKey(
        ViewerSession,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    type = models.CharField(max_length=12, choices=PlaybackEventType.choices)
    video_time = models.FloatField(null=True, blank=True)
    occurred_at = models.DateTimeField(help_text="Client time, corrected for clock skew.")
    received_at = models.DateTimeField()
    country = models.CharField(max_length=2, blank=True, default="")
    device = models.CharField(max_length=8, choices=Device.choices, default=Device.OTHER)
    extra = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # The aggregator's windows run in (stream, client, occurred_at, id) order: with
            # `id` in the key the index gives that order whole, ties on one instant included.
            models.Index(
                fields=["stream", "client_id", "occurred_at", "id"], name="event_client_time_id_idx"
            ),
            # occurred_at is indexed by migration 0002: BRIN on PostgreSQL (rows arrive in
            # time order, so block ranges summarise it almost for free), B-tree elsewhere.
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.client_id} {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class PlaybackBatch(models.Model):
    """One accepted batch: the exactly-once key for retries and the aggregator's work list."""

    id = models.BigAutoField(primary_key=True)
    batch_id = models.UUIDField(null=True, blank=True, unique=True)
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+", db_index=False)
    client_id = models.CharField(max_length=64)
    event_count = models.PositiveIntegerField()
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    received_at = models.DateTimeField()
    pending = models.BooleanField(default=True, help_text="Not yet seen by the aggregator.")

    class Meta:
        verbose_name_plural = "playback batches"
        indexes = [
            models.Index(fields=["received_at"], name="batch_received_idx"),
            models.Index(fields=["id"], condition=Q(pending=True), name="batch_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id or self.pk} ({self.event_count} events)"


class ViewerSessionDay(models.Model):
    """A session's time credited to one UTC day, so watch time splits across midnight."""

    session = models.ForeignKey(
        ViewerSession, on_delete=models.CASCADE, related_name="days", db_index=False
    )
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    playing_seconds = models.FloatField(default=0)
    buffer_seconds = models.FloatField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    buffer_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="buffer_start events on the day."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "day"], name="session_day_unique")
        ]
        indexes = [models.Index(fields=["stream", "day"], name="session_day_stream_idx")]

    def __str__(self) -> str:
        return f"session {self.session_id} on {self.day}"


class StreamStats(models.Model):
    """One stream's figures for one UTC day (SPEC §6.2), recomputed by the aggregator."""

    stream = models.ForeignKey(
        Stream, on_delete=models.CASCADE, related_name="daily_stats", db_index=False
    )
    day = models.DateField()
    unique_viewers = models.PositiveIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0)
    total_watch_seconds = models.FloatField(default=0)
    avg_watch_seconds = models.FloatField(default=0)
    peak_concurrent_viewers = models.PositiveIntegerField(default=0)
    buffer_ratio = models.FloatField(default=0)
    error_rate = models.FloatField(default=0)
    top_countries = models.JSONField(default=list, blank=True)
    device_breakdown = models.JSONField(default=dict, blank=True)
    # The parts the ratios are made of, so ranges of days combine exactly.
    tracked_watch_seconds = models.FloatField(
        default=0, help_text="Watch time from our player events."
    )
    buffer_seconds = models.FloatField(default=0)
    error_sessions = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    # Video quality (SPEC §6.5). Startup times count on the day a session starts, like
    # sessions; rebuffers where they fell, like watch time.
    startup_time_median_ms = models.FloatField(null=True, blank=True)
    startup_time_p95_ms = models.FloatField(null=True, blank=True)
    startup_sessions = models.PositiveIntegerField(
        default=0, help_text="Sessions with a startup time."
    )
    exits_before_start = models.PositiveIntegerField(default=0)
    fatal_error_sessions = models.PositiveIntegerField(default=0)
    playback_failure_rate = models.FloatField(default=0)
    rebuffer_count = models.PositiveIntegerField(default=0)
    rebuffer_frequency = models.FloatField(
        default=0, help_text="buffer_start events per minute watched."
    )
    last_calculated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "stream stats"
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["stream", "day"], name="stream_day_unique")]
        indexes = [models.Index(fields=["day"], name="stats_day_idx")]

    def __str__(self) -> str:
        return f"{self.stream_id} {self.day}"


class BunnyVideoStats(models.Model):
    """Bunny Stream's own statistics for one video on one UTC day, as imported."""

    library_id = models.CharField(max_length=32)
    video_guid = models.CharField(max_length=64)
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)
    watch_time_seconds = models.FloatField(default=0)
    country_views = models.JSONField(default=dict, blank=True)
    country_watch_time = models.JSONField(default=dict, blank=True)
    engagement_score = models.FloatField(null=True, blank=True)
    raw_payload = models.JSONField(default=dict, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        verbose_name = "Bunny video stats"
        verbose_name_plural = "Bunny video stats"
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["library_id", "video_guid", "day"], name="bunny_video_day_unique"
            )
        ]
        indexes = [models.Index(fields=["video_guid", "day"], name="bunny_video_day_idx")]

    def __str__(self) -> str:
        return f"{self.video_guid} {self.day}"
