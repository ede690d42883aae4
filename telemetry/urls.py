from django.urls import path, re_path

from telemetry import views

urlpatterns = [
    # The SDK joins its endpoint as given, so "https://host/" sends "//v1/ingest/…"
    # (docs/protocol.md, Endpoints). Accept the doubled slash rather than 404 a real client.
    re_path(r"^(?:/)?v1/ingest/(?P<org_id>[^/]+)/(?P<app_id>[^/]+)/?$", views.IngestView.as_view(), name="ingest"),
    re_path(r"^(?:/)?v1/events/batch/?$", views.BatchView.as_view(), name="events_batch"),
    path("health", views.health, name="health"),
    path("live", views.live, name="live"),
    path("ready", views.ready, name="ready"),
]
