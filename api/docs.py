"""The OpenAPI document and its interactive docs, both open to anyone (they hold no data).

The docs page works under a Content-Security-Policy of `script-src 'self'; style-src 'self'`:
Swagger UI's files come from drf-spectacular-sidecar through our static files (no CDN),
its init script is a separate request to this same view (`?script`, drf-spectacular's
split view) rather than inline, and the page's few styles are in static/css/api-docs.css
instead of the stock template's inline <style> (templates/api/swagger_ui.html)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


class SchemaView(SpectacularAPIView):
    authentication_classes = []
    permission_classes = []


class SwaggerView(SpectacularSwaggerSplitView):
    authentication_classes = []
    permission_classes = []
    template_name = "api/swagger_ui.html"
    title = "Clacks REST API"
