"""The one lock every scheduled job takes so two runs never overlap (Sentry's habit).

`job_lock` is `cache.add` (an atomic `SET NX EX` on Redis) with a random token: only
the holder releases it, and a run that outlives the lock's TTL cannot free the lock a
later run took. While the holder runs, a daemon thread renews the TTL, so the TTL
itself can stay short: a holder killed outright (SIGKILL, OOM, a lost machine) blocks
the next run for at most `ttl` seconds, not for the length of the longest run.

On Redis the release and the renewal compare the token and act in one Lua script; on
the process-local cache of the embedded default a get-then-act is exact enough, since
nothing outside this process shares it.

Every run is recorded the same way, whatever started it (a Celery worker, beat's eager
tasks, a management command): one log line with the job, its outcome (ok, failed or
skipped) and its duration (fields `job`, `outcome`, `duration_seconds` in the JSON
logs), and the shared job counters `/metrics` exports (echonest_analytics/metrics.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from .metrics import job_run_record

logger = logging.getLogger(__name__)

DEFAULT_TTL = 60  # seconds a dead holder can block the next run

_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)


def job_lock_key(name: str) -> str:
    return f"job-lock:{name}"


def _redis_eval(script: str, key: str, token: str, *args) -> int | None:
    """Run `script` with KEYS[1] = the lock and ARGV[1] = its token on the cache's Redis;
    None when the cache is not Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    full_key = backend.make_and_validate_key(key)
    client = backend._cache.get_client(full_key, write=True)
    # The cache stores values serialized (pickled); compare with the stored form.
    stored_token = backend._cache._serializer.dumps(token)
    return int(client.eval(script, 1, full_key, stored_token, *args))


def _release(key: str, token: str) -> None:
    if _redis_eval(_RELEASE, key, token) is None and cache.get(key) == token:
        cache.delete(key)


def _renew(key: str, token: str, ttl: int) -> bool:
    renewed = _redis_eval(_RENEW, key, token, ttl)
    if renewed is None:
        return cache.get(key) == token and cache.touch(key, ttl)
    return bool(renewed)


@contextmanager
def job_lock(name: str, *, ttl: int = DEFAULT_TTL) -> Iterator[bool]:
    """Hold the lock `name` for the block; yields False (and holds nothing) when another
    run has it. The caller skips its work then.

        with job_lock("streams.aggregation") as acquired:
            if not acquired:
                return skipped
            ...
    """
    key = job_lock_key(name)
    token = uuid.uuid4().hex
    if not cache.add(key, token, timeout=ttl):
        logger.info(
            "job %s skipped: another run holds its lock",
            name,
            extra={"job": name, "outcome": "skipped", "duration_seconds": 0.0},
        )
        job_run_record(job=name, outcome="skipped", seconds=0.0)
        yield False
        return
    started = time.monotonic()
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            try:
                if not _renew(key, token, ttl):
                    logger.warning("job %s lost its lock while running", name)
                    return
            except Exception:  # noqa: BLE001 - a cache hiccup must not kill the run
                logger.warning("job %s could not renew its lock", name, exc_info=True)

    renewer = threading.Thread(target=keep_alive, name=f"job-lock:{name}", daemon=True)
    renewer.start()
    error: BaseException | None = None
    try:
        yield True
    except BaseException as exc:
        error = exc
        raise
    finally:
        stop.set()
        renewer.join()
        try:
            _release(key, token)
        except Exception:  # noqa: BLE001 - the TTL frees it anyway
            logger.warning("job %s could not release its lock", name, exc_info=True)
        _run_record(name, error=error, seconds=time.monotonic() - started)


def _run_record(name: str, *, error: BaseException | None, seconds: float) -> None:
    outcome = "ok" if error is None else "failed"
    fields = {"job": name, "outcome": outcome, "duration_seconds": round(seconds, 3)}
    if error is None:
        logger.info("job %s ok in %.3f s", name, seconds, extra=fields)
    else:
        fields["error"] = f"{type(error).__name__}: {error}"[:500]
        logger.error("job %s failed after %.3f s: %s", name, seconds, fields["error"], extra=fields)
    job_run_record(job=name, outcome=outcome, seconds=seconds)
