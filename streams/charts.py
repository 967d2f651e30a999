"""What the staff dashboard draws and how it writes figures: server-side SVG charts
(no JavaScript charting library, nothing from a CDN) and human-readable durations and
percentages.

Colours come from the Django admin's CSS variables, so the charts follow its light and
dark themes; each has a fallback for an SVG shown outside the admin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Literal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ChartKind = Literal["bar", "line"]
ChartUnit = Literal["count", "seconds"]

_WIDTH, _HEIGHT = 480, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 24, 10, 30  # plot margins for the axis labels
_MAX_X_LABELS = 5
_INK = "var(--body-quiet-color, #666)"
_GRID = "var(--hairline-color, #e8e8e8)"
# --link-fg is the admin's accent that stays readable on both themes' backgrounds.
_MARK = "var(--link-fg, #417893)"
_LINE = "var(--link-fg, #417893)"


def duration_text(seconds: float | None) -> str:
    """45 s → "45s", 185 s → "3m 05s", 7260 s → "2h 01m"."""
    total = _finite(seconds)
    if total < 60:
        return f"{total:.0f}s" if total == round(total) or total >= 10 else f"{total:.1f}s"
    whole = int(round(total))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def duration_axis_text(seconds: float | None) -> str:
    """Short durations for an axis: "30s", "2m 30s", "10m", "1h 30m", "2h"."""
    whole = int(round(_finite(seconds)))
    if _finite(seconds) < 10 and whole != _finite(seconds):
        return duration_text(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,}h {minutes}m" if minutes else f"{hours:,}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def milliseconds_text(ms: float | None) -> str:
    """A startup time: 850 → "850 ms", 2300 → "2.30 s"; None (nothing measured) → "—"."""
    if ms is None:
        return "\u2014"
    value = _finite(ms)
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def count_text(value: float | None) -> str:
    """A count with thousands separators: 38282 → "38,282" (pages; the CSV keeps 38282)."""
    number = _finite(value)
    return f"{number:,.0f}" if number == round(number) else f"{number:,.1f}"


def percent_text(ratio: float | None) -> str:
    """0.041667 → "4.2%" (one decimal; "0%" for none)."""
    value = _finite(ratio) * 100
    return "0%" if value == 0 else f"{value:.1f}%"


def compact_number(value: float) -> str:
    """Axis label: 950 → "950", 12 500 → "12.5k", 3e9 → "3B"; fits a narrow axis."""
    value = _finite(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            if abs(scaled) >= 1000:  # beyond trillions: scientific keeps it short
                return f"{value:.1e}"
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def svg_chart(
    points: Sequence[tuple[date, float | int | None]],
    *,
    title: str,
    kind: ChartKind = "bar",
    unit: ChartUnit = "count",
    width: int = _WIDTH,
    height: int = _HEIGHT,
) -> SafeString:
    """An inline SVG bar or line chart of daily values, with y-axis ticks (0, half, top)
    and up to five day labels on the x axis. `unit="seconds"` labels the axis as
    durations on steps that read well (15m, 1h, 6h …). Missing, negative or non-finite
    values count as 0; no data draws the axes and says so."""
    values = [max(_finite(v), 0.0) for _, v in points]
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM
    largest = max(values, default=0.0)
    if unit == "seconds":
        value_label: Callable[[float], str] = duration_axis_text
        top = _nice_duration_ceiling(largest)
    else:
        value_label = compact_number
        whole = all(v == int(v) for v in values)
        top = _nice_count_ceiling(largest) if whole else _nice_ceiling(largest)
    base_y = _TOP + plot_h

    def y_of(value: float) -> float:
        return base_y - (value / top) * plot_h

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart stats-chart-{kind}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        f'font-family="inherit" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        tick_y = y_of(top * fraction)
        parts.append(
            f'<line class="chart-grid" x1="{_LEFT}" x2="{width - _RIGHT}" '
            f'y1="{tick_y:.1f}" y2="{tick_y:.1f}" style="stroke: {_GRID}" />'
        )
        parts.append(
            f'<text class="chart-y-label" x="{_LEFT - 6}" y="{tick_y + 4:.1f}" '
            f'text-anchor="end" style="fill: {_INK}">{escape(value_label(top * fraction))}</text>'
        )
    if not values:
        parts.append(
            f'<text class="chart-empty" x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle" style="fill: {_INK}">No data in this range</text>'
        )
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped

    slot = plot_w / len(values)
    centres = [_LEFT + slot * (i + 0.5) for i in range(len(values))]
    tips = [
        f"{day.isoformat()}: {value_label(value)}"
        for (day, _), value in zip(points, values, strict=True)
    ]
    if kind == "bar":
        bar_w = max(min(slot * 0.7, 48.0), 1.0)
        for centre, value, tip in zip(centres, values, tips, strict=True):
            bar_y = y_of(value)
            parts.append(
                f'<rect class="chart-bar" x="{centre - bar_w / 2:.2f}" y="{bar_y:.2f}" '
                f'width="{bar_w:.2f}" height="{base_y - bar_y:.2f}" style="fill: {_MARK}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    else:
        coords = " ".join(
            f"{centre:.2f},{y_of(value):.2f}" for centre, value in zip(centres, values, strict=True)
        )
        parts.append(
            f'<polyline class="chart-line" points="{coords}" fill="none" '
            f'style="stroke: {_LINE}" stroke-width="2" stroke-linejoin="round" />'
        )
        radius = 3 if slot >= 8 else 1.5
        for centre, value, tip in zip(centres, values, tips, strict=True):
            parts.append(
                f'<circle class="chart-point" cx="{centre:.2f}" cy="{y_of(value):.2f}" '
                f'r="{radius}" style="fill: {_LINE}"><title>{escape(tip)}</title></circle>'
            )
    parts.append(
        f'<line class="chart-axis" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base_y}" '
        f'y2="{base_y}" style="stroke: {_INK}" />'
    )
    for i in _x_label_indexes(len(values)):
        day = points[i][0]
        parts.append(
            f'<text class="chart-x-label" x="{centres[i]:.1f}" y="{base_y + 16}" '
            f'text-anchor="middle" style="fill: {_INK}">{escape(day.strftime("%b %d"))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped


def svg_retention_chart(
    points: Sequence[dict[str, float]],
    *,
    title: str,
    empty_text: str = "No video duration known for this day",
    width: int = _WIDTH,
    height: int = _HEIGHT,
) -> SafeString:
    """An inline SVG line of audience retention: x = percent of the video (0…100), y =
    share of the day's sessions that reached it (0…100 %). Same look as `svg_chart`
    (admin colours, both themes); no points draws the axes and `empty_text`."""
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM
    base_y = _TOP + plot_h

    def x_of(percent: float) -> float:
        return _LEFT + plot_w * min(max(percent, 0.0), 100.0) / 100

    def y_of(share: float) -> float:
        return base_y - plot_h * min(max(share, 0.0), 1.0)

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart stats-chart-retention" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        f'font-family="inherit" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for share in (0.0, 0.5, 1.0):
        tick_y = y_of(share)
        parts.append(
            f'<line class="chart-grid" x1="{_LEFT}" x2="{width - _RIGHT}" '
            f'y1="{tick_y:.1f}" y2="{tick_y:.1f}" style="stroke: {_GRID}" />'
        )
        parts.append(
            f'<text class="chart-y-label" x="{_LEFT - 6}" y="{tick_y + 4:.1f}" '
            f'text-anchor="end" style="fill: {_INK}">{share * 100:.0f}%</text>'
        )
    parts.append(
        f'<line class="chart-axis" x1="{_LEFT}" x2="{width - _RIGHT}" y1="{base_y}" '
        f'y2="{base_y}" style="stroke: {_INK}" />'
    )
    for percent in (0, 25, 50, 75, 100):
        anchor = "start" if percent == 0 else "end" if percent == 100 else "middle"
        parts.append(
            f'<text class="chart-x-label" x="{x_of(percent):.1f}" y="{base_y + 16}" '
            f'text-anchor="{anchor}" style="fill: {_INK}">{percent}%</text>'
        )
    if not points:
        parts.append(
            f'<text class="chart-empty" x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle" style="fill: {_INK}">{escape(empty_text)}</text>'
        )
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped
    values = [(_finite(p["percent"]), _finite(p["share"])) for p in points]
    coords = " ".join(f"{x_of(x):.2f},{y_of(y):.2f}" for x, y in values)
    parts.append(
        f'<polyline class="chart-line" points="{coords}" fill="none" '
        f'style="stroke: {_LINE}" stroke-width="2" stroke-linejoin="round" />'
    )
    # A hover target every 10 %, with the exact share.
    for x, y in values:
        if x % 10 == 0:
            tip = f"{x:.0f}% of the video: {y * 100:.1f}% of sessions"
            parts.append(
                f'<circle class="chart-point" cx="{x_of(x):.2f}" cy="{y_of(y):.2f}" r="3" '
                f'style="fill: {_LINE}"><title>{escape(tip)}</title></circle>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped


def _finite(value: Any) -> float:
    try:
        number = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least the largest value
    (1 when everything is 0, so an all-zero chart still has a scale)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover — the loop always returns


def _nice_count_ceiling(value: float) -> float:
    """For whole counts (viewers, sessions): 2, 4, 6 or 10 times a power of ten, so the
    half-way tick is a whole number too."""
    magnitude = 10 ** max(math.floor(math.log10(value)), 0) if value > 0 else 1
    for step in (2, 4, 6, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return 20.0 * magnitude  # pragma: no cover — the loop always returns


# Axis tops for durations: whole seconds, minutes and hours whose halves read well too.
_DURATION_STEPS = (2, 4, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600) + (
    7200,
    4 * 3600,
    6 * 3600,
    12 * 3600,
    24 * 3600,
)


def _nice_duration_ceiling(seconds: float) -> float:
    if seconds <= 0:
        return 1.0
    for step in _DURATION_STEPS:
        if seconds <= step:
            return float(step)
    return _nice_ceiling(seconds / 3600) * 3600  # beyond a day: nice numbers of hours


def _x_label_indexes(count: int) -> list[int]:
    """Evenly spread indexes, always the first and the last, at most _MAX_X_LABELS."""
    if count <= _MAX_X_LABELS:
        return list(range(count))
    step = (count - 1) / (_MAX_X_LABELS - 1)
    return sorted({round(i * step) for i in range(_MAX_X_LABELS)})
