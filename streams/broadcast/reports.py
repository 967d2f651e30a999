"""Broadcast reports (SPEC §9.4): daily broadcast, song play history, listener trend,
request log and stream uptime.

Every report has one shape — a title, its parameters, summary figures and titled
sections of rows — so one printable page shows them all, the CSV is the sections'
rows (a `section` column first) and the PDF is that same page rendered by WeasyPrint.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db.models import Count, Sum
from django.utils import timezone
from rest_framework import serializers

from streams.apis import StaffStatsHTMLRenderer

from .models import Play, Song, Station
from .play_figures import SONG_PLAY_COLUMNS, song_plays, song_summary
from .request_figures import REQUEST_LOG_COLUMNS, request_log
from .selectors import (
    listeners_daily,
    listening_window,
    local_day_bounds,
    local_days_bounds,
    local_today,
    uptime,
)
from .station_selectors import alerts, log_entries, log_entry_row, station_row

DAILY_EVENTS_LIMIT = 200
SONG_HISTORY_LIMIT = 5000


def _report(
    *, kind: str, title: str, station: Station, params: dict, summary: list, sections: list
) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": title,
        "station": station_row(station),
        "generated_at": timezone.now(),
        "params": params,
        "summary": [{"label": label, "value": value} for label, value in summary],
        "sections": [
            {"title": name, "columns": columns, "rows": rows} for name, columns, rows in sections
        ],
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def daily_broadcast(*, station: Station, day: dt.date) -> dict[str, Any]:
    """One local day: summary, top songs, listener peaks per encoder, the events."""
    start, end = local_day_bounds(station=station, day=day)
    plays = Play.objects.filter(station=station, started_at__gte=start, started_at__lt=end)
    listener_days = listeners_daily(station=station, date_from=day, date_to=day)
    total = next((d for d in listener_days if d.encoder is None), None)
    listening = listening_window(station=station, start=start, end=end)
    songs = [
        {
            "song_id": row["song__external_id"],
            "title": row["song__title"],
            "artist": row["song__artist"],
            "play_count": row["play_count"],
            "total_played_ms": row["total_played_ms"],
        }
        for row in plays.values("song__external_id", "song__title", "song__artist")
        .annotate(play_count=Count("id"), total_played_ms=Sum("played_ms", default=0))
        .order_by("-play_count", "-total_played_ms", "song__title")[:20]
    ]
    events = [
        log_entry_row(entry, station=station)
        for entry in log_entries(station=station, start=start, end=end)[:DAILY_EVENTS_LIMIT]
    ]
    return _report(
        kind="daily-broadcast",
        title="Daily broadcast report",
        station=station,
        params={"date": day},
        summary=[
            ("Plays", plays.count()),
            ("Distinct songs", plays.values("song_id").distinct().count()),
            ("Listener peak", total.peak if total else None),
            ("Average listeners", _round(total.average if total else None)),
            ("Total listening hours", _round(listening.tlh_hours)),
            ("Cume", listening.cume),
            (
                "Alerts opened",
                sum(1 for a in alerts(station=station) if start <= a["opened_at"] < end),
            ),
        ],
        sections=[
            ("Top songs", ["song_id", "title", "artist", "play_count", "total_played_ms"], songs),
            (
                "Listener peaks",
                ["encoder", "peak", "average", "tlh_hours", "cume"],
                [
                    {
                        "encoder": d.encoder or "Station total",
                        "peak": d.peak,
                        "average": _round(d.average),
                        "tlh_hours": _round(d.tlh_hours, 2),
                        "cume": d.cume,
                    }
                    for d in listener_days
                ],
            ),
            ("Events", ["timestamp", "level", "category", "event", "message"], events),
        ],
    )


def song_history(*, station: Station, song: Song) -> dict[str, Any]:
    plays = song_plays(station=station, song=song, limit=SONG_HISTORY_LIMIT)
    summary = song_summary(song=song)
    return _report(
        kind="song-history",
        title="Song play history",
        station=station,
        params={"song_id": song.external_id},
        summary=[
            ("Song", f"{song.artist} – {song.title}" if song.artist else song.title),
            ("Genre", summary["genre"]),
            ("Duration (ms)", song.duration_ms),
            ("Plays", len(plays)),
            (
                "Skips (< 30 s)",
                sum(1 for p in plays if p["played_ms"] is not None and p["played_ms"] < 30_000),
            ),
        ],
        sections=[("Plays", SONG_PLAY_COLUMNS, plays)],
    )


def listener_trend(*, station: Station, period: str) -> dict[str, Any]:
    today = local_today(station=station)
    days_back = 7 if period == "week" else 30
    date_from = today - dt.timedelta(days=days_back - 1)
    days = [
        d
        for d in listeners_daily(station=station, date_from=date_from, date_to=today)
        if d.encoder is None
    ]
    peaks = [d.peak for d in days if d.peak is not None]
    averages = [d.average for d in days if d.average is not None]
    return _report(
        kind="listener-trend",
        title="Listener trend report",
        station=station,
        params={"period": period, "from": date_from, "to": today},
        summary=[
            ("Highest daily peak", max(peaks) if peaks else None),
            ("Mean daily average", _round(sum(averages) / len(averages)) if averages else None),
            ("Total listening hours", _round(sum(d.tlh_hours for d in days), 2)),
        ],
        sections=[
            (
                "Days",
                ["date", "peak", "average", "tlh_hours", "atsl_minutes", "cume"],
                [
                    {
                        "date": d.date,
                        "peak": d.peak,
                        "average": _round(d.average),
                        "tlh_hours": _round(d.tlh_hours, 2),
                        "atsl_minutes": _round(d.atsl_minutes),
                        "cume": d.cume,
                    }
                    for d in days
                ],
            )
        ],
    )


def request_log_report(*, station: Station, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    start, end = local_days_bounds(station=station, date_from=date_from, date_to=date_to)
    rows = request_log(station=station, start=start, end=end)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return _report(
        kind="request-log",
        title="Request log report",
        station=station,
        params={"from": date_from, "to": date_to},
        summary=[("Requests", len(rows))]
        + [
            (status.capitalize(), counts.get(status, 0))
            for status in ("played", "approved", "pending", "denied", "expired")
        ],
        sections=[("Requests", REQUEST_LOG_COLUMNS, rows)],
    )


def stream_uptime(*, station: Station, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    start, end = local_days_bounds(station=station, date_from=date_from, date_to=date_to)
    rows = uptime(station=station, start=start, end=end)
    disconnections = [
        log_entry_row(e, station=station)
        for e in log_entries(station=station, start=start, end=end, search="disconnect")[:500]
    ]
    return _report(
        kind="stream-uptime",
        title="Stream uptime report",
        station=station,
        params={"from": date_from, "to": date_to},
        summary=[
            ("Encoders", len(rows)),
            ("Disconnections", sum(r.disconnections for r in rows)),
            ("Downtime (s)", _round(sum(r.downtime_seconds for r in rows), 0)),
        ],
        sections=[
            (
                "Encoders",
                ["encoder", "uptime_pct", "disconnections", "downtime_seconds"],
                [
                    {
                        "encoder": r.encoder,
                        "uptime_pct": _round(r.uptime_pct, 2),
                        "disconnections": r.disconnections,
                        "downtime_seconds": _round(r.downtime_seconds, 0),
                    }
                    for r in rows
                ],
            ),
            ("Disconnection events", ["timestamp", "encoder", "event", "message"], disconnections),
        ],
    )


# ---------------------------------------------------------------------------------------
# Output: schema, CSV, page, PDF


class ReportOutputSerializer(serializers.Serializer):
    """A report: its title and parameters, summary figures and sections of rows."""

    class SummarySerializer(serializers.Serializer):
        label = serializers.CharField()
        value = serializers.JSONField(allow_null=True)

    class SectionSerializer(serializers.Serializer):
        title = serializers.CharField()
        columns = serializers.ListField(child=serializers.CharField())
        rows = serializers.ListField(child=serializers.DictField())

    kind = serializers.CharField()
    title = serializers.CharField()
    station = serializers.DictField()
    generated_at = serializers.DateTimeField()
    params = serializers.DictField()
    summary = SummarySerializer(many=True)
    sections = SectionSerializer(many=True)


def report_csv_table(data: dict) -> tuple[list[str], list[dict]]:
    """Summary rows (`section` summary, `label`, `value`), then every section's rows
    under its title, over the union of the sections' columns."""
    columns = ["section", "label", "value"]
    for section in data["sections"]:
        columns += [c for c in section["columns"] if c not in columns]
    rows = [{"section": "summary", **item} for item in data["summary"]]
    for section in data["sections"]:
        rows += [{"section": section["title"], **row} for row in section["rows"]]
    return columns, rows


