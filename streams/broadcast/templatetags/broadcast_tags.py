"""Display helpers of the broadcast pages: table cells, durations, shares, paging links."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.http import urlencode

register = template.Library()


@register.filter
def cell(value) -> str:
    """A table cell: instants as local `YYYY-MM-DD HH:MM:SS`, floats shortened, None as —."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return str(value)


@register.filter
def ms_clock(value) -> str:
    """Milliseconds as m:ss."""
    if value is None:
        return "—"
    seconds = round(value / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


@register.filter
def ms_minutes(value) -> str:
    return "—" if value is None else f"{value / 60000:,.0f}"


@register.filter
def pct(value) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@register.simple_tag(takes_context=True)
def pager_query(context, **changes) -> str:
    """The page's query string with some parameters replaced."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        query[key] = value
    return urlencode(sorted(query.lists()), doseq=True)
