"""Viewer sessions kept current at ingestion (SPEC §5.1, §6.1).

Each event joins its client's open session on the stream — one whose events are
less than SESSION_TIMEOUT away — or opens a new one, and the session's provisional
figures move on. Events that arrive late or out of order only widen the session
here; the aggregator (`streams/aggregation.py`) rebuilds sessions exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from .models import ViewerSession
from .session_rules import gap_credit, opening_credit, state_after


@dataclass(frozen=True, slots=True)
class TimedEvent:
    at: datetime
    type: str
    index: int  # position in the batch as sent


def _session_open(
    *, stream_id: int, client_id: str, event: TimedEvent, country: str, device: str
) -> ViewerSession:
    return ViewerSession(
        stream_id=stream_id,
        client_id=client_id,
        started_at=event.at,
        last_event_at=event.at,
        country=country,
        device=device,
        player_state=state_after("", event.type),
        playing_seconds=opening_credit(
            first_event_type=event.type, heartbeat_interval=settings.HEARTBEAT_INTERVAL
        ),
    )


def viewer_sessions_extend(
    *, stream_id: int, client_id: str, events: list[TimedEvent], country: str, device: str
) -> list[int]:
    """Attach time-ordered `events` to sessions; the session id of each event, in order."""
    timeout = timedelta(seconds=settings.SESSION_TIMEOUT)
    heartbeat = settings.HEARTBEAT_INTERVAL
    sessions = list(
        ViewerSession.objects.select_for_update()
        .filter(
            stream_id=stream_id,
            client_id=client_id,
            last_event_at__gt=events[0].at - timeout,
            started_at__lt=events[-1].at + timeout,
        )
        .order_by("started_at")
    )
    touched: dict[int, ViewerSession] = {}
    opened: list[ViewerSession] = []
    assigned: list[ViewerSession] = []
    for event in events:
        session = next(
            (s for s in sessions if s.started_at - timeout < event.at < s.last_event_at + timeout),
            None,
        )
        if session is None:
            session = _session_open(
                stream_id=stream_id,
                client_id=client_id,
                event=event,
                country=country,
                device=device,
            )
            sessions.append(session)
            opened.append(session)
        elif event.at >= session.last_event_at:
            playing, buffering = gap_credit(
                state=session.player_state,
                gap_seconds=(event.at - session.last_event_at).total_seconds(),
                heartbeat_interval=heartbeat,
            )
            session.playing_seconds += playing
            session.buffer_seconds += buffering
            session.player_state = state_after(session.player_state, event.type)
            session.last_event_at = event.at
        else:
            session.started_at = min(session.started_at, event.at)
        session.event_count += 1
        session.error_count += event.type == "error"
        session.buffer_count += event.type == "buffer_start"
        session.watch_seconds = session.playing_seconds + session.buffer_seconds
        session.finalized = False
        session.ended_at = None
        if session.pk is not None:
            touched[session.pk] = session
        assigned.append(session)
    if opened:
        ViewerSession.objects.bulk_create(opened)
    for session in touched.values():
        session.save(
            update_fields=[
                "started_at",
                "last_event_at",
                "ended_at",
                "watch_seconds",
                "playing_seconds",
                "buffer_seconds",
                "buffer_count",
                "error_count",
                "event_count",
                "player_state",
                "finalized",
            ]
        )
    return [session.pk for session in assigned]
