"""Demo product events for `manage.py seed_demo`: 60 days of a few hundred EchoNest users,
up to now.

The events go through the real store path (`events_store`, which also feeds the
live counters for the days they cover) and the real rollup of every past day, so
the usage API, the stats page and the admin show them exactly as they would show
production traffic. Deterministic: the same seed gives the same users, days and
event mix, counted back from today (UTC). Users sign up over time (so the audience
grows), are busier on weekdays than at weekends and in the evening than at night.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from echonest_analytics.days import day_start
from echonest_analytics.redis import get_redis

from . import live_counters
from .models import DailyRollup, Event
from .rollups import daily_rollup_recompute
from .services import NewEvent, events_store

DEMO_SEED = 20261121
DEMO_DAYS = 60
DEMO_USERS = 300
DEMO_DOMAIN = "demo.echonest.test"
_DEMO_NAMESPACE = uuid.UUID("6f0b7a52-3c0e-4d8e-9d51-8a1f0c2e7b11")

# (event_type, feature choices, weight)
_EVENT_MIX = [
    ("page_view", ["dashboard", "queue", "search", "player", "nest", "settings"], 38),
    ("action", ["queue", "search", "player", "nest"], 22),
    ("song_add", ["queue"], 12),
    ("vote", ["queue"], 10),
    ("jam", ["player"], 4),
    ("airhorn", ["player"], 3),
    ("conversion", ["checkout", "invite"], 3),
    ("ws_connect", ["nest"], 5),
    ("login", [""], 3),
]


def _demo_email(n: int) -> str:
    return f"listener{n:03d}@{DEMO_DOMAIN}"


def demo_hour_weights(*, peak: float, spread: float) -> list[float]:
    """A day's rhythm in UTC hours: a bell around `peak` (wrapping at midnight) over a
    quiet floor. The playback demo shapes its viewers' days with it too."""
    weights = []
    for hour in range(24):
        distance = (hour + 0.5 - peak + 12) % 24 - 12
        weights.append(0.05 + math.exp(-(distance**2) / (2 * spread**2)))
    return weights


WEEKDAY_HOURS = demo_hour_weights(peak=19.5, spread=3.5)
WEEKEND_HOURS = demo_hour_weights(peak=15.0, spread=4.5)


def _moment(rng: random.Random, day_start: dt.datetime, hours: list[float]) -> dt.datetime:
    hour = rng.choices(range(24), weights=hours)[0]
    return day_start + dt.timedelta(seconds=(hour + rng.random()) * 3600)


