"""What an encoder's server says, parsed (SPEC §9.2): Icecast's `status-json.xsl` and
`admin/listclients`, Shoutcast v2's `stats?json=1`. Pure functions over the answer's
text; a shape they do not know raises `MalformedAnswer`, so the poller records a
source-down snapshot instead of guessing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class MalformedAnswer(ValueError):
    """The server answered, but not in the shape its documentation gives."""


@dataclass(frozen=True)
class SourceReading:
    """One encoder's state in one answer."""

    source_up: bool
    listeners: int = 0
    server_peak: int | None = None
    bitrate: int | None = None  # kbit/s
    title: str = ""  # "Artist - Title" as the server shows it


SOURCE_DOWN = SourceReading(source_up=False)


@dataclass(frozen=True)
class ListenerClient:
    """One connection in Icecast's client list. The IP is only ever hashed."""

    ip: str
    user_agent: str
    connected_seconds: int
    client_ref: str


def _count(value: Any, *, field: str) -> int:
    if isinstance(value, bool):
        raise MalformedAnswer(f"{field} is not a count")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        raise MalformedAnswer(f"{field} is not a count")
    if count < 0:
        raise MalformedAnswer(f"{field} is negative")
    return count


def _bitrate(value: Any) -> int | None:
    """kbit/s from an int or a string like "128" or "128 kbps"; None when absent or odd
    (a missing bitrate is common and says nothing about the source)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        kbps = int(value)
    elif isinstance(value, str) and value.strip().split(" ")[0].isdigit():
        kbps = int(value.strip().split(" ")[0])
    else:
        return None
    if kbps > 10_000:  # given in bit/s
        kbps //= 1000
    return kbps if 0 < kbps < 100_000 else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip()
    raise MalformedAnswer("title is not text")


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedAnswer(f"not JSON ({type(exc).__name__})") from None


def icecast_status_parse(body: bytes) -> dict[str, SourceReading]:
    """`status-json.xsl` → {mount: reading} for every listed source. `icestats.source`
    is absent (no source), an object (one) or an array (many); the mount is the path of
    each source's `listenurl`. A mount not in the result has no source."""
    payload = _decode_json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("icestats"), dict):
        raise MalformedAnswer("no icestats object")
    sources = payload["icestats"].get("source")
    if sources is None:
        sources = []
    elif isinstance(sources, dict):
        sources = [sources]
    elif not isinstance(sources, list):
        raise MalformedAnswer("icestats.source is neither an object nor an array")
    readings: dict[str, SourceReading] = {}
    for source in sources:
        if not isinstance(source, dict) or not isinstance(source.get("listenurl"), str):
            raise MalformedAnswer("a source without a listenurl")
        mount = urlsplit(source["listenurl"]).path or "/"
        title = _text(source.get("title"))
        artist = _text(source.get("artist"))
        if artist and title:
            title = f"{artist} - {title}"
        elif artist:
            title = artist
        peak = source.get("listener_peak")
        readings[mount] = SourceReading(
            source_up=True,
            listeners=_count(source.get("listeners", 0), field="listeners"),
            server_peak=None if peak is None else _count(peak, field="listener_peak"),
            bitrate=_bitrate(source.get("bitrate", source.get("ice-bitrate"))),
            title=title,
        )
    return readings


def icecast_listclients_parse(body: bytes, *, mount: str) -> list[ListenerClient]:
    """Icecast 2.4's `admin/listclients?mount=…` XML → the mount's connections."""
    try:
        # Python's expat (2.4.1 and later) refuses entity-expansion bombs; the answer
        # comes from the station's own server, with a size cap upstream.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        raise MalformedAnswer("listclients is not XML") from None
    if root.tag != "icestats":
        raise MalformedAnswer("listclients without icestats")
    clients: list[ListenerClient] = []
    for source in root.iter("source"):
        if source.get("mount") != mount:
            continue
        for listener in source.iter("listener"):
            ip = (listener.findtext("IP") or "").strip()
            if not ip:
                raise MalformedAnswer("a listener without an IP")
            connected = (listener.findtext("Connected") or "0").strip()
            clients.append(
                ListenerClient(
                    ip=ip,
                    user_agent=(listener.findtext("UserAgent") or "").strip(),
                    connected_seconds=_count(connected, field="Connected"),
                    client_ref=(listener.findtext("ID") or listener.get("id") or "")[:64],
                )
            )
    return clients


def shoutcast_stats_parse(body: bytes) -> SourceReading:
    """Shoutcast v2 `stats?sid=N&json=1`: `streamstatus` 1 is up, 0 down (`streamuptime`
    is then absent); `bitrate` is a string."""
    payload = _decode_json(body)
    if not isinstance(payload, dict) or "streamstatus" not in payload:
        raise MalformedAnswer("no streamstatus")
    status = _count(payload["streamstatus"], field="streamstatus")
    if status not in (0, 1):
        raise MalformedAnswer("streamstatus is neither 0 nor 1")
    if status == 0:
        return SOURCE_DOWN
    peak = payload.get("peaklisteners")
    return SourceReading(
        source_up=True,
        listeners=_count(payload.get("currentlisteners", 0), field="currentlisteners"),
        server_peak=None if peak is None else _count(peak, field="peaklisteners"),
        bitrate=_bitrate(payload.get("bitrate")),
        title=_text(payload.get("songtitle")),
    )
