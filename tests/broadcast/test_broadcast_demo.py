"""seed_demo's broadcast part: a week of a Berlin station, fast and loaded only once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from streams.broadcast.demo import DEMO_STATION_KEY, seed_broadcast_demo
from streams.broadcast.models import (
    Alert,
    BroadcastLogEntry,
    HealthSnapshot,
    ListenerSession,
    ListenerSnapshot,
    LogCategory,
    LogLevel,
    Play,
    Song,
    SongRequest,
    Station,
)
from streams.broadcast.selectors import listeners_daily, local_today, uptime
from streams.management.commands.seed_demo import Command

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seeded once for the module (it takes seconds), removed again at the end."""
    with django_db_blocker.unblock():
        seed_broadcast_demo()
        station = Station.objects.get(stream__key=DEMO_STATION_KEY)
        yield station, None
        station.stream.delete()


def test_the_demo_station_is_in_berlin_with_two_icecast_encoders_nobody_serves(seeded):
    station, _ = seeded
    assert station.timezone == "Europe/Berlin"
    assert station.plays_from_poller is False
    assert station.stream.kind == "audio"
    encoders = station.stream.providers.order_by("external_id")
    assert [(e.provider, e.external_id) for e in encoders] == [
        ("icecast", "/live.aac"),
        ("icecast", "/live.mp3"),
    ]
    assert all(e.config["url"].startswith("http://127.0.0.1:") for e in encoders)


def test_a_week_of_snapshots_every_30_seconds_per_encoder(seeded):
    station, _ = seeded
    # 7 days × 2,880 polls a day × 2 encoders
    assert ListenerSnapshot.objects.count() == 7 * 2880 * 2
    assert ListenerSnapshot.objects.values("round_at").distinct().count() == 7 * 2880
    assert ListenerSession.objects.count() == 1500
    assert ListenerSession.objects.values("listener").distinct().count() > 100


def test_songs_plays_requests_log_health_and_alerts(seeded):
    station, _ = seeded
    assert Song.objects.filter(station=station).count() == 300
    plays = Play.objects.filter(station=station)
    assert plays.count() > 1500  # a week of 2.5–5.5 minute songs
    assert plays.filter(played_ms__lt=30_000).exists()  # skips
    assert plays.filter(crossfade=True).exists()
    assert plays.filter(request__isnull=False).exists()
    assert set(SongRequest.objects.values_list("status", flat=True)) == {
        "pending",
        "approved",
        "denied",
        "played",
    }
    entries = BroadcastLogEntry.objects.filter(station=station)
    assert set(entries.values_list("level", flat=True)) == set(LogLevel.values)
    assert set(entries.values_list("category", flat=True)) == set(LogCategory.values)
    assert HealthSnapshot.objects.filter(station=station).count() == 7 * 24 * 60
    alerts = Alert.objects.filter(station=station)
    assert alerts.filter(resolved_at__isnull=True).count() == 1
    assert alerts.filter(resolved_at__isnull=False).count() == 1


def test_the_figures_read_the_demo_week(seeded):
    station, _ = seeded
    today = local_today(station=station)
    rows = listeners_daily(station=station, date_from=today - timedelta(days=3), date_to=today)
    station_rows = [r for r in rows if r.encoder is None]
    assert len(station_rows) == 4
    assert all(r.peak and r.peak > r.average > 0 for r in station_rows)
    assert all(r.tlh_hours > 0 and r.cume > 0 for r in station_rows)
    week = uptime(station=station, start=timezone.now() - timedelta(days=7), end=timezone.now())
    by_encoder = {u.encoder: u for u in week}
    assert by_encoder["/live.aac"].disconnections == 1
    assert by_encoder["/live.mp3"].disconnections == 0


def test_the_demo_loads_only_once(seeded):
    # How long it takes is for `time make run` to say, not for an assertion here.
    counts = (ListenerSnapshot.objects.count(), Play.objects.count())

    assert "already loaded" in seed_broadcast_demo()
    assert (ListenerSnapshot.objects.count(), Play.objects.count()) == counts


def test_reset_regenerates_the_same_demo(seeded):
    plays = Play.objects.count()
    seed_broadcast_demo(reset=True)
    assert Station.objects.filter(stream__key=DEMO_STATION_KEY).count() == 1
    assert ListenerSnapshot.objects.count() == 7 * 2880 * 2
    # Same seed, but the week ends at a later "now", which shifts the station-local hours
    # the generator draws against: the regenerated week is the same size, not identical.
    assert abs(Play.objects.count() - plays) <= plays * 0.03


def test_seed_demo_runs_the_broadcast_demo_after_the_others():
    labels = [label for label, _ in Command()._seeders()]
    assert labels == ["Playback demo", "Product demo", "Broadcast demo"]
