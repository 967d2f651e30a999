"""The one job lock (echonest_analytics.locks): exclusive, released only by its holder,
kept alive while the holder runs, and short-lived once the holder is gone."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from analytics.tasks import ROLLUP_LOCK, daily_rollups_refresh_task
from echonest_analytics.locks import job_lock, job_lock_key
from streams.tasks import BUNNY_IMPORT_LOCK, import_bunny_stats


def test_a_second_run_does_not_get_the_lock_while_the_first_holds_it():
    with job_lock("demo-job") as first:
        with job_lock("demo-job") as second:
            assert first is True
            assert second is False
    with job_lock("demo-job") as third:
        assert third is True  # released by its holder on exit


def test_other_jobs_have_their_own_locks():
    with job_lock("job-one") as one, job_lock("job-two") as two:
        assert (one, two) == (True, True)


def test_the_holder_never_releases_a_lock_another_run_took_after_its_own_expired():
    with job_lock("demo-job", ttl=30):
        # The holder's lock expired and another run took it meanwhile.
        cache.delete(job_lock_key("demo-job"))
        assert cache.add(job_lock_key("demo-job"), "another-run", timeout=30)
    assert cache.get(job_lock_key("demo-job")) == "another-run"


def test_a_skipped_run_leaves_the_holders_lock_alone():
    assert cache.add(job_lock_key("demo-job"), "another-run", timeout=30)
    with job_lock("demo-job") as acquired:
        assert acquired is False
    assert cache.get(job_lock_key("demo-job")) == "another-run"


def test_the_lock_is_released_when_the_run_fails():
    with pytest.raises(RuntimeError), job_lock("demo-job"):
        raise RuntimeError("the job failed")
    assert cache.get(job_lock_key("demo-job")) is None


def test_a_live_holder_keeps_its_lock_past_the_ttl():
    with job_lock("demo-job", ttl=1) as acquired:
        assert acquired
        time.sleep(2.5)  # more than twice the TTL: only the renewals keep it
        with job_lock("demo-job", ttl=1) as second:
            assert second is False
    assert cache.get(job_lock_key("demo-job")) is None


def test_a_lock_whose_holder_died_frees_itself_after_its_ttl():
    # A holder killed outright leaves its token behind with nothing renewing it.
    assert cache.add(job_lock_key("demo-job"), "killed-run", timeout=1)
    with job_lock("demo-job") as acquired:
        assert acquired is False
    deadline = time.monotonic() + 5
    while cache.get(job_lock_key("demo-job")) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    with job_lock("demo-job") as acquired:
        assert acquired is True


def test_rollup_task_skips_while_another_run_holds_the_lock(db):
    assert cache.add(job_lock_key(ROLLUP_LOCK), "another-run", timeout=30)
    result = daily_rollups_refresh_task.apply()
    assert result.result == []
    assert cache.get(job_lock_key(ROLLUP_LOCK)) == "another-run"


def test_bunny_import_task_skips_while_another_run_holds_the_lock(db, settings):
    settings.BUNNY_API_KEY = "key"
    settings.BUNNY_LIBRARY_ID = "123"
    assert cache.add(job_lock_key(BUNNY_IMPORT_LOCK), "another-run", timeout=30)
    result = import_bunny_stats.apply()
    assert result.result == {"skipped": "another Bunny import holds the lock"}
    assert cache.get(job_lock_key(BUNNY_IMPORT_LOCK)) == "another-run"
