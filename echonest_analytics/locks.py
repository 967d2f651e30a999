"""Job locks: one run at a time of a periodic job, across every worker (SPEC §7).

`cache.add` is an atomic SET NX EX on Redis, so exactly one caller gets the lock; the
lock holds a token of its own and is released only by its holder (a run that outlived
the timeout must not free the lock a later run took).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def job_lock(name: str, *, timeout: int) -> Iterator[bool]:
    """Take the lock `name` for at most `timeout` seconds; yields whether it was taken.

    A caller that gets False must skip its work: another run holds the lock.
    """
    key = f"job-lock:{name}"
    token = uuid.uuid4().hex
    acquired = bool(cache.add(key, token, timeout))
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)
