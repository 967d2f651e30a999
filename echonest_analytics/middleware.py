"""Request-wide HTTP behaviour that no single view owns."""

from __future__ import annotations

import logging
from collections.abc import Callable

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import resolve
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_MESSAGE = "Database unavailable; nothing was changed. Retry later."


def _wants_html(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "HTTP_AUTHORIZATION" not in request.META


class DatabaseUnavailableMiddleware:
    """Any view that hits a database outage answers 503 with Retry-After, not a 500 page
    (SPEC §5): `{"error": ...}` to API clients, a short plain page to browsers.

    Last in MIDDLEWARE, so it sees the view's exception before anything else does.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("%s %s: database unavailable: %s", request.method, request.path, exception)
        if _wants_html(request):
            response: HttpResponse = HttpResponse(
                "EchoNest Analytics: the database is unavailable right now. "
                "Please retry in a few seconds.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        else:
            response = JsonResponse({"error": _MESSAGE}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


# The middleware a batch-ingestion request goes through (SPEC §5, §10): security headers
# and the HTTPS redirect, CSP, CORS, X-Frame-Options. Not the static files, sessions,
# CSRF (the endpoints are exempt), authentication (they are anonymous) or messages.
INGESTION_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "csp.middleware.CSPMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
INGESTION_PATHS = frozenset({"/analytics/events"})
_CSP_OVERRIDES = tuple(
    f"_csp_{part}{ro}" for part in ("config", "update", "replace") for ro in ("", "_ro")
) + ("_csp_exempt", "_csp_exempt_ro")


class IngestionCSPMiddleware(CSPMiddleware):
    """CSPMiddleware for one ingestion path: its responses never adjust the policy or use
    a nonce, so the headers are built once (for the first response) and then reused."""

    _headers: tuple[str | None, str | None] | None = None

    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _CSP_OVERRIDES)
            or HEADER in response
            or HEADER_REPORT_ONLY in response
            or (settings.DEBUG and response.status_code in (404, 500))
        ):
            return super().process_response(request, response)
        if self._headers is None:
            response = super().process_response(request, response)
            self._headers = (response.get(HEADER), response.get(HEADER_REPORT_ONLY))
            return response
        policy, report_only = self._headers
        if policy:
            response[HEADER] = policy
        if report_only:
            response[HEADER_REPORT_ONLY] = report_only
        return response


class IngestionFastPathMiddleware:
    """First in MIDDLEWARE: a batch-ingestion request (`INGESTION_PATHS`) skips the rest
    of the chain and runs its view through `INGESTION_MIDDLEWARE` only, in MIDDLEWARE's
    order. The view answers its own 4xx and 503 (`echonest_analytics/ingestion.py`); the
    Host header is still checked against ALLOWED_HOSTS (400 otherwise), and the response
    carries a Content-Length, as CommonMiddleware would give it. Other paths go on as usual.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._chains: dict[str, Callable[[HttpRequest], HttpResponse]] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path not in INGESTION_PATHS:
            return self.get_response(request)
        chain = self._chains.get(path) or self._chain(path)
        return chain(request)

    def _chain(self, path: str) -> Callable[[HttpRequest], HttpResponse]:
        match = resolve(path)
        view = match.func

        def endpoint(request: HttpRequest) -> HttpResponse:
            request.get_host()  # DisallowedHost: 400, as for every other request
            request.resolver_match = match
            response = view(request, *match.args, **match.kwargs)
            if callable(getattr(response, "render", None)):  # DRF's fallback answers
                response = response.render()
            if not response.streaming and not response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
            return response

        handler = convert_exception_to_response(endpoint)
        for dotted in reversed(settings.MIDDLEWARE):
            if dotted in INGESTION_MIDDLEWARE:
                factory = (
                    IngestionCSPMiddleware
                    if dotted == "csp.middleware.CSPMiddleware"
                    else import_string(dotted)
                )
                handler = convert_exception_to_response(factory(handler))
        self._chains[path] = handler
        return handler
