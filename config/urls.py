from django.contrib import admin
from django.urls import include, path

from telemetry import metrics

# The friendly 503 page when the database fails outside a view, else 500.html.
handler500 = "config.middleware.server_error"
# "Not allowed" inside an organization keeps its navigation and names its owners.
handler403 = "organizations.views.permission_denied"

urlpatterns = [
    path("", include("telemetry.urls")),
    # django-prometheus' export (summed over gunicorn workers) behind CLACKS_METRICS_TOKEN/_ALLOWED_IPS.
    path("metrics", metrics.export, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("organizations.urls")),
    path("", include("dashboard.urls")),
    path("", include("alerts.urls")),
    path("", include("api.urls")),
]
