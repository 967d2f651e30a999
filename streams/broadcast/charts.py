"""Server-side SVG charts of the station pages: the weekday × hour heatmap, the listener
graph (one line per series) and daily peak vs average (bars plus a line).

Like `streams.charts`, colours come from the Django admin's CSS variables (with
fallbacks), so the charts follow its light and dark themes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from streams.charts import compact_number

_INK = "var(--body-quiet-color, #666)"
_GRID = "var(--hairline-color, #e8e8e8)"
_MARK = "var(--link-fg, #417893)"
_BAR = "var(--primary, #79aec8)"
# Line colours for several series, each readable on light and dark backgrounds.
SERIES_COLOURS = ("#2e86de", "#e67e22", "#27ae60", "#c0392b", "#8e44ad", "#16a085")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _svg_open(width: int, height: int, title: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart {css}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet" font-family="inherit" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]


def _nice_top(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * step:
            return float(factor * step)
    return float(10 * step)


def heatmap_svg(cells: Sequence[dict], *, title: str = "Plays by weekday and hour") -> SafeString:
    """Plays summed per local weekday and hour over the cells' dates (the repeated DST
    hour adds to its hour); darker is more."""
    grid = [[0] * 24 for _ in range(7)]
    for cell in cells:
        grid[cell["date"].weekday()][cell["hour"]] += cell["play_count"]
    largest = max((v for row in grid for v in row), default=0)
    left, top, cell_w, cell_h = 40, 18, 20, 20
    width, height = left + 24 * cell_w + 4, top + 7 * cell_h + 4
    parts = _svg_open(width, height, title, "broadcast-heatmap")
    for hour in range(0, 24, 3):
        parts.append(
            f'<text x="{left + hour * cell_w + cell_w / 2}" y="12" text-anchor="middle" '
            f'style="fill: {_INK}">{hour:02d}</text>'
        )
    for day, row in enumerate(grid):
        y = top + day * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" style="fill: {_INK}">'
            f"{WEEKDAYS[day]}</text>"
        )
        for hour, value in enumerate(row):
            share = value / largest if largest else 0.0
            opacity = 0.06 + 0.94 * share if value else 0.04
            parts.append(
                f'<rect class="heat-cell" data-weekday="{day}" data-hour="{hour}" '
                f'data-plays="{value}" x="{left + hour * cell_w + 1}" y="{y + 1}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}" rx="2" '
                f'style="fill: {_MARK}; fill-opacity: {opacity:.2f}">'
                f"<title>{WEEKDAYS[day]} {hour:02d}:00 — {value} plays</title></rect>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above is escaped or a number


def lines_svg(
    series: Sequence[tuple[str, Sequence[tuple[dt.datetime, int]]]],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
) -> SafeString:
    """One polyline per named series of (instant, value) over a shared time axis."""
    left, right, top, bottom = 48, 16, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    instants = [at for _, points in series for at, _ in points]
    largest = max((v for _, points in series for _, v in points), default=0)
    top_value = _nice_top(largest)
    parts = _svg_open(width, height, title, "broadcast-lines")
    base_y = top + plot_h
    for fraction in (0.0, 0.5, 1.0):
        y = base_y - fraction * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'style="stroke: {_GRID}" />'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" style="fill: {_INK}">'
            f"{escape(compact_number(top_value * fraction))}</text>"
        )
    if not instants:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'style="fill: {_INK}">No listener snapshots in this period</text></svg>'
        )
        return mark_safe("".join(parts))  # noqa: S308
    first, last = min(instants), max(instants)
    span = max((last - first).total_seconds(), 1.0)

    def x_of(at: dt.datetime) -> float:
        return left + (at - first).total_seconds() / span * plot_w

    for index, (name, points) in enumerate(series):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        coords = " ".join(
            f"{x_of(at):.1f},{base_y - value / top_value * plot_h:.1f}" for at, value in points
        )
        # One series takes the theme's link colour (the dashboard CSS); several keep the
        # colours of their legend, inline so that CSS cannot paint them all alike.
        own_colour = f' style="stroke: {colour}"' if len(series) > 1 else ""
        parts.append(
            f'<polyline class="chart-line" data-series="{escape(name)}" points="{coords}" '
            f'fill="none" stroke="{colour}"{own_colour} stroke-width="2" '
            f'stroke-linejoin="round"><title>{escape(name)}</title></polyline>'
        )
    for fraction in (0.0, 0.5, 1.0):
        at = first + dt.timedelta(seconds=span * fraction)
        label = at.strftime("%H:%M") if span <= 2 * 86400 else at.strftime("%b %d")
        anchor = ("start", "middle", "end")[int(fraction * 2)]
        parts.append(
            f'<text x="{left + fraction * plot_w:.1f}" y="{base_y + 18}" text-anchor="{anchor}" '
            f'style="fill: {_INK}">{label}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{base_y}" y2="{base_y}" '
        f'style="stroke: {_INK}" /></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308


def peak_average_svg(
    days: Sequence[tuple[dt.date, int | None, float | None]],
    *,
    title: str = "Daily peak (bars) and average (line) listeners",
    width: int = 640,
    height: int = 220,
) -> SafeString:
    left, right, top, bottom = 48, 16, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    base_y = top + plot_h
    top_value = _nice_top(max((p or 0 for _, p, _ in days), default=0))
    parts = _svg_open(width, height, title, "broadcast-peak-average")
    for fraction in (0.0, 0.5, 1.0):
        y = base_y - fraction * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'style="stroke: {_GRID}" />'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" style="fill: {_INK}">'
            f"{escape(compact_number(top_value * fraction))}</text>"
        )
    if not days:
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308
    slot = plot_w / len(days)
    line = []
    for i, (day, peak, average) in enumerate(days):
        centre = left + slot * (i + 0.5)
        bar_h = (peak or 0) / top_value * plot_h
        bar_w = max(min(slot * 0.6, 40), 2)
        parts.append(
            f'<rect class="chart-bar" x="{centre - bar_w / 2:.1f}" y="{base_y - bar_h:.1f}" '
            f'width="{bar_w:.1f}" height="{bar_h:.1f}" style="fill: {_BAR}">'
            f"<title>{day.isoformat()}: peak {peak if peak is not None else '—'}</title></rect>"
        )
        if average is not None:
            line.append(f"{centre:.1f},{base_y - average / top_value * plot_h:.1f}")
        if len(days) <= 10 or i % max(len(days) // 6, 1) == 0:
            parts.append(
                f'<text x="{centre:.1f}" y="{base_y + 18}" text-anchor="middle" '
                f'style="fill: {_INK}">{day.strftime("%b %d")}</text>'
            )
    if line:
        parts.append(
            f'<polyline class="chart-line" points="{" ".join(line)}" fill="none" '
            f'style="stroke: {SERIES_COLOURS[1]}" stroke-width="2.5" />'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def bars_svg(
    bars: Sequence[tuple[str, float]], *, title: str, unit: str = "", width: int = 480
) -> SafeString:
    """Horizontal bars (the health panel): each label with its value against its maximum
    of 1 (fractions); `unit` is shown after the value."""
    row_h, left = 26, 130
    height = row_h * len(bars) + 6
    parts = _svg_open(width, height, title, "broadcast-bars")
    for i, (label, fraction) in enumerate(bars):
        y = i * row_h + 4
        share = min(max(fraction, 0.0), 1.0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" style="fill: {_INK}">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y}" width="{width - left - 60}" height="18" rx="3" '
            f'style="fill: {_GRID}" />'
            f'<rect class="chart-bar" x="{left}" y="{y}" width="{(width - left - 60) * share:.1f}" '
            f'height="18" rx="3" style="fill: {_MARK}" />'
            f'<text x="{width - 52}" y="{y + 15}" style="fill: {_INK}">{share * 100:.0f}%</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def hour_bars_svg(
    hours: Sequence[tuple[int, int]], *, title: str, width: int = 480, height: int = 160
) -> SafeString:
    """A bar per local hour 0–23."""
    left, right, top, bottom = 36, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    base_y = top + plot_h
    top_value = _nice_top(max((v for _, v in hours), default=0))
    parts = _svg_open(width, height, title, "broadcast-hour-bars")
    parts.append(
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" style="fill: {_INK}">'
        f"{escape(compact_number(top_value))}</text>"
        f'<line x1="{left}" x2="{width - right}" y1="{base_y}" y2="{base_y}" '
        f'style="stroke: {_INK}" />'
    )
    slot = plot_w / 24
    for hour, value in hours:
        bar_h = value / top_value * plot_h
        x = left + hour * slot
        parts.append(
            f'<rect class="chart-bar" data-hour="{hour}" x="{x + 1:.1f}" y="{base_y - bar_h:.1f}" '
            f'width="{slot - 2:.1f}" height="{bar_h:.1f}" style="fill: {_MARK}">'
            f"<title>{hour:02d}:00 — {value}</title></rect>"
        )
        if hour % 3 == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base_y + 15}" text-anchor="middle" '
                f'style="fill: {_INK}">{hour:02d}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
