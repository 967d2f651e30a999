"""Bunny Stream statistics: the HTTP client and the daily import (SPEC §4, §6.2, §7).

`GET {BUNNY_API_BASE_URL}/library/{libraryId}/statistics` with the `AccessKey` header,
one video and one UTC day per request (Bunny's country figures cover the whole
requested range, so a day at a time keeps them per day). Retries with backoff on 429
and 5xx (honouring Retry-After, capped), none on 401/403/404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .models import BunnyVideoStats, StreamProvider, StreamStats
from .stream_figures import StreamDayParts, stream_stats_row, stream_stats_write

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 60.0


class BunnyNotConfigured(Exception):
    """No BUNNY_API_KEY: the import cannot run."""


class BunnyError(Exception):
    """Bunny answered with an error, or could not be reached, after the retries."""


class _LoggedRetry(Retry):
    """urllib3's Retry, with a log line per retried failure and a cap on Retry-After."""

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        reason = f"HTTP {response.status}" if response is not None else repr(error)
        logger.warning("Bunny API %s for %s; retrying (%s left)", reason, url, self.total)
        return super().increment(method, url, response, error, *args, **kwargs)

    def get_retry_after(self, response):
        retry_after = super().get_retry_after(response)
        return None if retry_after is None else min(retry_after, MAX_RETRY_AFTER)


def bunny_configured() -> bool:
    return bool(settings.BUNNY_API_KEY)


class BunnyClient:
    def __init__(
        self, *, api_key: str, base_url: str, timeout: float, retries: int, backoff: float
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"AccessKey": api_key, "Accept": "application/json"})
        retry = _LoggedRetry(
            total=retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=backoff,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    @classmethod
    def from_settings(cls) -> BunnyClient:
        if not bunny_configured():
            raise BunnyNotConfigured(
                "Bunny is not configured: set BUNNY_API_KEY (and BUNNY_LIBRARY_ID)."
            )
        return cls(
            api_key=settings.BUNNY_API_KEY,
            base_url=settings.BUNNY_API_BASE_URL,
            timeout=settings.BUNNY_TIMEOUT,
            retries=settings.BUNNY_RETRIES,
            backoff=settings.BUNNY_RETRY_BACKOFF,
        )

    def video_statistics(self, *, library_id: str, video_guid: str, day: date) -> dict[str, Any]:
        """Bunny's statistics payload for one video over one UTC day (daily buckets)."""
        url = f"{self.base_url}/library/{library_id}/statistics"
        params = {
            "dateFrom": datetime.combine(day, time.min).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dateTo": datetime.combine(day, time(23, 59, 59)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "videoGuid": video_guid,
            "hourly": "false",
        }
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            logger.error("Bunny API unreachable for video %s on %s: %s", video_guid, day, exc)
            raise BunnyError(f"unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            logger.error(
                "Bunny API answered %s for video %s on %s: %s",
                response.status_code,
                video_guid,
                day,
                response.text[:200],
            )
            raise BunnyError(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            logger.error(
                "Bunny API sent a body that is not JSON for video %s on %s", video_guid, day
            )
            raise BunnyError("response is not JSON") from exc
        if not isinstance(payload, dict):
            raise BunnyError("response is not a JSON object")
        return payload


def _chart_day_total(chart: Any, day: date) -> float:
    """Sum a Bunny chart's points that fall on `day` (keys with or without a trailing Z)."""
    if not isinstance(chart, dict):
        return 0.0
    total = 0.0
    for key, value in chart.items():
        try:
            point = datetime.fromisoformat(str(key).removesuffix("Z"))
        except ValueError:
            continue
        point = point.replace(tzinfo=UTC) if point.tzinfo is None else point.astimezone(UTC)
        if point.date() == day and isinstance(value, int | float):
            total += float(value)
    return total


def _number_map(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int | float)}


def bunny_video_day_parse(payload: dict[str, Any], *, day: date) -> dict[str, Any]:
    """The fields of a BunnyVideoStats row from one day's payload."""
    score = payload.get("engagementScore")
    return {
        "views": int(_chart_day_total(payload.get("viewsChart"), day)),
        "watch_time_seconds": _chart_day_total(payload.get("watchTimeChart"), day),
        "country_views": _number_map(payload.get("countryViewCounts")),
        "country_watch_time": _number_map(payload.get("countryWatchTime")),
        "engagement_score": float(score) if isinstance(score, int | float) else None,
        "raw_payload": payload,
    }


def stream_stats_apply_bunny(*, stream_id: int, day: date, bunny_watch_seconds: float) -> None:
    """SPEC §6.2: a Bunny stream's day counts the larger of our watch time and Bunny's.

    The day's row is rewritten from the parts the aggregator stored (a day it has not
    counted yet has none) by the same row builder and writer as the aggregator; the
    row stays locked meanwhile so a concurrent aggregation run cannot slip in between.
    Its `last_calculated_at` stays the aggregator's.
    """
    with transaction.atomic():
        stored, _ = StreamStats.objects.select_for_update().get_or_create(
            stream_id=stream_id, day=day
        )
        row = stream_stats_row(
            stream_id=stream_id,
            day=day,
            parts=StreamDayParts.of_row(stored),
            bunny_watch_seconds=bunny_watch_seconds,
            calculated_at=stored.last_calculated_at,
        )
        stream_stats_write(rows=[row])


@dataclass
class BunnyImportSummary:
    videos: int = 0
    days_imported: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "days_imported": self.days_imported,
            "failed": len(self.failures),
            "failures": self.failures,
        }


