"""Product analytics tables: raw events (append-only) and their daily rollups."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

EVENT_TYPE_MAX_LENGTH = 64
USER_ID_MAX_LENGTH = 128
FEATURE_MAX_LENGTH = 128
URL_MAX_LENGTH = 2048


class Event(models.Model):
    """One product telemetry event (SPEC §4). Append-only; no table has a foreign key to it."""

    uuid = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=EVENT_TYPE_MAX_LENGTH)
    # "" means anonymous; user figures only count non-empty ids (SPEC §6.4).
    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH, blank=True, default="")
    feature = models.CharField(max_length=FEATURE_MAX_LENGTH, blank=True, default="")
    url = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Day ranges: today's usage figures, rollups, the admin's newest-first list.
            models.Index(fields=["occurred_at"], name="analytics_event_occurred"),
            models.Index(fields=["event_type", "occurred_at"], name="analytics_event_type"),
            # A user's events in time order, read from the index alone: GDPR export/erase,
            # retention's earlier-event check, and ordered funnels (a user's next event of a
            # step after a moment is one short forward scan; their steps sit side by side).
            # Feature and type are key columns, not an INCLUDE, so SQLite builds it too.
            models.Index(
                fields=["user_id", "occurred_at", "id", "event_type", "feature"],
                name="analytics_event_user",
            ),
        ]

    def __str__(self) -> str:
        who = self.user_id or "(anonymous)"
        return f"{self.event_type} {who} {self.occurred_at:%Y-%m-%d %H:%M}"


class DailyRollup(models.Model):
    """One UTC day of product events, recomputed from raw rows (SPEC §4, §7).

    `needs_recompute` is set by ingestion when a late event lands on a day that
    already has a rollup (and by erasure); readers then use that day's raw rows
    until the next rollup run recomputes it.
    """

    day = models.DateField(unique=True)
    total_events = models.PositiveIntegerField(default=0)
    event_counts = models.JSONField(default=dict, blank=True)  # {event_type: events}
    feature_usage = models.JSONField(default=dict, blank=True)  # {feature: events}
    dau = models.PositiveIntegerField(default=0)  # distinct non-empty user_id that day
    needs_recompute = models.BooleanField(default=False)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"rollup {self.day}"


class DailyActiveUser(models.Model):
    """One (day, user) pair with that user's events that day, written with its day's rollup.

    Distinct users do not add up across days, so WAU/MAU over any window are
    counted from these rows (`COUNT(DISTINCT user_id)`) instead of raw events.
    """

    day = models.DateField()
    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "user_id"], name="analytics_dau_day_user"),
        ]
        indexes = [
            # GDPR lookups by user, and rebuilding a user's `UserActivity` row from these.
            models.Index(fields=["user_id", "day"], name="analytics_dau_user_day"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} active {self.day}"


class UserActivity(models.Model):
    """A user's `DailyActiveUser` rows pivoted into one row: the days they were active.

    `active_days` has one character per day from `first_day` to `last_day`, "1" when the
    user has a `DailyActiveUser` row that day, "0" otherwise; it starts and ends with a "1".
    Written wherever those rows are (the rollup, a closed day's fold-in, erasure, the
    purge), so it always holds exactly the same days. Retention, stickiness and the usage
    API (today's users against the window's rolled-up days) read one row per user instead
    of one per user and day.
    """

    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH, unique=True)
    first_day = models.DateField()
    last_day = models.DateField()
    active_days = models.TextField()

    class Meta:
        indexes = [
            # Retention: the users first seen since a cohort start.
            models.Index(fields=["first_day"], name="analytics_activity_first"),
            # Stickiness and funnels: the users active since a window start.
            models.Index(fields=["last_day"], name="analytics_activity_last"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} active {self.first_day} .. {self.last_day}"


class IntradayFill(models.Model):
    """Fill state of the intraday usage rows (Zulip style): a day listed here has
    `IntradayEventCount` and `IntradayActiveUser` rows holding every stored event of
    that day, kept current by ingestion in the transaction that stores the events.

    A day without a row is read from raw events. The row is made by the first store of
    a day's event (which builds the day's rows from its raw events) and goes when the
    day's `DailyRollup` is computed, which then serves it.
    """

    day = models.DateField(unique=True)
    filled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"intraday usage {self.day}"


class IntradayEventCount(models.Model):
    """Events per (day, event_type, feature) of a day in `IntradayFill`."""

    day = models.DateField()
    event_type = models.CharField(max_length=EVENT_TYPE_MAX_LENGTH)
    feature = models.CharField(max_length=FEATURE_MAX_LENGTH, blank=True, default="")
    events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "event_type", "feature"], name="analytics_intraday_count_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.event_type}/{self.feature}: {self.events}"


class IntradayActiveUser(models.Model):
    """One (day, user) pair of a day in `IntradayFill`, with that user's events so far."""

    day = models.DateField()
    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "user_id"], name="analytics_intraday_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} active {self.day} (intraday)"


class _StepTimes(models.Model):
    """One user's events of one kind, as sorted moments (see `analytics.step_times`).

    A kind is an event type with any feature (`any_feature`, `feature` "") or with one
    feature. A moment is microseconds since the epoch × 1024 + the event's rank among the
    user's events at that microsecond, so sorting moments sorts events as the funnel does.
    """

    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    event_type = models.CharField(max_length=EVENT_TYPE_MAX_LENGTH)
    any_feature = models.BooleanField()
    feature = models.CharField(max_length=FEATURE_MAX_LENGTH, blank=True, default="")
    times = ArrayField(models.BigIntegerField())

    class Meta:
        abstract = True

    @property
    def kind(self) -> str:
        return self.event_type if self.any_feature else f"{self.event_type}:{self.feature}"


class UserStepTimes(_StepTimes):
    """The moments of a user's events of a kind on rolled-up days: the ordered funnel's
    rollup. PostgreSQL only; SQLite keeps none."""

    class Meta:
        constraints = [
            # The rollup's upserts and an erasure find a user's rows by this key.
            models.UniqueConstraint(
                fields=["user_id", "event_type", "any_feature", "feature"],
                name="analytics_step_times_key",
            ),
        ]
        indexes = [
            # A funnel step reads every user's row of one kind.
            models.Index(
                fields=["event_type", "any_feature", "feature", "user_id"],
                name="analytics_step_times_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {len(self.times)} events"


class IntradayStepTimes(_StepTimes):
    """`UserStepTimes` for one day in `IntradayFill` (today, a day not rolled up yet), kept
    current by ingestion in the transaction that stores the events, so a funnel never
    ranks a whole day of raw events per request. PostgreSQL only."""

    day = models.DateField()

    class Meta:
        constraints = [
            # In the funnel's read order: one day's rows of one kind, user by user.
            models.UniqueConstraint(
                fields=["day", "event_type", "any_feature", "feature", "user_id"],
                name="analytics_intraday_steps_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.user_id} {self.kind}: {len(self.times)} events (intraday)"
