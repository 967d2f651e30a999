"""The project's one Redis connection (live counters and the cache share the server).

With `REDIS_URL` unset an in-process fakeredis server stands in, so the embedded
default needs no Redis server.
"""

from __future__ import annotations

import functools

import fakeredis
import redis
from django.conf import settings

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
