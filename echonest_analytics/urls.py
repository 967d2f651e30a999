from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz, readyz
from .metrics import metrics_view

admin.site.site_header = "EchoNest Analytics"
admin.site.site_title = "EchoNest Analytics"
admin.site.index_title = "Administration"

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("echonest/favicon.svg"), permanent=True)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file (no inline script: CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # App URLs come before the admin so its catch-all never shadows /admin/analytics/… pages.
    path("", include("streams.urls")),
    path("", include("analytics.urls")),
    path("", include("streams.broadcast.urls")),
    path("admin/", admin.site.urls),
]
