"""HTTP plumbing shared by the anonymous batch-ingestion endpoints (SPEC §5).

It owns what both endpoints promise alike: the accepted content types (JSON, or
`text/plain` as `navigator.sendBeacon` sends it), the 256 KiB body cap (413),
decoding with a compiled msgspec schema, the rejection shape
`{"error": ..., "details": {...}}` with per-event paths, and 503 + Retry-After
when the database is unavailable. What a payload must contain is decided by its
own app (`streams/ingest.py`, `analytics/telemetry.py`).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from .metrics import ingest_counted
from .query_params import INVALID_QUERY, query_errors
from .redis import redis_breaker

logger = logging.getLogger(__name__)

ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "text/plain"})
_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


class IngestRejected(Exception):
    """A request the client must fix; nothing of it is stored."""

    def __init__(self, error: str, details: dict[str, Any] | None = None, status: int = 400):
        super().__init__(error)
        self.error = error
        self.details = details or {}
        self.status = status


def read_body(request, *, max_bytes: int | None = None) -> bytes:
    """The request body, decompressed, refused above `max_bytes` (413) or with a foreign
    content type or encoding (415).

    A chunked body (no Content-Length) is read from the server's de-chunked `wsgi.input`
    (gunicorn de-chunks it; Django's own request stream stops at CONTENT_LENGTH). A gzip
    body is decompressed incrementally, so its decompressed size is capped as well.
    """
    max_bytes = max_bytes or settings.INGEST_MAX_BODY_BYTES
    meta = request.META
    # The media type only: browsers' sendBeacon sends "text/plain;charset=UTF-8".
    content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise IngestRejected(
            "Content-Type must be application/json or text/plain (JSON body).",
            {"content_type": content_type or "(none)"},
            status=415,
        )
    encoding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in _GZIP_ENCODINGS and encoding not in ("", "identity"):
        raise IngestRejected(
            "Content-Encoding must be gzip or none.", {"content_encoding": encoding}, status=415
        )
    declared = meta.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            declared_bytes = int(declared)
        except ValueError:
            raise IngestRejected("Content-Length is not a number.") from None
        if declared_bytes > max_bytes:
            raise IngestRejected(f"Body is larger than {max_bytes} bytes.", status=413)
        body = request.read(max_bytes + 1)
    elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        body = meta["wsgi.input"].read(max_bytes + 1)
    else:
        body = request.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise IngestRejected(f"Body is larger than {max_bytes} bytes.", status=413)
    if encoding in _GZIP_ENCODINGS:
        body = _gunzip(body, max_bytes=max_bytes)
    return body


def _gunzip(body: bytes, *, max_bytes: int) -> bytes:
    """A gzip body's content, never inflating more than `max_bytes` + 1 (zip bombs: 413)."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        content = decompressor.decompress(body, max_bytes + 1)
    except zlib.error:
        raise IngestRejected(
            "Body is labelled Content-Encoding: gzip but is not valid gzip."
        ) from None
    if len(content) > max_bytes or decompressor.unconsumed_tail:
        raise IngestRejected(
            f"Body is larger than {max_bytes} bytes once decompressed.", status=413
        )
    if not decompressor.eof or decompressor.unused_data:
        raise IngestRejected(
            "Body is labelled Content-Encoding: gzip but is not valid gzip (truncated or "
            "followed by other data)."
        )
    return content


def _json_path(path: str) -> str:
    return path.lstrip(".") or "body"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise IngestRejected(
                    f"Body repeats the key {key!r} in one JSON object.", {key: "duplicate key"}
                )
            seen.add(key)
    return obj


def refuse_duplicate_keys(body: bytes) -> None:
    """400 naming the key when any JSON object repeats one (the decoder would keep the last).

    The C JSON scanner hands each object's pairs to a hook that compares two lengths:
    about 70 µs for a 100-event batch, beside msgspec's 17 µs typed decode. A caller
    that can rule repeats out more cheaply (`quotes_account_for`) calls this only when
    it cannot.
    """
    try:
        json.loads(body, object_pairs_hook=_unique_keys)
    except ValueError:  # msgspec accepted it; never fail a valid body on a second opinion
        return
    except RecursionError:
        raise IngestRejected("Body is nested too deeply.") from None


def quotes_account_for(body: bytes, quotes: int) -> bool:
    """Whether `body` holds no JSON string beyond those its decoded value accounts for.

    In a body without backslashes every string token (key or value) is two quote
    characters. The caller counts the quotes of the tokens its decoded value needs
    at least (each key it decoded, each string value). A key repeated in one object,
    or a key the schema ignores, is one token more, so True proves that no object
    repeats a key. False (or any backslash) proves nothing: the caller then runs
    `refuse_duplicate_keys`.
    """
    return b"\\" not in body and body.count(b'"') == quotes


def decode_body(
    body: bytes, decoder: msgspec.json.Decoder, *, check_duplicates: bool = True
) -> Any:
    """Decode and type-check `body` with a compiled schema, or raise a 400 naming the field.

    A key repeated within one JSON object is refused (400 naming it), not resolved;
    with `check_duplicates=False` the caller takes that over (see `quotes_account_for`).
    """
    if not body.strip():
        raise IngestRejected("Body is empty; expected a JSON object.")
    try:
        decoded = decoder.decode(body)
        if check_duplicates:
            refuse_duplicate_keys(body)
        return decoded
    except msgspec.ValidationError as exc:
        match = _MSGSPEC_PATH.match(str(exc))
        message, path = match.group("message"), match.group("path")
        missing = _MISSING_FIELD.match(message)
        if missing:  # name the absent field itself, not only the object that lacks it
            path = f"{path or ''}.{missing.group('name')}"
        if path is None:
            raise IngestRejected(f"Body is not a valid batch: {message}") from None
        field = _json_path(path)
        raise IngestRejected(f"Invalid {field}: {message}", {field: message}) from None
    except msgspec.DecodeError as exc:
        raise IngestRejected(f"Body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise IngestRejected("Body is not valid UTF-8.") from None
    except RecursionError:
        raise IngestRejected("Body is nested too deeply.") from None


class IngestRateThrottle(ScopedRateThrottle):
    """The `ingest` scope's rate limit, failing open: when the cache (Redis) fails, the
    request is let through and the failure logged; a throttle must never lose events.
    After a failure the cache is skipped while `redis_breaker` is open."""

    def allow_request(self, request, view) -> bool:
        if not redis_breaker.available():
            return True
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 — any cache failure: allow, log, stop asking for a while
            logger.warning("ingest throttle: cache unavailable, request allowed", exc_info=True)
            redis_breaker.failed()
            return True


class BatchIngestionViewSet(viewsets.ViewSet):
    """Base for anonymous batch endpoints: no auth, no DRF parsers, JSON out, clean 4xx/503.

    Authentication is off on purpose: an anonymous endpoint must never answer
    "authentication required" because a browser happens to carry a session cookie.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    throttle_classes = [IngestRateThrottle]
    throttle_scope = "ingest"
    # The `endpoint` label of the ingestion metrics (echonest_analytics/metrics.py).
    metrics_endpoint = ""

    def accepted_events(self, data: Any) -> int:
        """How many events an accepted answer acknowledges: its `ingested` figure, or
        the sum of its parts when `ingested` counts several kinds."""
        ingested = data.get("ingested", 0) if isinstance(data, dict) else 0
        return sum(ingested.values()) if isinstance(ingested, dict) else int(ingested or 0)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Counters only: the hot path pays two in-memory increments per batch.
        ok = response.status_code < 300
        ingest_counted(
            endpoint=self.metrics_endpoint or type(self).__name__,
            status=response.status_code,
            events=self.accepted_events(response.data) if ok else 0,
        )
        return response

    def rejection_body(self, exc: IngestRejected) -> dict[str, Any]:
        body: dict[str, Any] = {"error": exc.error}
        if exc.details:
            body["details"] = exc.details
        return body

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ValidationError):  # a bad query parameter, e.g. ?format=xlsx
            exc = IngestRejected(INVALID_QUERY, query_errors(exc.detail))
        if isinstance(exc, IngestRejected):
            return Response(self.rejection_body(exc), status=exc.status)
        if isinstance(exc, OperationalError | InterfaceError):
            logger.warning("ingestion refused, database unavailable: %s", exc)
            response = Response(
                self.rejection_body(IngestRejected(DATABASE_UNAVAILABLE)), status=503
            )
            response["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        return super().handle_exception(exc)


_json_encoder = msgspec.json.Encoder()
DATABASE_UNAVAILABLE = "Database unavailable; nothing was stored. Retry later."
RETRY_AFTER_SECONDS = "5"


def _json_response(body: dict[str, Any], status: int) -> HttpResponse:
    return HttpResponse(_json_encoder.encode(body), status=status, content_type="application/json")


def ingestion_fast_path(
    drf_view: Callable, ingest: Callable[[HttpRequest], dict[str, Any]], *, status: int = 202
) -> Callable:
    """A plain Django view for a batch endpoint's usual request, in front of its DRF view.

    A POST without a query string, while no ingest rate limit is configured, is answered
    here: `ingest(request)` gives the body, an IngestRejected its 4xx, a database outage
    503 + Retry-After — the same answers, in the same shapes, as `BatchIngestionViewSet`,
    without DRF's request wrapping, content negotiation and renderer. Anything else (other
    methods, `?format=`, throttling) goes to `drf_view`. The view carries `drf_view`'s
    attributes, so the schema generator documents it as the DRF view it stands for.
    """

    # The DRF view's class names the metrics' `endpoint` and reads the accepted events.
    counted_as = drf_view.cls()
    endpoint = counted_as.metrics_endpoint or type(counted_as).__name__

    @functools.wraps(drf_view)
    def view(request: HttpRequest) -> HttpResponse:
        if (
            request.method != "POST"
            or request.META.get("QUERY_STRING")
            or IngestRateThrottle.THROTTLE_RATES.get("ingest")
        ):
            return drf_view(request)
        try:
            accepted = ingest(request)
        except IngestRejected as exc:
            body: dict[str, Any] = {"error": exc.error}
            if exc.details:
                body["details"] = exc.details
            ingest_counted(endpoint=endpoint, status=exc.status, events=0)
            return _json_response(body, exc.status)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("ingestion refused, database unavailable: %s", exc)
            ingest_counted(endpoint=endpoint, status=503, events=0)
            response = _json_response({"error": DATABASE_UNAVAILABLE}, 503)
            response["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        ingest_counted(
            endpoint=endpoint, status=status, events=counted_as.accepted_events(accepted)
        )
        return _json_response(accepted, status)

    return view
