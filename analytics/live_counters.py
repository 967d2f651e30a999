"""EchoNest live counters in Redis: the one place that knows the key schema (SPEC §6.3).

Other Python apps sharing the Redis server write and read the same keys, so this
module imports nothing from Django and nothing from the rest of this project:
copy it, pass it a `redis.Redis` client created with `decode_responses=True`,
and call `track(r, "song_add", email)`.

Key schema (binding):

    ANALYTICS|{event}|{YYYY-MM-DD}   sorted set, member = email, score = events that day
    ANALYTICS|totals|{YYYY-MM-DD}    hash, field = event type, value = events that day
    ANALYTICS|known_users            set of every email ever tracked (no TTL)
    ANALYTICS|dau|{YYYY-MM-DD}       set of the emails active that day

Every daily key gets a 90-day TTL (EXPIRE on each write, so a key lives 90 days
after its last write). Dates are UTC days. The user-keyed commands are only sent
when an email is given. Writes are best effort: a Redis failure is logged and
swallowed, never raised into the caller.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

KEY_PREFIX = "ANALYTICS"
KNOWN_USERS_KEY = f"{KEY_PREFIX}|known_users"
DAILY_KEY_TTL_SECONDS = 90 * 24 * 60 * 60
DAILY_KEY_TTL_DAYS = 90
# Names used by the schema itself; an event type with one of these names would
# collide with the totals/dau keys (and known_users is the global set).
RESERVED_EVENT_TYPES = frozenset({"totals", "dau", "known_users"})

DateLike = dt.date | dt.datetime | str | None


class TrackedEvent(NamedTuple):
    """One event for `track_many`: its type, the user's email (or None) and its day."""

    event_type: str
    email: str | None = None
    day: DateLike = None


def day_string(value: DateLike = None) -> str:
    """`YYYY-MM-DD` of a UTC day; None means today (UTC)."""
    if value is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    if isinstance(value, str):
        return dt.date.fromisoformat(value).isoformat()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date().isoformat()
    return value.isoformat()


def event_key(event_type: str, day: DateLike = None) -> str:
    return f"{KEY_PREFIX}|{event_type}|{day_string(day)}"


def totals_key(day: DateLike = None) -> str:
    return f"{KEY_PREFIX}|totals|{day_string(day)}"


def dau_key(day: DateLike = None) -> str:
    return f"{KEY_PREFIX}|dau|{day_string(day)}"


