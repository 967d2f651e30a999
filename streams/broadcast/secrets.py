"""Station secrets (SPEC §9.1, §10): the push API's ingest key, kept only as a hash and
shown once when made, and the keyed hashes that stand for listeners and requesters.
Nothing here ever logs or returns a secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .models import Station

INGEST_KEY_BYTES = 32


def _key_hash(raw_key: str) -> str:
    # The key is 256 random bits, so a plain SHA-256 is as strong as a slow hash here.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def station_ingest_key_rotate(*, station: Station) -> str:
    """Make a new ingest key for `station`, replacing any earlier one; returns it (once)."""
    raw_key = f"enb_{secrets.token_urlsafe(INGEST_KEY_BYTES)}"
    station.ingest_key_hash = _key_hash(raw_key)
    station.ingest_key_prefix = raw_key[:12]
    station.save(update_fields=["ingest_key_hash", "ingest_key_prefix"])
    return raw_key


def station_ingest_key_matches(*, station: Station, raw_key: str) -> bool:
    """Constant-time check of a presented key against the station's stored hash."""
    if not station.ingest_key_hash or not raw_key:
        return False
    return hmac.compare_digest(_key_hash(raw_key), station.ingest_key_hash)


def station_listener_secret(*, station: Station) -> bytes:
    """The station's identity key, made on first use."""
    if not station.listener_secret:
        station.listener_secret = secrets.token_hex(32)
        station.save(update_fields=["listener_secret"])
    return station.listener_secret.encode()


def identity_hash(*, station: Station, ip: str, user_agent: str = "") -> str:
    """HMAC-SHA256 of `ip|user_agent` with the station secret: stable per listener, never
    reversible to the IP without the secret."""
    message = f"{ip}|{user_agent}".encode()
    return hmac.new(station_listener_secret(station=station), message, hashlib.sha256).hexdigest()
