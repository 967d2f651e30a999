"""Server-side SVG of the product analytics page that the daily charts of
`streams.charts` do not cover: labelled horizontal bars (feature usage, funnel steps)
and a histogram over whole-number bins (stickiness).

Colours are CSS classes styled by analytics/static/analytics/product.css from the
admin's variables, so both admin themes apply; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from streams.charts import compact_number

_WIDTH = 480


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str  # shown after the bar, e.g. "1,250" or "48 users · 40.0%"


def horizontal_bars_svg(bars: Sequence[Bar], *, title: str) -> SafeString:
    """One row per bar: its label above, the bar scaled to the largest value, the note
    at its end. Rows stack, so the chart stays readable at phone width."""
    row_h, bar_h, note_w = 40, 14, 150
    height = max(len(bars), 1) * row_h + 8
    largest = max((bar.value for bar in bars), default=0) or 1
    plot_w = _WIDTH - note_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="product-chart product-bars" '
        f'viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        f'font-family="inherit" font-size="13"><title>{escape(title)}</title>'
    ]
    if not bars:
        parts.append(
            f'<text class="chart-empty" x="{_WIDTH / 2}" y="24" text-anchor="middle">'
            "No data in this range</text></svg>"
        )
        return mark_safe("".join(parts))  # noqa: S308 — every text is escaped
    for i, bar in enumerate(bars):
        top = i * row_h + 4
        width = max(bar.value / largest * plot_w, 2 if bar.value else 0)
        parts.append(
            f'<text class="chart-label" x="0" y="{top + 12}">{escape(bar.label)}</text>'
            f'<rect class="chart-track" x="0" y="{top + 18}" width="{plot_w}" height="{bar_h}" '
            f'rx="2" /><rect class="chart-bar" x="0" y="{top + 18}" width="{width:.1f}" '
            f'height="{bar_h}" rx="2"><title>{escape(f"{bar.label}: {bar.note}")}</title></rect>'
            f'<text class="chart-note" x="{plot_w + 8}" y="{top + 30}">{escape(bar.note)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text is escaped


def histogram_svg(bins: Sequence[tuple[str, int]], *, title: str, x_title: str) -> SafeString:
    """Vertical bars over ordered bins (e.g. "1" … "30" active days), y ticks at 0, half
    and top, and at most ten x labels (the first and the last always)."""
    height, left, right, top, bottom = 220, 44, 8, 10, 44
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    largest = max((n for _, n in bins), default=0)
    ceiling = _count_ceiling(largest)
    base = top + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="product-chart product-histogram" '
        f'viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        f'font-family="inherit" font-size="12"><title>{escape(title)}</title>'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = base - fraction * plot_h
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{_WIDTH - right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" /><text class="chart-tick" x="{left - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(compact_number(ceiling * fraction))}</text>'
        )
    slot = plot_w / max(len(bins), 1)
    every = max(1, -(-len(bins) // 10))
    for i, (label, n) in enumerate(bins):
        bar_h = n / ceiling * plot_h
        x = left + i * slot
        parts.append(
            f'<rect class="chart-bar" x="{x + slot * 0.12:.2f}" y="{base - bar_h:.2f}" '
            f'width="{slot * 0.76:.2f}" height="{bar_h:.2f}">'
            f"<title>{escape(f'{label}: {n:,}')}</title></rect>"
        )
        if i % every == 0 or i == len(bins) - 1:
            parts.append(
                f'<text class="chart-tick" x="{x + slot / 2:.1f}" y="{base + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(
        f'<line class="chart-axis" x1="{left}" x2="{_WIDTH - right}" y1="{base}" y2="{base}" />'
        f'<text class="chart-tick" x="{left + plot_w / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle">{escape(x_title)}</text></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 — every text is escaped


def _count_ceiling(value: int) -> float:
    """2, 4, 6 or 10 times a power of ten (whole half-way ticks); 2 for an empty chart."""
    magnitude = 1
    while value > 10 * magnitude:
        magnitude *= 10
    for step in (2, 4, 6, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return 20.0 * magnitude  # pragma: no cover — the loop always returns
