"""Browser pages of product analytics: the telemetry.js demo page (SPEC §8) and the staff
product analytics page (SPEC §6.5) at /admin/analytics/product."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from echonest_analytics.query_params import query_errors
from streams.charts import duration_text, percent_text, svg_chart

from .insight_apis import FunnelApi, RetentionApi
from .insights import daily_active_users_series, funnel, retention_cohorts, stickiness
from .product_charts import Bar, histogram_svg, horizontal_bars_svg
from .selectors import usage_summary

PRODUCT_PAGE_DEFAULTS = {
    "steps": "page_view,action,conversion",
    "window_days": "14",
    "days": "30",
    "period": "week",
    "cohorts": "8",
}


def telemetry_demo_page(request: HttpRequest) -> HttpResponse:
    """GET /analytics/demo — anonymous page that tracks itself with telemetry.js."""
    return render(request, "analytics/demo.html", {"tab": request.GET.get("tab", "home")})


def product_analytics_page(request: HttpRequest) -> HttpResponse:
    """GET /admin/analytics/product — DAU/WAU/MAU, feature usage, a funnel of the steps in
    the form, retention cohorts and stickiness, for staff, in the admin's look.

    The form's fields are read by the API's own FilterSerializers; a bad field is named
    on the page (400) and the defaults are shown instead.
    """
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    asked = {
        name: request.GET.get(name, default) for name, default in PRODUCT_PAGE_DEFAULTS.items()
    }
    errors: dict[str, str] = {}
    readings = {}
    for serializer_class in (FunnelApi.FilterSerializer, RetentionApi.FilterSerializer):
        filters = serializer_class(data=asked)
        if not filters.is_valid():
            errors.update(query_errors(filters.errors))
            filters = serializer_class(data=PRODUCT_PAGE_DEFAULTS)
            filters.is_valid(raise_exception=True)
        readings.update(filters.validated_data)
    days = readings["days"]

    usage = usage_summary(days=days)
    dau_series = daily_active_users_series(days=days)
    report = funnel(steps=readings["steps"], window_days=readings["window_days"], days=days)
    retention = retention_cohorts(period=readings["period"], cohorts=readings["cohorts"])
    sticky = stickiness(days=days)

    funnel_bars = []
    for number, step in enumerate(report["steps"], start=1):
        note = f"{step['users']:,} · {percent_text(step['conversion_from_start'])}"
        funnel_bars.append(Bar(label=f"{number}. {step['step']}", value=step["users"], note=note))
        step["median_text"] = (
            duration_text(step["median_seconds_from_previous"])
            if step["median_seconds_from_previous"] is not None
            else "—"
        )
    longest = max((len(c["returning"]) for c in retention["cohorts"]), default=0)
    for cohort in retention["cohorts"]:
        cohort["cells"] = [
            {"share": share, "percent": round(share * 100), "text": percent_text(share)}
            for share in cohort["returning"]
        ] + [None] * (longest - len(cohort["returning"]))

    context = {
        **admin.site.each_context(request),
        "title": f"Product analytics, last {days} days ({usage['from']} to {usage['to']}, UTC)",
        "form": asked,
        "errors": errors,
        "days": days,
        "usage": usage,
        "dau_chart": svg_chart(
            dau_series, title=f"Daily active users, last {days} days", kind="line"
        ),
        "feature_chart": horizontal_bars_svg(
            [
                Bar(label=feature, value=n, note=f"{n:,}")
                for feature, n in list(usage["feature_usage"].items())[:10]
            ],
            title=f"Events per feature, last {days} days",
        ),
        "funnel": report,
        "funnel_chart": horizontal_bars_svg(funnel_bars, title="Funnel: users reaching each step"),
        "retention": retention,
        "retention_offsets": range(longest),
        "stickiness": sticky,
        "stickiness_chart": histogram_svg(
            list(sticky["users_by_active_days"].items()),
            title=f"Users by active days, last {days} days",
            x_title="distinct active days",
        ),
    }
    return render(request, "analytics/product.html", context, status=400 if errors else 200)
