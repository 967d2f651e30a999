"""CSV output for staff reports (`?format=csv` on any report view that names its columns)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from rest_framework.renderers import BaseRenderer

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell: raw numbers (seconds, ratios as decimals), ISO timestamps, lists of
    {"country", "viewers"} and maps as `a:1;b:2` — a map of maps (the `bunny` figures)
    flattened with dotted keys, `views:7;country_views.DE:5;…`."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        if all(_is_scalar(v) or isinstance(v, dict) for v in value.values()):
            text = ";".join(f"{k}:{_plain(v)}" for k, v in _flat_items(value))
            return "'" + text if text.startswith(_FORMULA_PREFIXES) else text
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, list):
        if all(isinstance(v, dict) and len(v) == 2 for v in value):
            return ";".join(":".join(str(x) for x in v.values()) for v in value)
        return json.dumps(value, default=str)
    text = str(value)
    # Spreadsheets run cells that start like a formula; keep them text.
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | dt.date)


def _flat_items(mapping: dict, prefix: str = ""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _plain(value: Any) -> str:
    """A value inside a `key:value;…` cell (no formula guard: the cell has one)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace(";", ",")


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        renderer_context = renderer_context or {}
        view = renderer_context.get("view")
        response = renderer_context.get("response")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if response is not None and response.status_code >= 400:
            writer.writerow(["error"])
            writer.writerow([csv_cell(data.get("error") or data.get("detail") or data)])
            return out.getvalue().encode()
        columns, rows = view.csv_table(data)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(column)) for column in columns])
        if response is not None:
            response["Content-Disposition"] = f'attachment; filename="{view.csv_filename(data)}"'
        return out.getvalue().encode()