def _demo_events(*, now: dt.datetime) -> list[NewEvent]:
    rng = random.Random(DEMO_SEED)
    today = now.date()
    signup_day = {n: rng.randrange(-DEMO_DAYS - 120, 0) for n in range(DEMO_USERS)}
    popularity = [rng.paretovariate(1.6) for _ in range(DEMO_USERS)]
    kinds = [kind for kind, _, _ in _EVENT_MIX]
    weights = [weight for _, _, weight in _EVENT_MIX]
    features = {kind: choices for kind, choices, _ in _EVENT_MIX}
    events: list[NewEvent] = []
    for offset in range(DEMO_DAYS - 1, -1, -1):
        day = today - dt.timedelta(days=offset)
        midnight = day_start(day)
        seconds = (now - midnight).total_seconds() if offset == 0 else 86400
        weekend = day.weekday() >= 5
        hours = WEEKEND_HOURS if weekend else WEEKDAY_HOURS
        candidates = [n for n in range(DEMO_USERS) if signup_day[n] <= -offset]
        active = [
            n
            for n in candidates
            if rng.random() < min(0.9, (0.12 if weekend else 0.2) * popularity[n])
        ]
        for n in active:
            email = _demo_email(n)
            if signup_day[n] == -offset:
                at = midnight + dt.timedelta(seconds=rng.uniform(0, seconds))
                events.append(
                    NewEvent(
                        uuid.uuid5(_DEMO_NAMESPACE, f"{email}-signup"),
                        "signup",
                        at,
                        email,
                        "",
                        "/signup",
                        {"demo": True},
                    )
                )
            for _ in range(1 + int(rng.expovariate(0.3))):
                kind = rng.choices(kinds, weights)[0]
                at = _moment(rng, midnight, hours)
                if at > now:  # later today
                    continue
                events.append(
                    NewEvent(
                        uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                        event_type=kind,
                        occurred_at=at,
                        user_id=email,
                        feature=rng.choice(features[kind]),
                        url=f"/{rng.choice(features[kind]) or 'login'}",
                        metadata={"demo": True},
                    )
                )
        for _ in range(rng.randrange(10, 40)):  # anonymous visitors
            at = _moment(rng, midnight, hours)
            if at > now:
                continue
            events.append(
                NewEvent(
                    uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                    event_type="page_view",
                    occurred_at=at,
                    feature="landing",
                    url="/",
                    metadata={"demo": True},
                )
            )
        if offset == 0:
            # A few users are in the app right now: today is never empty, not even just
            # after midnight.
            for n in (active or candidates)[:3]:
                at = now - dt.timedelta(seconds=rng.uniform(0, min(seconds, 900)))
                events.append(
                    NewEvent(
                        uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                        event_type="page_view",
                        occurred_at=at,
                        user_id=_demo_email(n),
                        feature="dashboard",
                        url="/dashboard",
                        metadata={"demo": True},
                    )
                )
    events.sort(key=lambda e: e.occurred_at)
    return events


def _anonymous_totals_unwind(redis_client) -> None:
    """Take the anonymous demo events out of the live daily totals.

    `erase_member` takes each demo user's counts out of every key; an event without a
    user is only in its day's totals hash, and would be counted again by the new demo.
    """
    oldest = timezone.now().date() - dt.timedelta(days=live_counters.DAILY_KEY_TTL_DAYS - 1)
    counts = (
        Event.objects.filter(metadata__demo=True, user_id="", occurred_at__gte=day_start(oldest))
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("day", "event_type")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "event_type", "n")
    )
    for day, event_type, n in counts:
        key = live_counters.totals_key(day)
        if redis_client.hincrby(key, event_type, -n) <= 0:
            redis_client.hdel(key, event_type)


def _demo_reset() -> None:
    days = set(
        DailyRollup.objects.filter(
            day__gte=timezone.now().date() - dt.timedelta(days=DEMO_DAYS)
        ).values_list("day", flat=True)
    )
    redis_client = get_redis()
    _anonymous_totals_unwind(redis_client)
    Event.objects.filter(metadata__demo=True).delete()
    for n in range(DEMO_USERS):
        live_counters.erase_member(redis_client, _demo_email(n))
    today = timezone.now().date()
    for day in sorted(d for d in days if d < today):
        daily_rollup_recompute(day=day)


def seed_product_demo(*, reset: bool = False) -> str:
    if Event.objects.filter(metadata__demo=True).exists():
        if not reset:
            return "already loaded (use --reset to regenerate)"
        _demo_reset()
    now = timezone.now().astimezone(dt.UTC)
    events = _demo_events(now=now)
    # One transaction: an interrupted seed leaves no partial demo behind (the next run
    # would take it for loaded); the live counters are fed once it commits.
    with transaction.atomic():
        for start in range(0, len(events), 100):  # the ingestion batch size
            events_store(events=events[start : start + 100], received_at=now)
    today = now.date()
    # Every complete day of the period: the usage API and the stats page read past days
    # from their rollups and only today from raw events.
    for offset in range(DEMO_DAYS - 1, 0, -1):
        daily_rollup_recompute(day=today - dt.timedelta(days=offset))
    users = len({e.user_id for e in events if e.user_id})
    return (
        f"{len(events)} product events from {users} users over {DEMO_DAYS} days, "
        f"rolled up and counted live"
    )
