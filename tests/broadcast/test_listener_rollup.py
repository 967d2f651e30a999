"""The listener rollup (`ListenerHour`): daily listener figures read from it are the ones
the raw snapshots give — across a DST change, with polling gaps, after new snapshots
arrive and after the raw snapshots behind rolled-up hours are purged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command

from streams.broadcast.listener_rollup import SETTLE_SECONDS, listener_hours_refresh
from streams.broadcast.models import ListenerHour, ListenerSnapshot
from streams.broadcast.play_stats import broadcast_stats_refresh
from streams.broadcast.selectors import listeners_daily, local_day_bounds, local_hour_bounds
from tests.broadcast.staff_support import make_encoder, make_station

pytestmark = pytest.mark.django_db

# Berlin's autumn DST change: 25 October 2026 has 25 local hours (02:00–03:00 twice).
DAYS = (date(2026, 10, 24), date(2026, 10, 26))


def poll_rounds(encoders, start: datetime, end: datetime, *, every: int = 30, skip=()):
    """Snapshots of every encoder each `every` s in [start, end), the counts varying; a
    round whose index is in `skip` is missing (a polling gap); one encoder down now and
    then; taken_at a little after round_at, as the poller writes them."""
    rows = []
    at, i = start, 0
    while at < end:
        if i not in skip:
            for n, enc in enumerate(encoders):
                rows.append(
                    ListenerSnapshot(
                        encoder=enc,
                        round_at=at,
                        taken_at=at + timedelta(milliseconds=150 + 70 * n),
                        listeners=(i * 7 + n * 13) % 23,
                        source_up=(i + n) % 97 != 0,
                    )
                )
        at += timedelta(seconds=every)
        i += 1
    ListenerSnapshot.objects.bulk_create(rows, batch_size=2000)


def figures(rows):
    return [
        (r.date, r.encoder, r.peak, r.average, r.tlh_hours, r.atsl_minutes, r.cume) for r in rows
    ]


@pytest.fixture
def station():
    return make_station(tz="Europe/Berlin")


@pytest.fixture
def encoders(station):
    return [make_encoder(station, "/live.mp3"), make_encoder(station, "/live.aac")]


def test_local_hours_of_a_day_follow_dst_and_half_hour_zones(station):
    assert len(local_hour_bounds(station=station, day=date(2026, 10, 25))) == 25
    assert len(local_hour_bounds(station=station, day=date(2026, 3, 29))) == 23
    hours = local_hour_bounds(station=station, day=date(2026, 6, 1))
    assert len(hours) == 24
    assert hours[0][0] == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert all(end - start == timedelta(hours=1) for start, end in hours)
    kolkata = make_station(key="raga-fm", tz="Asia/Kolkata")
    first, _ = local_hour_bounds(station=kolkata, day=date(2026, 6, 2))[0]
    assert first == datetime(2026, 6, 1, 18, 30, tzinfo=UTC)


def test_days_read_from_the_rollup_equal_the_raw_figures_across_dst(station, encoders):
    start = local_day_bounds(station=station, day=DAYS[0])[0]
    end = local_day_bounds(station=station, day=DAYS[1])[1]
    # Gaps: a 90 s one, a 10-minute one, and nothing at all from 03:00 to 06:00 UTC on the 25th.
    gap_start = int((datetime(2026, 10, 25, 3, tzinfo=UTC) - start).total_seconds()) // 30
    skip = {5, 6, 300, *range(320, 340), *range(gap_start, gap_start + 360)}
    poll_rounds(encoders, start, end, skip=skip)
    now = end + timedelta(hours=3)

    raw = figures(listeners_daily(station=station, date_from=DAYS[0], date_to=DAYS[1], now=now))
    rolled = listener_hours_refresh(station=station, now=now)

    assert rolled == 24 + 25 + 24 + 2  # the three days and today's two settled hours
    assert ListenerHour.objects.filter(station=station, encoder__isnull=True).count() == rolled
    from_rollup = listeners_daily(station=station, date_from=DAYS[0], date_to=DAYS[1], now=now)
    assert figures(from_rollup) == raw
    dst_day = [r for r in from_rollup if r.date == date(2026, 10, 25) and r.encoder is None][0]
    assert dst_day.peak is not None and dst_day.average is not None
    # A rerun rolls up nothing twice.
    assert listener_hours_refresh(station=station, now=now) == 0


def test_purged_snapshots_keep_their_days_figures(station, encoders):
    start = local_day_bounds(station=station, day=DAYS[0])[0]
    end = local_day_bounds(station=station, day=DAYS[1])[1]
    poll_rounds(encoders, start, end)
    now = end + timedelta(days=1)
    before = figures(listeners_daily(station=station, date_from=DAYS[0], date_to=DAYS[1], now=now))
    broadcast_stats_refresh(station=station, now=now)

    # Retention drops the raw snapshots of the first two days.
    cut = local_day_bounds(station=station, day=DAYS[1])[0]
    purged, _ = ListenerSnapshot.objects.filter(taken_at__lt=cut).delete()
    assert purged > 0

    after = figures(listeners_daily(station=station, date_from=DAYS[0], date_to=DAYS[1], now=now))
    assert after == before
    ListenerHour.objects.all().delete()  # without the rollup the purged days read empty
    raw_now = listeners_daily(station=station, date_from=DAYS[0], date_to=DAYS[0], now=now)
    assert {r.peak for r in raw_now} == {None}


def test_new_snapshots_of_the_open_hours_are_read_at_once(station, encoders):
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    day = date(2026, 6, 1)
    poll_rounds(encoders, start, start + timedelta(hours=4))
    first_now = start + timedelta(hours=4, seconds=SETTLE_SECONDS)
    assert listener_hours_refresh(station=station, now=first_now) > 0
    rolled_before = ListenerHour.objects.filter(encoder__isnull=True).count()

    # Two more hours of polls arrive after the rollup ran; one of them holds the day's peak.
    poll_rounds(encoders, start + timedelta(hours=4), start + timedelta(hours=6))
    ListenerSnapshot.objects.create(
        encoder=encoders[0],
        round_at=start + timedelta(hours=5, seconds=15),
        taken_at=start + timedelta(hours=5, seconds=15),
        listeners=500,
        source_up=True,
    )
    now = start + timedelta(hours=6)
    with_rollup = figures(listeners_daily(station=station, date_from=day, date_to=day, now=now))
    peaks = {encoder: peak for _, encoder, peak, *_ in with_rollup}
    assert peaks["/live.mp3"] == 500

    rolled_up = list(ListenerHour.objects.all())
    ListenerHour.objects.all().delete()
    raw = figures(listeners_daily(station=station, date_from=day, date_to=day, now=now))
    assert with_rollup == raw
    ListenerHour.objects.bulk_create(rolled_up)

    # The next refresh rolls up the hours that have settled since, and the answer stays.
    later = now + timedelta(seconds=SETTLE_SECONDS)
    assert listener_hours_refresh(station=station, now=later) == 2
    assert ListenerHour.objects.filter(encoder__isnull=True).count() == rolled_before + 2
    after = figures(listeners_daily(station=station, date_from=day, date_to=day, now=later))
    assert {encoder: peak for _, encoder, peak, *_ in after}["/live.mp3"] == 500
    ListenerHour.objects.all().delete()
    assert figures(listeners_daily(station=station, date_from=day, date_to=day, now=later)) == after


def test_a_refresh_with_a_limit_goes_on_where_it_stopped(station, encoders):
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    poll_rounds(encoders, start, start + timedelta(hours=3), every=60)
    now = start + timedelta(hours=3, minutes=5)
    day = date(2026, 6, 1)
    raw = figures(listeners_daily(station=station, date_from=day, date_to=day, now=now))

    # The first snapshot is at 08:00 local: the rollup starts at local midnight.
    assert listener_hours_refresh(station=station, now=now, max_hours=2) == 2
    first = ListenerHour.objects.filter(encoder__isnull=True).order_by("start").first()
    assert first.start == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert (first.observed_seconds, first.peak) == (0.0, None)
    assert listener_hours_refresh(station=station, now=now) == 11 - 2  # up to 09:00 UTC
    hour = ListenerHour.objects.get(
        encoder=encoders[0], start=datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    )
    assert hour.observed_seconds == pytest.approx(3600.0)  # a poll a minute holds the hour
    assert figures(listeners_daily(station=station, date_from=day, date_to=day, now=now)) == raw


def test_a_station_without_snapshots_rolls_up_nothing(station, encoders):
    assert listener_hours_refresh(station=station) == 0
    assert not ListenerHour.objects.exists()


def test_broadcast_refresh_command_rolls_up_listener_hours(station, encoders, capsys):
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    poll_rounds(encoders, start, start + timedelta(hours=1))
    call_command("broadcast_refresh", "--station", station.key)
    assert "listener hours rolled up" in capsys.readouterr().out
    assert ListenerHour.objects.filter(
        encoder=encoders[1], start=datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    ).exists()
