"""What the staff stream pages show beside the figures themselves: the metric
definitions (SPEC §6.2, shortly worded), the date presets of the range form and the
comparison of a range with the previous period of the same length.

The figures come from `streams.selectors`; how a number is written (durations,
counts, percentages) is `streams.charts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from echonest_analytics.days import utc_today

from .charts import count_text, duration_text, milliseconds_text, percent_text

# SPEC §6.2 in a sentence each; the KPI cards carry them on hover and the legend below
# the cards lists them. Keys are the cards' `data-kpi` names.
METRIC_DEFINITIONS: dict[str, tuple[str, str]] = {
    "unique_viewers": (
        "Unique viewers",
        "Distinct viewers (client ids) with a session that started in the range; bots never count.",
    ),
    "sessions": (
        "Sessions",
        "Runs of one viewer's events on one stream less than 30 minutes apart, "
        "counted on the day they start.",
    ),
    "watch_time": (
        "Watch time",
        "Time playing plus time rebuffering, split across days by where it fell "
        "(for Bunny streams, the larger of ours and Bunny's per day).",
    ),
    "avg_watch": ("Avg watch per viewer", "Watch time divided by unique viewers."),
    "peak_concurrent": (
        "Peak concurrent",
        "The most sessions open at one instant on a day; over a range, the highest day.",
    ),
    "buffer_ratio": ("Buffer ratio", "Time rebuffering divided by watch time."),
    "error_rate": ("Error rate", "Sessions with a player error divided by sessions."),
    "events": ("Events", "Player events received (play, heartbeat, buffering, errors …)."),
    "streams": ("Streams", "Matching streams, watched or not."),
}

# The video quality figures (SPEC §6.5), in Mux Data's vocabulary: what each means and
# how to read it, for the stream page's panel and its legend.
VIDEO_QUALITY_DEFINITIONS: dict[str, tuple[str, str]] = {
    "startup_median": (
        "Video startup time (median)",
        "Time from the play request to the first frame, as players report it on their first "
        "play; half of the sessions started faster. Lower is better; over 2 s viewers notice.",
    ),
    "startup_p95": (
        "Video startup time (95th percentile)",
        "The startup time 95 % of sessions stayed within: the slow tail the median hides.",
    ),
    "exits_before_start": (
        "Exits before video start",
        "Sessions that asked to play and never played (no playing time): viewers who gave up "
        "waiting, or whose video never came.",
    ),
    "playback_failure_rate": (
        "Playback failure rate",
        "Sessions with a fatal player error (playback stopped) divided by sessions; "
        "recovered errors count only in the error rate.",
    ),
    "rebuffer_frequency": (
        "Rebuffer frequency",
        "Rebuffering spells per minute watched; beside the buffer ratio (how long they "
        "lasted) it tells many short stalls from a few long ones.",
    ),
    "audience_retention": (
        "Audience retention",
        "For on-demand video: at each percent of the video, the share of the day's sessions "
        "whose furthest position reached it. A steep early drop means a weak opening.",
    ),
}

# Which figure of a row each card shows, and how it is written.
_CARD_FIELDS: dict[str, tuple[str, Any]] = {
    "unique_viewers": ("unique_viewers", count_text),
    "sessions": ("sessions", count_text),
    "watch_time": ("total_watch_seconds", duration_text),
    "avg_watch": ("avg_watch_seconds", duration_text),
    "peak_concurrent": ("peak_concurrent_viewers", count_text),
    "buffer_ratio": ("buffer_ratio", percent_text),
    "error_rate": ("error_rate", percent_text),
    "events": ("events", count_text),
    "streams": ("streams", count_text),
    "startup_median": ("startup_time_median_ms", milliseconds_text),
    "startup_p95": ("startup_time_p95_ms", milliseconds_text),
    "exits_before_start": ("exits_before_start", count_text),
    "playback_failure_rate": ("playback_failure_rate", percent_text),
    "rebuffer_frequency": ("rebuffer_frequency", lambda v: f"{float(v or 0):.2f} / min"),
}

# The video quality figures of SPEC §6.5, as the stream page's panel lists them.
VIDEO_QUALITY = (
    "startup_median",
    "startup_p95",
    "exits_before_start",
    "playback_failure_rate",
    "rebuffer_frequency",
)


def video_quality_rows(figures: dict) -> list[dict[str, str]]:
    """The stream page's video quality panel: name, label, definition and value text."""
    rows = []
    for name in VIDEO_QUALITY:
        label, definition = VIDEO_QUALITY_DEFINITIONS[name]
        field, write = _CARD_FIELDS[name]
        rows.append(
            {
                "name": name,
                "label": label,
                "definition": definition,
                "text": write(figures.get(field)),
            }
        )
    return rows


