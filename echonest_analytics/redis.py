"""The project's one Redis connection (live counters and the cache share the server).

With `REDIS_URL` unset an in-process fakeredis server stands in, so the embedded
default needs no Redis server.

Redis is best effort on the request path (live counters, the ingestion throttle):
every call has short socket timeouts, and after a failure `redis_breaker` tells
callers to skip Redis for a few seconds, so a Redis that hangs costs one timeout
per process per cooldown instead of one on every request.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import fakeredis
import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_IN_PROCESS_SERVER = fakeredis.FakeServer()


@functools.cache
def get_redis() -> redis.Redis:
    if settings.REDIS_URL:
        return redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            decode_responses=True,
        )
    return fakeredis.FakeRedis(server=_IN_PROCESS_SERVER, decode_responses=True)


class RedisBreaker:
    """A circuit breaker for best-effort Redis calls, per process.

    `available()` is False for `REDIS_BREAKER_SECONDS` after `failed()`; the first
    call after that tries Redis again (and trips the breaker again if it fails).
    """

    def __init__(self) -> None:
        self._open_until = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    def failed(self) -> None:
        with self._lock:
            already_open = not self.available()
            self._open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
        if not already_open:
            logger.warning(
                "Redis failed; skipping it for %.1f s (live counters, throttle)",
                settings.REDIS_BREAKER_SECONDS,
            )

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


redis_breaker = RedisBreaker()
