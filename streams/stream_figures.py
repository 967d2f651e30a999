"""The stream figures of SPEC §6.2, computed in one place and written by one writer.

A (stream, day) row of StreamStats stores the parts its figures are made of — sessions,
unique viewers, tracked watch seconds, buffer seconds, error sessions — beside the
figures themselves, so that a range of days combines exactly: sum the parts, then
derive. `stream_figures` is the one derivation (total and average watch, buffer ratio,
error rate, playback failure rate, rebuffer frequency); startup-time percentiles do not
combine from days, so `median_and_percentile_sql` is the one definition both the
aggregator's days and the range reads compute them with; the aggregator's rows, the Bunny import and the staff range reads all go
through it, and `stream_stats_write` is the one writer of StreamStats rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .models import StreamStats

TOP_COUNTRIES = 5
# The upper percentile of video startup time (SPEC §6.5): startup_time_p95_ms.
STARTUP_PERCENTILE = 95
# Every StreamStats column a row write sets: all but its key.
_STATS_FIGURES = [
    f.name for f in StreamStats._meta.concrete_fields if f.name not in ("id", "stream", "day")
]


@dataclass(frozen=True)
class StreamFigures:
    total_watch_seconds: float
    avg_watch_seconds: float
    buffer_ratio: float
    error_rate: float
    playback_failure_rate: float = 0.0
    rebuffer_frequency: float = 0.0

    def rounded(self) -> dict[str, float]:
        """The figures as the staff reads show them (JSON, CSV, pages)."""
        return {
            "total_watch_seconds": round(self.total_watch_seconds, 3),
            "avg_watch_seconds": round(self.avg_watch_seconds, 3),
            "buffer_ratio": round(self.buffer_ratio, 6),
            "error_rate": round(self.error_rate, 6),
            "playback_failure_rate": round(self.playback_failure_rate, 6),
            "rebuffer_frequency": round(self.rebuffer_frequency, 6),
        }


def startup_ms_rounded(value: float | None) -> float | None:
    """A startup time as the staff reads show it (milliseconds, 1 decimal; None: none)."""
    return None if value is None else round(float(value), 1)


def day_total_watch_seconds(*, tracked_watch_seconds: float, bunny_watch_seconds: float) -> float:
    """SPEC §6.2, the Bunny rule: a day's total watch time is the larger of the tracked
    figure and Bunny's watch time for that day (0 for streams not on Bunny).

    The rule holds per day: over a range the total is the sum of the day totals, not
    the larger of the two sums.
    """
    return max(tracked_watch_seconds, bunny_watch_seconds)


def stream_figures(
    *,
    sessions: int,
    unique_viewers: int,
    total_watch_seconds: float,
    tracked_watch_seconds: float,
    buffer_seconds: float,
    error_sessions: int,
    fatal_error_sessions: int = 0,
    rebuffer_count: int = 0,
) -> StreamFigures:
    """The derived figures from parts summed over one day or over a range of days.

    avg_watch_seconds = total watch / unique viewers; buffer_ratio = buffer seconds /
    tracked watch seconds (Bunny reports no buffering); error_rate = sessions with an
    error / sessions; playback_failure_rate = sessions with a fatal error / sessions;
    rebuffer_frequency = buffer_start events / tracked minutes watched (the watch time
    they fell in, rebuffering included). Each is 0 when what it divides by is 0.
    """
    return StreamFigures(
        total_watch_seconds=total_watch_seconds,
        avg_watch_seconds=total_watch_seconds / unique_viewers if unique_viewers else 0.0,
        buffer_ratio=buffer_seconds / tracked_watch_seconds if tracked_watch_seconds else 0.0,
        error_rate=error_sessions / sessions if sessions else 0.0,
        playback_failure_rate=fatal_error_sessions / sessions if sessions else 0.0,
        rebuffer_frequency=(
            rebuffer_count / (tracked_watch_seconds / 60) if tracked_watch_seconds else 0.0
        ),
    )


def median_and_percentile_sql(*, source: str, group: list[str], value: str) -> str:
    """SQL giving, per `group` of the rows of `source` (a subquery), the median and the
    STARTUP_PERCENTILE-th percentile of `value` (NULLs left out), in the columns
    `*group, median, upper, n`.

    The same text on PostgreSQL and SQLite (which has no percentile functions), by row
    numbers in value order: the median is the middle value, or the mean of the two middle
    values of an even count (1,200 and 3,400 give 2,300); the percentile is the nearest
    rank, the value at rank ceil(p/100 × n) (of 1,200 and 3,400, p95 is 3,400).
    """
    keys = ", ".join(group)
    partition = f"PARTITION BY {keys}" if group else ""
    pct = int(STARTUP_PERCENTILE)
    return (
        f"SELECT {keys}{', ' if group else ''}"
        "AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN v END) AS median, "
        f"MAX(CASE WHEN rn = ({pct} * n + 99) / 100 THEN v END) AS upper, MAX(n) AS n "
        f"FROM (SELECT {keys}{', ' if group else ''}{value} AS v, "
        f"ROW_NUMBER() OVER ({partition} ORDER BY {value}) AS rn, "
        f"COUNT(*) OVER ({partition}) AS n FROM ({source}) src WHERE {value} IS NOT NULL) r"
        + (f" GROUP BY {keys}" if group else "")
    )


def top_countries(viewers_by_country: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Top countries by unique viewers, most first (ties by country code)."""
    ranked = sorted(viewers_by_country, key=lambda item: (-item[1], item[0]))[:TOP_COUNTRIES]
    return [{"country": country, "viewers": viewers} for country, viewers in ranked]


