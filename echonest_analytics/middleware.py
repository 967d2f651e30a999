"""Request-wide HTTP behaviour that no single view owns."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

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
