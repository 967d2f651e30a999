from django.urls import path

from . import apis, insight_apis, pages, views

urlpatterns = [
    path(
        "api/analytics/event",
        apis.TelemetryEventIngestApi.as_view({"post": "create"}),
        name="analytics-event-ingest",
    ),
    path("api/analytics/usage", apis.UsageSummaryApi.as_view(), name="analytics-usage"),
    path("api/analytics/funnel", insight_apis.FunnelApi.as_view(), name="analytics-funnel"),
    path(
        "api/analytics/retention", insight_apis.RetentionApi.as_view(), name="analytics-retention"
    ),
    path(
        "api/analytics/stickiness",
        insight_apis.StickinessApi.as_view(),
        name="analytics-stickiness",
    ),
    # `path:` so user ids containing "/" can be addressed too; the export route comes first.
    path(
        "api/analytics/users/<path:user_id>/export",
        apis.UserEventsExportApi.as_view(),
        name="analytics-user-export",
    ),
    path(
        "api/analytics/users/<path:user_id>",
        apis.UserEraseApi.as_view(),
        name="analytics-user-erase",
    ),
    path("admin/stats", views.admin_stats_view, name="analytics-admin-stats"),
    path(
        "admin/analytics/product",
        pages.product_analytics_page,
        name="analytics-product-page",
    ),
    path("analytics/demo", pages.telemetry_demo_page, name="analytics-telemetry-demo"),
]
