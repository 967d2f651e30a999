"""The EchoNest staff stats page at /admin/stats (SPEC §6.3), drawn in the Django admin's look."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from echonest_analytics.redis import get_redis

from .permissions import can_view_product_stats
from .selectors import stats_page_context

logger = logging.getLogger(__name__)


def admin_stats_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not can_view_product_stats(user):
        messages.warning(request, "The product stats page is for the EchoNest admins only.")
        return redirect("admin:index")
    context = {
        **admin.site.each_context(request),
        "title": "Product stats",
        # The page refetches itself this often (static/analytics/admin-stats.js).
        "refresh_seconds": getattr(settings, "ADMIN_STATS_REFRESH_SECONDS", 30),
        "now": timezone.now(),
    }
    try:
        context.update(stats_page_context(redis_client=get_redis()))
    except RedisError:
        logger.warning("stats page: live counters unavailable", exc_info=True)
        context["live_counters_unavailable"] = True
    return render(request, "analytics/admin_stats.html", context)
