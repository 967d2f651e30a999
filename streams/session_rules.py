"""The rules that turn a session's events into its figures (SPEC §6.1, §6.2).

The aggregator applies them set-based in SQL (`streams/aggregation/sessions.py` builds its
CASE expressions from `STATE_AFTER` and uses the same constants); ingestion applies
them event by event for the provisional session figures. A test replays random
event sequences through both and checks they agree.
"""

from __future__ import annotations

PLAYING = "playing"
BUFFERING = "buffering"
PAUSED = "paused"
ENDED = "ended"

# Player state after each event type; an error leaves the state unchanged.
STATE_AFTER: dict[str, str] = {
    "play": PLAYING,
    "heartbeat": PLAYING,
    "buffer_end": PLAYING,
    "buffer_start": BUFFERING,
    "pause": PAUSED,
    "ended": ENDED,
}

# Gaps between consecutive events are credited at most this many heartbeat intervals.
GAP_CAP_HEARTBEATS = 2


def state_after(state: str, event_type: str) -> str:
    return STATE_AFTER.get(event_type, state)


def gap_credit(*, state: str, gap_seconds: float, heartbeat_interval: float) -> tuple[float, float]:
    """(playing, buffering) seconds credited for a gap spent in `state`."""
    credited = max(0.0, min(gap_seconds, GAP_CAP_HEARTBEATS * heartbeat_interval))
    if state == PLAYING:
        return credited, 0.0
    if state == BUFFERING:
        return 0.0, credited
    return 0.0, 0.0


def opening_credit(*, first_event_type: str, heartbeat_interval: float) -> float:
    """Playing seconds credited before a session's first event: a session that opens
    with a heartbeat was already playing for one interval when it was first seen."""
    return float(heartbeat_interval) if first_event_type == "heartbeat" else 0.0


# Video quality (SPEC §6.5): a play's extra.startupMs counts when it is a number in
# [0, STARTUP_MS_MAX] (a longer "startup" is a tab left waiting, not a startup time);
# an extra.duration counts when it is a positive number.
STARTUP_MS_MAX = 600_000
