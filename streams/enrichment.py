"""What the server adds to a batch: the device class from the User-Agent and the
viewer's country. The client IP is used in memory only and never stored."""

from __future__ import annotations

import functools
import logging
import re

from django.conf import settings
from ua_parser import parse

from .models import Device

logger = logging.getLogger(__name__)

_TV = re.compile(
    r"smart-?tv|smarttv|hbbtv|appletv|apple tv|googletv|android tv|\baft[a-z]|crkey|roku|"
    r"bravia|web0s|webos.*tv|tizen.*tv|netcast|viera|philipstv|playstation|xbox",
    re.I,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d|tab\b", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini", re.I)
_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|preview|monitor|curl/|wget/|python-requests|httpclient",
    re.I,
)
_DESKTOP_OS = {
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Chrome OS",
    "ChromeOS",
    "Fedora",
    "FreeBSD",
}
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@functools.lru_cache(maxsize=4096)
def device_from_user_agent(user_agent: str) -> str:
    """desktop | mobile | tablet | tv | bot | other, for a User-Agent header."""
    if not user_agent:
        return Device.OTHER
    parsed = parse(user_agent[:512])
    device_family = parsed.device.family if parsed.device else ""
    if device_family == "Spider" or _BOT.search(user_agent):
        return Device.BOT
    if _TV.search(user_agent):
        return Device.TV
    if _TABLET.search(user_agent) or (
        "Android" in user_agent and "Mobile" not in user_agent and "Linux" in user_agent
    ):
        return Device.TABLET
    if _MOBILE.search(user_agent):
        return Device.MOBILE
    os_family = parsed.os.family if parsed.os else ""
    if os_family in _DESKTOP_OS or "Macintosh" in user_agent or "X11" in user_agent:
        return Device.DESKTOP
    return Device.OTHER


@functools.cache
def _geoip_reader(path: str):
    import geoip2.database

    return geoip2.database.Reader(path)


def _country_from_geoip(ip: str) -> str:
    path = settings.GEOIP_DATABASE_PATH
    if not path or not ip:
        return ""
    try:
        return (_geoip_reader(path).country(ip).country.iso_code or "").upper()
    except Exception as exc:  # noqa: BLE001 - unknown or private address, unreadable file
        logger.debug("no GeoIP country for address: %s", exc.__class__.__name__)
        return ""


def country_from_request(meta: dict) -> str:
    """ISO-3166 alpha-2 country, or "" when unknown: the trusted header first, then GeoIP2."""
    header = settings.GEOIP_COUNTRY_HEADER
    if header:
        value = str(meta.get(header, "")).strip().upper()
        if _COUNTRY.match(value) and value not in {"XX", "T1", "ZZ"}:
            return value
    country = _country_from_geoip(meta.get("REMOTE_ADDR", ""))
    return country if _COUNTRY.match(country) else ""