@dataclass(frozen=True)
class StreamDayParts:
    """What one (stream, day)'s figures are made of, as counted from its sessions."""

    sessions: int = 0
    unique_viewers: int = 0
    tracked_watch_seconds: float = 0.0
    buffer_seconds: float = 0.0
    error_sessions: int = 0
    event_count: int = 0
    peak_concurrent_viewers: int = 0
    top_countries: list[dict[str, Any]] = field(default_factory=list)
    device_breakdown: dict[str, int] = field(default_factory=dict)
    # Video quality (SPEC §6.5). The startup percentiles are the day's own (a range's
    # are computed from its sessions, they do not combine from days).
    startup_time_median_ms: float | None = None
    startup_time_p95_ms: float | None = None
    startup_sessions: int = 0
    exits_before_start: int = 0
    fatal_error_sessions: int = 0
    rebuffer_count: int = 0

    @classmethod
    def of_row(cls, row: StreamStats) -> StreamDayParts:
        """The parts a stored row was written from."""
        return cls(
            sessions=row.sessions,
            unique_viewers=row.unique_viewers,
            tracked_watch_seconds=row.tracked_watch_seconds,
            buffer_seconds=row.buffer_seconds,
            error_sessions=row.error_sessions,
            event_count=row.event_count,
            peak_concurrent_viewers=row.peak_concurrent_viewers,
            top_countries=row.top_countries,
            device_breakdown=row.device_breakdown,
            startup_time_median_ms=row.startup_time_median_ms,
            startup_time_p95_ms=row.startup_time_p95_ms,
            startup_sessions=row.startup_sessions,
            exits_before_start=row.exits_before_start,
            fatal_error_sessions=row.fatal_error_sessions,
            rebuffer_count=row.rebuffer_count,
        )


def stream_stats_row(
    *,
    stream_id: int,
    day: date,
    parts: StreamDayParts,
    bunny_watch_seconds: float,
    calculated_at: datetime | None,
) -> StreamStats:
    """The StreamStats row of one (stream, day): its parts and the figures derived from them."""
    total = day_total_watch_seconds(
        tracked_watch_seconds=parts.tracked_watch_seconds, bunny_watch_seconds=bunny_watch_seconds
    )
    figures = stream_figures(
        sessions=parts.sessions,
        unique_viewers=parts.unique_viewers,
        total_watch_seconds=total,
        tracked_watch_seconds=parts.tracked_watch_seconds,
        buffer_seconds=parts.buffer_seconds,
        error_sessions=parts.error_sessions,
        fatal_error_sessions=parts.fatal_error_sessions,
        rebuffer_count=parts.rebuffer_count,
    )
    return StreamStats(
        stream_id=stream_id,
        day=day,
        unique_viewers=parts.unique_viewers,
        sessions=parts.sessions,
        total_watch_seconds=figures.total_watch_seconds,
        tracked_watch_seconds=parts.tracked_watch_seconds,
        avg_watch_seconds=figures.avg_watch_seconds,
        peak_concurrent_viewers=parts.peak_concurrent_viewers,
        buffer_seconds=parts.buffer_seconds,
        buffer_ratio=figures.buffer_ratio,
        error_sessions=parts.error_sessions,
        error_rate=figures.error_rate,
        top_countries=parts.top_countries,
        device_breakdown=dict(sorted(parts.device_breakdown.items())),
        event_count=parts.event_count,
        startup_time_median_ms=parts.startup_time_median_ms,
        startup_time_p95_ms=parts.startup_time_p95_ms,
        startup_sessions=parts.startup_sessions,
        exits_before_start=parts.exits_before_start,
        fatal_error_sessions=parts.fatal_error_sessions,
        playback_failure_rate=figures.playback_failure_rate,
        rebuffer_count=parts.rebuffer_count,
        rebuffer_frequency=figures.rebuffer_frequency,
        last_calculated_at=calculated_at,
    )


def stream_stats_write(*, rows: list[StreamStats]) -> None:
    """Insert or overwrite whole (stream, day) rows: every figure is rewritten, never
    incremented, so a rerun gives the same rows."""
    if rows:
        StreamStats.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["stream", "day"],
            update_fields=_STATS_FIGURES,
        )
