"""Reads of the playback side: stream info for players and stats for staff."""

from __future__ import annotations

from typing import Any

from .models import Stream


def stream_info(*, key: str) -> dict[str, Any] | None:
    stream = Stream.objects.filter(key=key).prefetch_related("providers").first()
    if stream is None:
        return None
    providers = list(stream.providers.all())
    primary = next((p for p in providers if p.is_primary), providers[0] if providers else None)
    return {
        "streamId": stream.key,
        "title": stream.title,
        "status": stream.status,
        "kind": stream.kind,
        "providers": [
            {"provider": p.provider, "externalId": p.external_id, "config": p.config}
            for p in providers
        ],
        "preferredProvider": primary.provider if primary else None,
    }
