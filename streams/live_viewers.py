"""Live viewers now (SPEC §6.5): the sessions of a stream with an event in the last
2 × HEARTBEAT_INTERVAL, kept in Redis by ingestion. The one place that knows this key.

Key schema:

    STREAMS|live_viewers|{stream id}   sorted set, member = clientId (a session of that
                                        stream), score = its latest event time (Unix s)

A session is one client's run of events on one stream (§6.1), and two events of one
client less than 2 × HEARTBEAT_INTERVAL apart always fall in the same session, so
within the window a client is one session. Each batch moves its client's score up to
the batch's newest event (ZADD GT: a late batch never moves it back), trims members
older than the window and renews the key's expiry, so a stream nobody watches leaves
no key behind. Bots never count (§6).

Best effort, like the live counters (§6.3, §10): a Redis failure is logged, opens
`redis_breaker`, and ingestion goes on; while Redis is unavailable the figure is
unknown (None), never a guess.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from django.conf import settings

from echonest_analytics.redis import get_redis, redis_breaker

logger = logging.getLogger(__name__)

KEY_PREFIX = "STREAMS|live_viewers"


def live_viewers_key(stream_id: int) -> str:
    return f"{KEY_PREFIX}|{stream_id}"


def live_window_seconds() -> int:
    """How recent a session's last event must be to count as watching now."""
    return 2 * settings.HEARTBEAT_INTERVAL


def _client():
    if not redis_breaker.available():
        return None
    try:
        return get_redis()
    except Exception:  # noqa: BLE001 — a misconfigured Redis must not fail the caller
        logger.warning("live viewers: no Redis client", exc_info=True)
        redis_breaker.failed()
        return None


def live_viewer_may_count(*, seen_at: datetime, at: datetime) -> bool:
    """Whether a client last seen at `seen_at` can still count as watching at `at` or
    later. When not (a batch whose newest event is older than the window: one replayed
    from offline storage, say), `live_viewer_seen` would add a member that its own trim
    removes at once: ingestion then skips the write, which changes no answer."""
    return seen_at.timestamp() >= at.timestamp() - live_window_seconds()


def live_viewer_seen(*, stream_id: int, client_id: str, seen_at: datetime) -> bool:
    """Note that `client_id` had an event on the stream at `seen_at`. Never raises;
    False when Redis was not written (down, or skipped while the breaker is open)."""
    client = _client()
    if client is None:
        # The breaker logged the failure once; a line per batch would flood the log.
        logger.debug("live viewers: Redis recently failed, %s not noted", client_id)
        return False
    window = live_window_seconds()
    key = live_viewers_key(stream_id)
    now = datetime.now(UTC).timestamp()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(key, {client_id: seen_at.timestamp()}, gt=True)
        pipe.zremrangebyscore(key, "-inf", f"({now - window}")
        pipe.expire(key, window + 1)
        pipe.execute()
    except Exception:  # noqa: BLE001 — best effort by contract: log and let ingestion go on
        logger.warning("live viewers: Redis failed, %s not noted", client_id, exc_info=True)
        redis_breaker.failed()
        return False
    return True


def live_viewers_count(
    *, stream_ids: Iterable[int], now: datetime | None = None
) -> dict[int, int] | None:
    """Sessions with an event in the last 2 × HEARTBEAT_INTERVAL before `now`, per
    stream; None when Redis cannot tell (down, or the breaker is open)."""
    stream_ids = list(stream_ids)
    client = _client()
    if client is None:
        return None
    cutoff = (now or datetime.now(UTC)).timestamp() - live_window_seconds()
    try:
        pipe = client.pipeline(transaction=False)
        for stream_id in stream_ids:
            pipe.zcount(live_viewers_key(stream_id), cutoff, "+inf")
        counts = pipe.execute() if stream_ids else []
    except Exception:  # noqa: BLE001 — a page or API must not fail on the live figure
        logger.warning("live viewers: Redis failed, figure unknown", exc_info=True)
        redis_breaker.failed()
        return None
    return {stream_id: int(n) for stream_id, n in zip(stream_ids, counts, strict=True)}


# --- reads for staff (the organizer boundary of §5.5) ----------------------------------


def stream_live_viewers(*, user, key: str) -> dict | None:
    """One visible stream's live viewers now, or None when `user` may not see it."""
    from .selectors import streams_visible_to

    stream = streams_visible_to(user=user).filter(key=key).values("id", "key").first()
    if stream is None:
        return None
    as_of = datetime.now(UTC)
    counts = live_viewers_count(stream_ids=[stream["id"]], now=as_of)
    return {
        "stream_id": stream["key"],
        "viewers": None if counts is None else counts[stream["id"]],
        "as_of": as_of,
        "window_seconds": live_window_seconds(),
    }


def live_viewers_overview(*, user, organizer_slug: str | None = None) -> dict:
    """Live viewers now over every stream `user` may see (of one organizer, if given):
    the total and the streams being watched, most viewers first."""
    from .selectors import streams_visible_to

    streams = list(
        streams_visible_to(user=user, organizer_slug=organizer_slug).values("id", "key", "title")
    )
    as_of = datetime.now(UTC)
    counts = live_viewers_count(stream_ids=[s["id"] for s in streams], now=as_of)
    watched = (
        sorted(
            (
                {"stream_id": s["key"], "title": s["title"], "viewers": counts[s["id"]]}
                for s in streams
                if counts[s["id"]]
            ),
            key=lambda row: (-row["viewers"], row["title"], row["stream_id"]),
        )
        if counts is not None
        else []
    )
    return {
        "organizer": organizer_slug,
        "viewers": None if counts is None else sum(counts.values()),
        "as_of": as_of,
        "window_seconds": live_window_seconds(),
        "streams": watched,
    }