def video_quality_definitions() -> list[tuple[str, str]]:
    """(label, definition) of each video quality figure and of audience retention."""
    return list(VIDEO_QUALITY_DEFINITIONS.values())


def previous_period(*, date_from: date, date_to: date) -> tuple[date, date]:
    """The same number of days just before [date_from, date_to]."""
    length = date_to - date_from
    previous_to = date_from - timedelta(days=1)
    return previous_to - length, previous_to


@dataclass(frozen=True)
class Change:
    """A card's change against the previous period."""

    text: str  # "+12.5%", "−3.0%", "0.0%" or "—" (no figures before)
    direction: str  # "up", "down", "flat" or "none"
    previous_text: str  # the previous period's figure, written like the card's


def change(current: float | None, previous: float | None) -> tuple[str, str]:
    """Relative change in percent with one decimal: 150 after 120 → ("+25.0%", "up");
    "—" when the previous figure is zero (a change from nothing has no percentage)."""
    now, before = float(current or 0), float(previous or 0)
    if before == 0:
        return "—", "none"
    percent = round((now - before) / before * 100, 1)
    if percent == 0:
        return "0.0%", "flat"
    sign = "+" if percent > 0 else "\u2212"  # a real minus sign
    return f"{sign}{abs(percent):.1f}%", "up" if percent > 0 else "down"


def kpi_cards(
    *, figures: dict, previous: dict | None, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The cards of `names`: label, definition, value text and the change against
    `previous` (the same figures over the previous period)."""
    cards = []
    for name in names:
        label, definition = METRIC_DEFINITIONS[name]
        field, write = _CARD_FIELDS[name]
        card = {
            "name": name,
            "label": label,
            "definition": definition,
            "value": figures.get(field),
            "text": write(figures.get(field)),
            "exact": _exact_text(field, figures.get(field)),
        }
        if previous is not None:
            text, direction = change(figures.get(field), previous.get(field))
            card["change"] = Change(
                text=text, direction=direction, previous_text=write(previous.get(field))
            )
        cards.append(card)
    return cards


def _exact_text(field: str, value: Any) -> str:
    """The hover text of a duration card: the seconds behind "2h 01m"."""
    if field.endswith("_seconds"):
        return f"{count_text(round(float(value or 0)))} s"
    return ""


STREAM_CARDS = (
    "unique_viewers",
    "sessions",
    "watch_time",
    "avg_watch",
    "peak_concurrent",
    "buffer_ratio",
    "error_rate",
)
SUMMARY_CARDS = (*STREAM_CARDS, "events", "streams")


def definitions(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(label, definition) of each name, for the legend below the cards."""
    return [METRIC_DEFINITIONS[name] for name in names]


# --- Date presets of the range form ----------------------------------------------------

PRESETS = (
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("mtd", "Month to date"),
)


def preset_range(preset: str, *, today: date) -> tuple[date, date]:
    """[from, to] of a preset, all ending today (UTC)."""
    if preset == "today":
        return today, today
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "30d":
        return today - timedelta(days=29), today
    if preset == "mtd":
        return today.replace(day=1), today
    raise ValueError(f"unknown preset {preset!r}")


def range_presets(
    *, date_from: date | None, date_to: date | None, today: date | None = None
) -> list[dict[str, Any]]:
    """The preset links: label, from, to and whether the shown range is that preset."""
    today = today or utc_today()
    presets = []
    for key, label in PRESETS:
        start, end = preset_range(key, today=today)
        presets.append(
            {
                "key": key,
                "label": label,
                "from": start,
                "to": end,
                "current": (start, end) == (date_from, date_to),
            }
        )
    return presets
