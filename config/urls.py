from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("telemetry.urls")),
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    path("", include("organizations.urls")),
    path("", include("dashboard.urls")),
]