def _is_day(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _recent_days(days: int, today: DateLike = None) -> list[str]:
    """The last `days` UTC days, oldest first, ending with `today`."""
    end = dt.date.fromisoformat(day_string(today))
    return [(end - dt.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def _queue_track(pipe, event_type: str, email: str | None, day: str) -> None:
    totals = totals_key(day)
    pipe.hincrby(totals, event_type, 1)
    pipe.expire(totals, DAILY_KEY_TTL_SECONDS)
    if email:
        events = event_key(event_type, day)
        active = dau_key(day)
        pipe.zincrby(events, 1, email)
        pipe.expire(events, DAILY_KEY_TTL_SECONDS)
        pipe.sadd(KNOWN_USERS_KEY, email)
        pipe.sadd(active, email)
        pipe.expire(active, DAILY_KEY_TTL_SECONDS)


def track(
    redis_client,
    event_type: str,
    email: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    day: DateLike = None,
) -> bool:
    """Count one event, in one pipelined round trip. Never raises; False when Redis failed.

    `metadata` is accepted for call-site compatibility with EchoNest but has no
    place in the key schema, so it is not stored in Redis. `day` (default today,
    UTC) lets an ingestion path count an event on the day it happened.
    """
    return track_many(redis_client, [TrackedEvent(event_type, email, day)])


def track_many(redis_client, events: Iterable[TrackedEvent]) -> bool:
    """Count a batch of events in one pipelined round trip. Never raises; False on failure."""
    try:
        pipe = redis_client.pipeline(transaction=False)
        queued = 0
        for event in events:
            if not event.event_type or event.event_type in RESERVED_EVENT_TYPES:
                logger.warning("live counters: event type %r not counted", event.event_type)
                continue
            _queue_track(pipe, event.event_type, event.email or None, day_string(event.day))
            queued += 1
        if queued:
            pipe.execute()
        return True
    except Exception:  # noqa: BLE001 — best effort by contract: log and let the caller go on
        logger.warning("live counters: tracking failed, events not counted", exc_info=True)
        return False


# --- readers --------------------------------------------------------------------------------


def get_daily_stats(redis_client, date: DateLike = None) -> dict[str, int]:
    """Event counts by type for one day (default today): `{"song_add": 17, ...}`."""
    raw = redis_client.hgetall(totals_key(date))
    return {event_type: int(count) for event_type, count in raw.items()}


def get_daily_active_users(redis_client, date: DateLike = None) -> set[str]:
    """Emails active on one day (default today)."""
    return set(redis_client.smembers(dau_key(date)))


def get_dau_trend(redis_client, days: int = 7, today: DateLike = None) -> list[tuple[str, int]]:
    """`(YYYY-MM-DD, active users)` for the last `days` days, oldest first."""
    day_list = _recent_days(days, today)
    pipe = redis_client.pipeline(transaction=False)
    for day in day_list:
        pipe.scard(dau_key(day))
    return list(zip(day_list, (int(n) for n in pipe.execute()), strict=True))


def get_user_stats(
    redis_client, days: int = 30, today: DateLike = None
) -> dict[str, dict[str, int]]:
    """Per-user event counts over the last `days` days: `{email: {event_type: n, "total": n}}`.

    The event types of each day are read from that day's totals hash, so every
    type seen is covered without scanning the keyspace. Most active users first.
    """
    day_list = _recent_days(days, today)
    pipe = redis_client.pipeline(transaction=False)
    for day in day_list:
        pipe.hkeys(totals_key(day))
    types_by_day = pipe.execute()
    pipe = redis_client.pipeline(transaction=False)
    queued: list[str] = []
    for day, event_types in zip(day_list, types_by_day, strict=True):
        for event_type in event_types:
            pipe.zrange(event_key(event_type, day), 0, -1, withscores=True)
            queued.append(event_type)
    stats: dict[str, dict[str, int]] = {}
    for event_type, members in zip(queued, pipe.execute(), strict=True):
        for email, score in members:
            user = stats.setdefault(email, {"total": 0})
            user[event_type] = user.get(event_type, 0) + int(score)
            user["total"] += int(score)
    return dict(sorted(stats.items(), key=lambda item: (-item[1]["total"], item[0])))


def get_top_users(
    redis_client, event_type: str, days: int = 7, limit: int = 10, today: DateLike = None
) -> list[tuple[str, int]]:
    """Leaderboard for one event type over the last `days` days: `[(email, count), ...]`."""
    pipe = redis_client.pipeline(transaction=False)
    for day in _recent_days(days, today):
        pipe.zrange(event_key(event_type, day), 0, -1, withscores=True)
    totals: dict[str, int] = {}
    for members in pipe.execute():
        for email, score in members:
            totals[email] = totals.get(email, 0) + int(score)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


def get_recent_signups(
    redis_client, days: int = 30, limit: int = 20, today: DateLike = None
) -> list[tuple[str, str]]:
    """`(email, YYYY-MM-DD)` of `signup` events over the last `days` days, newest first."""
    day_list = _recent_days(days, today)
    pipe = redis_client.pipeline(transaction=False)
    for day in day_list:
        pipe.zrange(event_key("signup", day), 0, -1)
    signups: list[tuple[str, str]] = []
    for day, members in zip(reversed(day_list), reversed(pipe.execute()), strict=True):
        signups.extend((email, day) for email in sorted(members))
    return signups[:limit]


def get_known_users_count(redis_client) -> int:
    return int(redis_client.scard(KNOWN_USERS_KEY))


# --- erasure (GDPR) -------------------------------------------------------------------------


def erase_member(redis_client, email: str) -> int:
    """Remove one user from every live-counter key and take their counts out of the totals.

    Scans the `ANALYTICS|*` keys (SCAN, not KEYS, so a big keyspace is not
    blocked). Returns how many keys held the user. Raises on Redis failure:
    an erasure must not be reported done when it was not.
    """
    touched = 0
    for key in redis_client.scan_iter(match=f"{KEY_PREFIX}|*", count=1000):
        if key == KNOWN_USERS_KEY:
            touched += int(redis_client.srem(key, email))
            continue
        head, _, day = key.rpartition("|")
        event_type = head[len(KEY_PREFIX) + 1 :]
        if not _is_day(day) or not event_type or event_type == "totals":
            continue
        if event_type == "dau":
            touched += int(redis_client.srem(key, email))
            continue
        score = redis_client.zscore(key, email)
        if score is None:
            continue
        pipe = redis_client.pipeline(transaction=True)
        pipe.zrem(key, email)
        pipe.hincrby(totals_key(day), event_type, -int(score))
        _, left = pipe.execute()
        if int(left) <= 0:  # nobody else had this event that day: drop the field
            redis_client.hdel(totals_key(day), event_type)
        touched += 1
    return touched
