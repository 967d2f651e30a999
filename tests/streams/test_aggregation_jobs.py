"""The stream aggregation job (SPEC §7, §10): one run at a time, and a run killed halfway
leaves nothing behind — re-running gives the same numbers as one clean run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from streams import aggregation
from streams.aggregation import LOCK_KEY, stream_stats_recompute
from streams.models import PlaybackBatch, StreamStats, ViewerSession, ViewerSessionDay

from .conftest import MOBILE_UA, T0, ev, heartbeats

pytestmark = pytest.mark.django_db

MINUTE = 60


def _population(send_batch) -> None:
    send_batch(
        "c-1", [ev("play", 0), ev("buffer_start", 20), ev("buffer_end", 25), ev("pause", 40)]
    )
    send_batch("c-2", heartbeats(0, 15, 30, 45), ua=MOBILE_UA)
    send_batch("c-2", heartbeats(40 * MINUTE, 40 * MINUTE + 15))
    send_batch("c-3", [ev("play", 10), ev("error", 12), ev("heartbeat", 25)])
    # A late batch that fills the gap in c-2's run, so the crash hits a merge.
    send_batch("c-2", heartbeats(20 * MINUTE))


def _snapshot() -> tuple[list, list, list]:
    stream_stats = list(StreamStats.objects.order_by("stream_id", "day").values())
    sessions = list(ViewerSession.objects.order_by("id").values())
    session_days = list(
        ViewerSessionDay.objects.order_by("session_id", "day").values(
            "session_id", "stream_id", "day", "playing_seconds", "buffer_seconds", "event_count"
        )
    )
    return stream_stats, sessions, session_days


def test_run_is_skipped_while_another_holds_the_lock(stream, send_batch):
    _population(send_batch)
    provisional = list(ViewerSession.objects.order_by("id").values())
    assert cache.add(LOCK_KEY, "another-run", timeout=60)

    summary = stream_stats_recompute()

    assert summary.ran is False
    assert PlaybackBatch.objects.filter(pending=False).count() == 0
    assert PlaybackBatch.objects.filter(pending=True).count() == 5
    assert StreamStats.objects.count() == 0
    assert ViewerSessionDay.objects.count() == 0
    assert list(ViewerSession.objects.order_by("id").values()) == provisional
    assert cache.get(LOCK_KEY) == "another-run"  # the other run's lock is left alone


def test_run_takes_the_lock_again_once_it_is_released(stream, send_batch):
    _population(send_batch)
    cache.add(LOCK_KEY, "another-run", timeout=60)
    assert stream_stats_recompute().ran is False
    cache.delete(LOCK_KEY)

    assert stream_stats_recompute().ran is True
    assert StreamStats.objects.get(stream=stream).sessions == 3
    assert cache.get(LOCK_KEY) is None  # released after the run


def test_run_killed_after_rebuilding_sessions_leaves_nothing_and_reruns_cleanly(
    stream, send_batch, monkeypatch
):
    _population(send_batch)
    provisional = list(ViewerSession.objects.order_by("id").values())
    seen_halfway: dict[str, int] = {}

    def killed_while_computing_stats(*args, **kwargs):
        # Sessions were rebuilt inside the run when it dies: the merged c-2 session and
        # its per-day rows exist at this point.
        seen_halfway["sessions"] = ViewerSession.objects.count()
        seen_halfway["session_days"] = ViewerSessionDay.objects.count()
        raise RuntimeError("worker killed")

    monkeypatch.setattr(aggregation, "_stats_recompute", killed_while_computing_stats)
    now = datetime.now(UTC)
    with pytest.raises(RuntimeError, match="worker killed"):
        stream_stats_recompute(now=now)

    assert seen_halfway == {"sessions": 3, "session_days": 3}
    assert PlaybackBatch.objects.filter(pending=True).count() == 5
    assert StreamStats.objects.count() == 0
    assert ViewerSessionDay.objects.count() == 0
    assert list(ViewerSession.objects.order_by("id").values()) == provisional
    assert cache.get(LOCK_KEY) is None

    monkeypatch.undo()
    assert stream_stats_recompute(now=now).ran
    rerun = _snapshot()
    assert PlaybackBatch.objects.filter(pending=True).count() == 0
    day = StreamStats.objects.get(stream=stream, day=T0.date())
    # c-1: playing 20 + buffering 5 + playing 15 = 40. c-2, merged by the late heartbeat at
    # 20 min: opening 15 + 3 × 15 + (45 s → 20 min, capped) 30 + (20 → 40 min, capped) 30
    # + 15 = 135. c-3: playing 2 + 13 (the error keeps it playing) = 15. Total 190 over 3.
    assert (day.sessions, day.unique_viewers) == (3, 3)
    assert day.total_watch_seconds == pytest.approx(190)
    assert day.avg_watch_seconds == pytest.approx(190 / 3)
    assert day.buffer_ratio == pytest.approx(5 / 190)
    assert day.error_rate == pytest.approx(1 / 3)

    # One clean run from scratch gives the same rows.
    assert stream_stats_recompute(full=True, now=now).ran
    assert _snapshot() == rerun