def bunny_stats_import(
    *, days: int = 3, today: date | None = None, client: BunnyClient | None = None
) -> BunnyImportSummary:
    """Import the last `days` UTC days for every Bunny Stream provider and apply §6.2.

    One failing video is logged and skipped; the others still import.
    """
    client = client or BunnyClient.from_settings()
    today = today or datetime.now(UTC).date()
    wanted_days = [today - timedelta(days=n) for n in range(days)]
    summary = BunnyImportSummary()
    providers = StreamProvider.objects.filter(provider=StreamProvider.Provider.BUNNY_STREAM)
    for provider in providers.select_related("stream").order_by("id"):
        library_id = str((provider.config or {}).get("library_id") or settings.BUNNY_LIBRARY_ID)
        if not library_id or not provider.external_id:
            summary.failures.append(
                {
                    "stream": provider.stream.key,
                    "video": provider.external_id,
                    "error": "no library id",
                }
            )
            logger.error("Bunny provider of stream %s has no library id", provider.stream.key)
            continue
        summary.videos += 1
        for day in wanted_days:
            try:
                payload = client.video_statistics(
                    library_id=library_id, video_guid=provider.external_id, day=day
                )
            except BunnyError as exc:
                summary.failures.append(
                    {
                        "stream": provider.stream.key,
                        "video": provider.external_id,
                        "day": day.isoformat(),
                        "error": str(exc),
                    }
                )
                continue
            fields = bunny_video_day_parse(payload, day=day)
            with transaction.atomic():
                BunnyVideoStats.objects.update_or_create(
                    library_id=library_id,
                    video_guid=provider.external_id,
                    day=day,
                    defaults={**fields, "fetched_at": datetime.now(UTC)},
                )
                stream_stats_apply_bunny(
                    stream_id=provider.stream_id,
                    day=day,
                    bunny_watch_seconds=fields["watch_time_seconds"],
                )
            summary.days_imported += 1
    logger.info(
        "Bunny import: %d videos, %d video-days imported, %d failures",
        summary.videos,
        summary.days_imported,
        len(summary.failures),
    )
    return summary


def bunny_watch_by_stream_day(stream_days: list[tuple[int, date]]) -> dict[tuple[int, date], float]:
    """Bunny's watch seconds for each (stream, day) that has them (Bunny streams only)."""
    if not stream_days:
        return {}
    stream_ids = {s for s, _ in stream_days}
    days = {d for _, d in stream_days}
    videos: dict[str, list[int]] = {}
    for stream_id, guid in StreamProvider.objects.filter(
        stream_id__in=stream_ids, provider=StreamProvider.Provider.BUNNY_STREAM
    ).values_list("stream_id", "external_id"):
        videos.setdefault(guid, []).append(stream_id)
    if not videos:
        return {}
    result: dict[tuple[int, date], float] = {}
    for guid, day, seconds in BunnyVideoStats.objects.filter(
        video_guid__in=list(videos), day__in=days
    ).values_list("video_guid", "day", "watch_time_seconds"):
        for stream_id in videos[guid]:
            key = (stream_id, day)
            result[key] = max(result.get(key, 0.0), seconds)
    return result
