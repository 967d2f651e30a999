"""UTC days: the one place that turns a day into datetimes and a moment into a day.

Every figure in SPEC §6 is per UTC day; the aggregator, the rollups, the selectors
and the retention purge all cut time here.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def day_start(day: dt.date) -> dt.datetime:
    """00:00 UTC of `day`, aware."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of one UTC day."""
    start = day_start(day)
    return start, start + dt.timedelta(days=1)


def days_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the UTC days date_from … date_to, both included."""
    return day_start(date_from), day_start(date_to + dt.timedelta(days=1))


def utc_today(now: dt.datetime | None = None) -> dt.date:
    """The UTC day of `now` (default: the current time)."""
    return (now or timezone.now()).astimezone(dt.UTC).date()
