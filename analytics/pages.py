"""Browser pages of product analytics: the telemetry.js demo page (SPEC §8)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def telemetry_demo_page(request: HttpRequest) -> HttpResponse:
    """GET /analytics/demo — anonymous page that tracks itself with telemetry.js."""
    return render(request, "analytics/demo.html", {"tab": request.GET.get("tab", "home")})