def report_page_context(report: dict) -> dict:
    return {
        "report_sections": [
            {
                "title": s["title"],
                "columns": s["columns"],
                "rows": [[row.get(c) for c in s["columns"]] for row in s["rows"]],
            }
            for s in report["sections"]
        ],
    }


def html_to_pdf(*, html: str, base_url: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, base_url=base_url, url_fetcher=_static_fetcher()).write_pdf()


def _static_fetcher():
    """WeasyPrint reads our own static files from disk and fetches nothing else: a report
    never makes the server call out (or call itself) while it renders."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticFilesFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            path = unquote(urlsplit(url).path)
            static_prefix = "/" + settings.STATIC_URL.lstrip("/")
            if path.startswith(static_prefix):
                found = finders.find(path[len(static_prefix) :])
                if found:
                    return URLFetcherResponse(
                        url,
                        body=Path(found).read_bytes(),
                        headers={"Content-Type": mimetypes.guess_type(found)[0] or "text/css"},
                    )
            raise ValueError(f"report PDFs load only local static files, not {url!r}")

    return StaticFilesFetcher()


class PDFRenderer(StaffStatsHTMLRenderer):
    """`?format=pdf`: the report's printable page, rendered by WeasyPrint."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def get_template_context(self, data, renderer_context):
        context = super().get_template_context(data, renderer_context)
        return {**context, "printable": True, "base_template": "broadcast/print_base.html"}

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        html = super().render(data, "text/html", renderer_context)
        if isinstance(html, bytes):
            html = html.decode()
        request = renderer_context["request"]
        response = renderer_context.get("response")
        view = renderer_context["view"]
        pdf = html_to_pdf(html=html, base_url=request.build_absolute_uri("/"))
        if response is not None and response.status_code < 400:
            response["Content-Disposition"] = f'attachment; filename="{view.pdf_filename(data)}"'
        return pdf
