from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # App URLs come before the admin so its catch-all never shadows /admin/analytics/… pages.
    path("", include("streams.urls")),
    path("", include("analytics.urls")),
    path("", include("streams.broadcast.urls")),
    path("admin/", admin.site.urls),
]
