"""SPEC §6.1 at exactly SESSION_TIMEOUT (30 min = 1800 s).

"Consecutive events less than SESSION_TIMEOUT apart" are one session, so a gap of
exactly 1800 s starts a new one and 1799 s does not; a session is finalized "once its
last event is older than the timeout", so at exactly 1800 s idle it is still open and
at 1801 s it is final. Both at ingestion (provisional sessions) and in the aggregator.
Heartbeat interval 15 s: a session opening with a heartbeat gets 15 s before it, and a
gap is credited at most 30 s.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from streams.aggregation import stream_stats_recompute
from streams.models import StreamStats, ViewerSession

from .conftest import T0, heartbeats

pytestmark = pytest.mark.django_db

TIMEOUT = 1800  # seconds


def test_the_session_timeout_is_1800_seconds():
    assert settings.SESSION_TIMEOUT == TIMEOUT
    assert settings.HEARTBEAT_INTERVAL == 15


def recompute(**kwargs):
    summary = stream_stats_recompute(**kwargs)
    assert summary.ran
    return summary


def sessions() -> list[tuple[float, float, int]]:
    """(seconds from T0 of start, of last event, events) of every session, in order."""
    return [
        (
            (s.started_at - T0).total_seconds(),
            (s.last_event_at - T0).total_seconds(),
            s.event_count,
        )
        for s in ViewerSession.objects.order_by("started_at")
    ]


def watch_seconds() -> list[float]:
    return [s.watch_seconds for s in ViewerSession.objects.order_by("started_at")]


def test_a_gap_of_exactly_1800_seconds_starts_a_new_session_at_ingestion_and_after_aggregation(
    stream, send_batch
):
    send_batch("c-1", heartbeats(0, 15, 15 + 1800, 30 + 1800))
    assert sessions() == [(0, 15, 2), (1815, 1830, 2)]  # provisional
    recompute()
    assert sessions() == [(0, 15, 2), (1815, 1830, 2)]
    # Each session: 15 s opening + 15 s; the 1800 s gap is credited to neither.
    assert watch_seconds() == pytest.approx([30, 30])
    day = StreamStats.objects.get(stream=stream, day=T0.date())
    assert (day.sessions, day.unique_viewers) == (2, 1)
    assert day.total_watch_seconds == pytest.approx(60)


def test_a_gap_of_1799_seconds_stays_in_one_session(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, 15 + 1799, 30 + 1799))
    assert sessions() == [(0, 1829, 4)]
    recompute()
    assert sessions() == [(0, 1829, 4)]
    # 15 s opening + 15 + the 1799 s gap capped at 30 + 15 = 75 s.
    assert watch_seconds() == pytest.approx([75])


def test_a_batch_starting_exactly_1800_seconds_after_the_last_one_starts_a_new_session(
    stream, send_batch
):
    send_batch("c-1", heartbeats(0, 15))
    send_batch("c-1", heartbeats(15 + 1800, 30 + 1800))
    assert sessions() == [(0, 15, 2), (1815, 1830, 2)]
    recompute()
    assert sessions() == [(0, 15, 2), (1815, 1830, 2)]


def test_a_batch_starting_1799_seconds_after_the_last_one_joins_its_session(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15))
    send_batch("c-1", heartbeats(15 + 1799, 30 + 1799))
    assert sessions() == [(0, 1829, 4)]
    recompute()
    assert sessions() == [(0, 1829, 4)]


def test_a_late_event_exactly_1800_seconds_before_a_session_starts_a_session_of_its_own(
    stream, send_batch
):
    send_batch("c-1", heartbeats(1800, 1815))
    # A late batch: 0 s is exactly 1800 s before the session's start, 1830 s is inside it.
    send_batch("c-1", heartbeats(0, 1830))
    assert sessions() == [(0, 0, 1), (1800, 1830, 3)]
    recompute()
    assert sessions() == [(0, 0, 1), (1800, 1830, 3)]


def test_a_late_event_1799_seconds_before_a_session_joins_it(stream, send_batch):
    send_batch("c-1", heartbeats(1799, 1814))
    send_batch("c-1", heartbeats(0, 1829))
    assert sessions() == [(0, 1829, 4)]
    recompute()
    assert sessions() == [(0, 1829, 4)]


LAST = 30  # the last heartbeat of heartbeats(0, 15, 30), in seconds from T0


def test_a_session_exactly_1800_seconds_idle_is_still_open(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, LAST))
    summary = recompute(now=T0 + timedelta(seconds=LAST + 1800))
    session = ViewerSession.objects.get()
    assert summary.finalized == 0
    assert not session.finalized
    assert session.ended_at is None


def test_a_session_1801_seconds_idle_is_finalized_in_the_run_that_rebuilds_it(stream, send_batch):
    send_batch("c-1", heartbeats(0, 15, LAST))
    recompute(now=T0 + timedelta(seconds=LAST + 1801))
    session = ViewerSession.objects.get()
    assert session.finalized
    assert session.ended_at == T0 + timedelta(seconds=LAST)


def test_a_later_run_with_nothing_new_finalizes_at_1801_seconds_idle_not_at_1800(
    stream, send_batch
):
    send_batch("c-1", heartbeats(0, 15, LAST))
    recompute(now=T0 + timedelta(seconds=LAST + 600))
    assert not ViewerSession.objects.get().finalized

    at_1800 = recompute(now=T0 + timedelta(seconds=LAST + 1800))
    assert (at_1800.pairs, at_1800.finalized) == (0, 0)
    assert not ViewerSession.objects.get().finalized

    at_1801 = recompute(now=T0 + timedelta(seconds=LAST + 1801))
    assert (at_1801.pairs, at_1801.finalized) == (0, 1)
    session = ViewerSession.objects.get()
    assert session.finalized
    assert session.ended_at == T0 + timedelta(seconds=LAST)
    assert session.watch_seconds == pytest.approx(45)  # 15 s opening + 15 + 15
